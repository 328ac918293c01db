//! How errors are worded: `--error-style`.
//!
//! Pluvo's contract names no error codes and no wording, so a client that works only against one
//! wording works only against this simulator. Each [`ErrorStyle`] renders the same conditions
//! (a taken address, an invalid value, something not found, a refused token) as one plausible
//! server stack would, and the end-to-end tests run their conflict, auth and validation
//! scenarios under every style.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::state::ErrorCode;

/// A family of error wordings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ErrorStyle {
    /// This simulator's own codes: `EMAIL_TAKEN`, `TRAINING_REF_TAKEN`, `INVALID_EMAIL`,
    /// `NOT_FOUND`, … and
    /// `AuthenticationError`.
    #[default]
    Sim,
    /// Django/graphene: `{"code": "Conflict", "field": "email"}` with "User with this Email
    /// address already exists.", `ValidationError`, `DoesNotExist`; a refused token is "You do
    /// not have permission to perform this action" with no code (HTTP 200), or Django REST
    /// framework's `{"detail": …}` (HTTP 401).
    Graphene,
    /// Apollo-style: every refused input is `BAD_USER_INPUT` and only the message says which
    /// ("This email address is already in use by another account."); not found has no code;
    /// a refused token is `UNAUTHENTICATED`.
    Apollo,
}

impl ErrorStyle {
    /// The message and `extensions` of a field error of `code`; `message` is the sim's own.
    pub fn field_error(self, code: ErrorCode, message: &str) -> (String, Option<Value>) {
        match self {
            ErrorStyle::Sim => (message.to_owned(), Some(json!({"code": code.as_str()}))),
            ErrorStyle::Graphene => match code {
                ErrorCode::EmailTaken => (
                    "User with this Email address already exists.".to_owned(),
                    Some(json!({"code": "Conflict", "field": "email"})),
                ),
                ErrorCode::RefTaken => (
                    "User with this Ref already exists.".to_owned(),
                    Some(json!({"code": "Conflict", "field": "ref"})),
                ),
                ErrorCode::TrainingRefTaken => (
                    "Training with this Ref already exists.".to_owned(),
                    Some(json!({"code": "Conflict", "field": "ref"})),
                ),
                ErrorCode::InvalidEmail => (
                    "Enter a valid email address.".to_owned(),
                    Some(json!({"code": "ValidationError", "field": "email"})),
                ),
                ErrorCode::NotFound => (message.to_owned(), Some(json!({"code": "DoesNotExist"}))),
                ErrorCode::BadUserInput => {
                    (message.to_owned(), Some(json!({"code": "ValidationError"})))
                }
            },
            ErrorStyle::Apollo => match code {
                ErrorCode::EmailTaken => (
                    "This email address is already in use by another account.".to_owned(),
                    Some(json!({"code": "BAD_USER_INPUT"})),
                ),
                ErrorCode::RefTaken => (
                    "This ref is already in use by another account.".to_owned(),
                    Some(json!({"code": "BAD_USER_INPUT"})),
                ),
                ErrorCode::TrainingRefTaken => (
                    "This ref is already in use by another training.".to_owned(),
                    Some(json!({"code": "BAD_USER_INPUT"})),
                ),
                ErrorCode::InvalidEmail => (
                    "Email address is invalid.".to_owned(),
                    Some(json!({"code": "BAD_USER_INPUT"})),
                ),
                ErrorCode::NotFound => (format!("Not found: {message}"), None),
                ErrorCode::BadUserInput => {
                    (message.to_owned(), Some(json!({"code": "BAD_USER_INPUT"})))
                }
            },
        }
    }

    /// The body of an answer refusing an invalid or expired token, sent with HTTP 401
    /// (`as_http`) or 200.
    pub fn token_refusal(self, as_http: bool) -> Value {
        match (self, as_http) {
            (ErrorStyle::Sim, _) => json!({"errors": [{
                "message": "Authentication credentials were not provided or have expired",
                "extensions": {"code": crate::server::AUTH_ERROR_CODE},
            }]}),
            (ErrorStyle::Graphene, true) => {
                json!({"detail": "Authentication credentials were not provided."})
            }
            (ErrorStyle::Graphene, false) => json!({
                "data": null,
                "errors": [{"message": "You do not have permission to perform this action"}],
            }),
            (ErrorStyle::Apollo, _) => json!({"errors": [{
                "message": "Unauthenticated",
                "extensions": {"code": "UNAUTHENTICATED"},
            }]}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_style_words_a_taken_address_its_own_way() {
        let rendered: Vec<_> = [ErrorStyle::Sim, ErrorStyle::Graphene, ErrorStyle::Apollo]
            .into_iter()
            .map(|style| style.field_error(ErrorCode::EmailTaken, "email `a@b.c` is taken"))
            .collect();
        assert_eq!(rendered[0].1, Some(json!({"code": "EMAIL_TAKEN"})));
        assert_eq!(
            rendered[1],
            (
                "User with this Email address already exists.".to_owned(),
                Some(json!({"code": "Conflict", "field": "email"}))
            )
        );
        assert_eq!(rendered[2].1, Some(json!({"code": "BAD_USER_INPUT"})));
        assert!(rendered[2].0.contains("already in use"));
    }
}
