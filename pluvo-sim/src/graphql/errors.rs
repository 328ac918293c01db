//! Error wiring: how a rule violation becomes a GraphQL error, worded in the configured
//! [`ErrorStyle`].
//!
//! apollo-compiler's field errors carry only a message, so [`field_error`] appends the error code
//! after a separator and [`finish`] moves it to `extensions.code`. Request-level error bodies live
//! here too, so every error the simulator sends is shaped in one place.

use apollo_compiler::resolvers::FieldError;
use apollo_compiler::response::{ExecutionResponse, GraphQLError, JsonValue};

use crate::state::{ApiError, ErrorCode};
use crate::style::ErrorStyle;

const CODE_SEP: char = '\u{1f}';
const RESOLVER_PREFIX: &str = "resolver error: ";

/// Serialises a response, moving error codes from messages into `extensions` worded as `style`
/// words them.
pub(super) fn finish(mut response: ExecutionResponse, style: ErrorStyle) -> Vec<u8> {
    for error in &mut response.errors {
        if let Some((message, code)) = error.message.split_once(CODE_SEP) {
            // apollo-compiler prefixes resolver messages; Pluvo's messages have no such prefix.
            let message = message.strip_prefix(RESOLVER_PREFIX).unwrap_or(message);
            let (message, extensions) = match ErrorCode::parse(code) {
                Some(code) => style.field_error(code, message),
                None => (
                    message.to_owned(),
                    Some(serde_json::json!({ "code": code })),
                ),
            };
            if let Some(serde_json::Value::Object(extensions)) = extensions {
                for (key, value) in extensions {
                    if let Ok(value) = serde_json::from_value::<JsonValue>(value) {
                        error.extensions.insert(key.as_str(), value);
                    }
                }
            }
            error.message = message;
        }
    }
    // Serialising plain JSON values cannot fail; an empty body would still be a visible bug.
    serde_json::to_vec(&response).unwrap_or_default()
}

/// Body for request-level errors: `{"errors": [...]}` and no `data`.
pub fn errors_body(errors: Vec<GraphQLError>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "errors": errors })).unwrap_or_default()
}

/// A request error from a plain message (bad JSON, wrong content type, ...).
pub fn message_body(message: &str, code: Option<&str>) -> Vec<u8> {
    let mut error = serde_json::json!({ "message": message });
    if let Some(code) = code {
        error["extensions"] = serde_json::json!({ "code": code });
    }
    serde_json::to_vec(&serde_json::json!({ "errors": [error] })).unwrap_or_default()
}

pub(super) fn field_error(e: ApiError) -> FieldError {
    FieldError {
        message: format!("{}{CODE_SEP}{}", e.message, e.code.as_str()),
    }
}
