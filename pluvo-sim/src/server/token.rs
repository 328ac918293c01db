//! The OAuth token endpoint: client credentials from the form or HTTP Basic, as Pluvo's
//! `/oauth/token/` takes them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{FromRequest, Request, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde::Deserialize;

use super::connection::{Tracker, json_response, sleep_ms};
use super::{Shared, lock};
use crate::config::Faults;

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
}

/// Client credentials from the form or, as OAuth also allows, HTTP Basic.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?,
    )
    .ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    json_response(
        status,
        serde_json::to_vec(&serde_json::json!({ "error": error })).unwrap_or_default(),
    )
}

pub(super) async fn token_endpoint(
    AxState(shared): AxState<Arc<Shared>>,
    req: Request,
) -> Response {
    let mut track = Tracker::new(&shared, &req, true);
    lock(&shared.stats).token_requests += 1;
    let knobs = shared.knobs();
    sleep_ms(knobs.latency_ms).await;
    let response = if req.method() != Method::POST {
        oauth_error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request")
    } else {
        let basic = basic_credentials(req.headers());
        match axum::Form::<TokenForm>::from_request(req, &()).await {
            Err(_) => oauth_error(StatusCode::BAD_REQUEST, "invalid_request"),
            Ok(axum::Form(form)) => issue_token(&shared, &knobs, form, basic),
        }
    };
    track.respond(response)
}

fn issue_token(
    shared: &Shared,
    knobs: &Faults,
    form: TokenForm,
    basic: Option<(String, String)>,
) -> Response {
    if form.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    let (id, secret) = match (form.client_id, form.client_secret, basic) {
        (Some(id), Some(secret), _) => (id, secret),
        (_, _, Some(basic)) => basic,
        _ => return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client"),
    };
    if id != shared.client_id || secret != shared.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let token =
        lock(&shared.tokens).issue(&id, Duration::from_secs(knobs.token_ttl), Instant::now());
    let body = serde_json::json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": knobs.token_ttl,
        "scope": form.scope.unwrap_or_default(),
    });
    json_response(
        StatusCode::OK,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}
