//! The GraphQL endpoint: the request pipeline (latency, authentication, rate limit, injected
//! faults, body checks, execution) and the redirect for slash-less paths.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apollo_compiler::response::JsonMap;
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::connection::{Kill, Tracker, drop_connection, error_response, json_response, sleep_ms};
use super::{MAX_BODY, Shared, lock};
use crate::config::{AuthErrorMode, Faults};
use crate::graphql;
use apollo_compiler::validation::Valid;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GraphqlBody {
    query: String,
    #[serde(default)]
    variables: Option<serde_json_bytes::Value>,
    #[serde(default)]
    operation_name: Option<String>,
}

pub(super) async fn graphql_endpoint(
    AxState(shared): AxState<Arc<Shared>>,
    req: Request,
) -> Response {
    let mut track = Tracker::new(&shared, &req, true);
    let response = graphql_pipeline(&shared, &mut track, req).await;
    track.respond(response)
}

async fn graphql_pipeline(shared: &Arc<Shared>, track: &mut Tracker, req: Request) -> Response {
    let knobs = shared.knobs();
    sleep_ms(knobs.latency_ms).await;
    if req.method() != Method::POST {
        return error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST for GraphQL requests",
            None,
        );
    }
    let kill = req.extensions().get::<Kill>().cloned();

    let now = Instant::now();
    let client = bearer(req.headers())
        .and_then(|t| lock(&shared.tokens).client_of(t, now).map(str::to_owned));
    let Some(client) = client else {
        let as_http = match knobs.auth_error {
            AuthErrorMode::Http401 => true,
            AuthErrorMode::Graphql => false,
            AuthErrorMode::Mixed => lock(&shared.faults).coin(),
        };
        let body =
            serde_json::to_vec(&knobs.error_style.token_refusal(as_http)).unwrap_or_default();
        return if as_http {
            let mut response = json_response(StatusCode::UNAUTHORIZED, body);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            response
        } else {
            json_response(StatusCode::OK, body)
        };
    };

    if let Err(retry_after) = lock(&shared.limiter).check(&client, knobs.rate, knobs.burst, now) {
        lock(&shared.stats).rate_limited += 1;
        let status = if knobs.rate_limit_in_body {
            StatusCode::OK
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        let mut response = error_response(status, "rate limit exceeded", Some("RATE_LIMITED"));
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return response;
    }

    let draw = lock(&shared.faults).draw(&knobs);
    if let Some(status) = draw.error_5xx {
        track.fault("5xx");
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return (status, status.canonical_reason().unwrap_or("server error")).into_response();
    }
    if draw.reset {
        track.fault("reset");
        return drop_connection(kill).await;
    }
    if draw.slow {
        track.fault("slow");
        sleep_ms(knobs.slow_ms).await;
    }

    let json_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json",
            None,
        );
    }
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body exceeds 2 MiB",
            None,
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return too_large();
    }
    let Ok(bytes) = axum::body::to_bytes(req.into_body(), MAX_BODY).await else {
        return too_large();
    };
    let body: GraphqlBody = match serde_json::from_slice(&bytes) {
        Ok(body) => body,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                &format!("request body is not a GraphQL JSON request: {e}"),
                None,
            );
        }
    };
    let variables: JsonMap = match body.variables {
        None | Some(serde_json_bytes::Value::Null) => JsonMap::new(),
        Some(serde_json_bytes::Value::Object(map)) => map,
        Some(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "`variables` must be a JSON object",
                None,
            );
        }
    };
    lock(&shared.stats).graphql_documents += 1;

    let schema = &*shared.schema;
    let cached = lock(&shared.docs).get(&body.query);
    let doc = match cached {
        Some(doc) => doc,
        None => match graphql::parse(schema, &body.query) {
            Ok(doc) => {
                let doc = Arc::new(doc);
                lock(&shared.docs).insert(body.query.clone(), Arc::clone(&doc));
                doc
            }
            Err(errors) => {
                return json_response(StatusCode::BAD_REQUEST, graphql::errors_body(errors));
            }
        },
    };
    let operation = body.operation_name.as_deref();
    let is_mutation = match graphql::is_mutation(&doc, operation) {
        Ok(m) => m,
        Err(errors) => return json_response(StatusCode::BAD_REQUEST, graphql::errors_body(errors)),
    };
    if let Some(refused) = too_many_root_fields(shared, &knobs, &doc, operation) {
        return refused;
    }
    let delay = Duration::from_secs(knobs.membership_delay);
    let executed = {
        let mut state = lock(&shared.state);
        graphql::execute(
            schema,
            &doc,
            operation,
            &variables,
            &mut state,
            graphql::ExecOptions {
                now: Instant::now(),
                membership_delay: delay,
                result_forms: knobs.result_forms,
            },
        )
    };
    let mut executed = match executed {
        Ok(executed) => executed,
        Err(errors) => return json_response(StatusCode::BAD_REQUEST, graphql::errors_body(errors)),
    };
    {
        let mut stats = lock(&shared.stats);
        for field in &executed.fields {
            *stats.fields.entry(field.clone()).or_default() += 1;
        }
        stats.invitations += executed.invitations;
        stats.training_invitations += executed.training_invitations;
        stats.enrollment_mails += executed.enrollment_mails;
    }
    track.fields = std::mem::take(&mut executed.fields);
    if is_mutation && draw.after_commit {
        track.fault("after_commit");
        return drop_connection(kill).await;
    }
    json_response(StatusCode::OK, executed.body(knobs.error_style))
}

/// `--max-root-fields`: a document with more root fields is refused before anything runs, with
/// a GraphQL error worded as complexity limits usually are (HTTP 200, no `path`), or with a
/// proxy's plain HTTP 413 under `--too-big-413`.
fn too_many_root_fields(
    shared: &Shared,
    knobs: &Faults,
    doc: &Valid<apollo_compiler::ExecutableDocument>,
    operation: Option<&str>,
) -> Option<Response> {
    let fields = graphql::root_fields(doc, operation);
    if knobs.max_root_fields == 0 || fields <= knobs.max_root_fields {
        return None;
    }
    lock(&shared.stats).too_big += 1;
    if knobs.too_big_413 {
        return Some(
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 Request Entity Too Large",
            )
                .into_response(),
        );
    }
    Some(error_response(
        StatusCode::OK,
        &format!(
            "Query is too complex: the document has {fields} root fields, more than the {} \
             allowed per request; send fewer operations per request",
            knobs.max_root_fields
        ),
        Some("DOCUMENT_TOO_COMPLEX"),
    ))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Pluvo's paths end in a slash; without it Django answers with a permanent redirect.
pub(super) async fn add_slash(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, true);
    let mut location = format!("{}/", req.uri().path());
    if let Some(query) = req.uri().query() {
        location = format!("{location}?{query}");
    }
    let response = match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::MOVED_PERMANENTLY,
            [(header::LOCATION, location)],
        )
            .into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    };
    track.respond(response)
}
