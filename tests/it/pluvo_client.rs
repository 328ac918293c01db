//! The Pluvo client against wiremock: token caching and renewal, retries, pacing, per-alias results.

// Helpers here are test code too; a failed setup step should panic loudly.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use pluvo_sync::domain::CategoryValue;
use pluvo_sync::domain::{CategoryRef, Email, EmployeeRef, GroupRef, Role};
use pluvo_sync::metrics::Metrics;
use pluvo_sync::pluvo::{
    CategoryUpdate, PersonWrite, PluvoClient, PluvoError, PluvoSettings, Selector, UserFields,
    UserUpsert,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::{body_partial_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const USER_ID: &str = "0b7e3c52-3f0e-4c4e-9d51-2a6f0e8f6c11";

/// Matches only GraphQL bodies whose document validates against the vendored SDL, so every
/// document the client sends in these tests is checked as a real server would.
struct ValidAgainstSdl(Arc<Valid<Schema>>);

impl wiremock::Match for ValidAgainstSdl {
    fn matches(&self, request: &Request) -> bool {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return false;
        };
        let Some(query) = body["query"].as_str() else {
            return false;
        };
        ExecutableDocument::parse_and_validate(&self.0, query, "request.graphql").is_ok()
    }
}

fn sdl() -> ValidAgainstSdl {
    let schema =
        Schema::parse_and_validate(include_str!("../../schema/pluvo.graphql"), "pluvo.graphql")
            .expect("vendored SDL is valid");
    ValidAgainstSdl(Arc::new(schema))
}

fn settings(url: &str, extra: Value) -> PluvoSettings {
    let mut raw = json!({
        "url": url,
        "client_id": "sync-client",
        "client_secret": "top-secret",
        "rate_per_second": 1000.0,
        "burst": 100,
        "timeout_secs": 5,
        "max_attempts": 4,
        "backoff_base_ms": 1,
        "backoff_max_ms": 20,
    });
    if let (Some(raw), Some(extra)) = (raw.as_object_mut(), extra.as_object()) {
        raw.extend(extra.clone());
    }
    serde_json::from_value(raw).expect("test settings deserialise")
}

fn client_for(url: &str, extra: Value) -> (PluvoClient, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let resolved = settings(url, extra)
        .resolve()
        .expect("test settings resolve");
    (
        PluvoClient::new(resolved, metrics.clone()).expect("client builds"),
        metrics,
    )
}

fn token_body(token: &str) -> Value {
    json!({"access_token": token, "token_type": "Bearer", "expires_in": 86400,
           "scope": "users.read users.write groups.read groups.write extra_categories.write"})
}

async fn mount_token(server: &MockServer, token: &str, times: Option<u64>) {
    let mock = Mock::given(method("POST"))
        .and(path("/oauth/token/"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("client_id=sync-client"))
        .and(body_string_contains("client_secret=top-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(token_body(token)));
    let mock = match times {
        Some(n) => mock.up_to_n_times(n).expect(n),
        None => mock,
    };
    mock.mount(server).await;
}

fn graphql(token: &str) -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/graphql/"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .and(sdl())
}

fn user_data() -> Value {
    json!({"data": {"user": {"id": USER_ID, "ref": "007", "email": "a@example.com",
                             "name": "Ann", "archived": false,
                             "participantGroups": [{"ref": "dept-sales"}]}}})
}

fn employee(r: &str) -> EmployeeRef {
    EmployeeRef::parse(r).unwrap()
}

fn status(metrics: &Metrics, status: &str) -> f64 {
    metrics.get("pluvo_requests_total", vec![("status", status.into())])
}

#[tokio::test]
async fn one_token_serves_many_concurrent_calls() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    graphql("tok-1")
        .and(body_partial_json(json!({"variables": {"userRef": "007"}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(user_data()))
        .expect(8)
        .mount(&server)
        .await;
    let (client, metrics) = client_for(&server.uri(), json!({}));

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.find_user_by_ref(&employee("007")).await })
        })
        .collect();
    for task in tasks {
        let user = task.await.unwrap().unwrap().expect("user found");
        assert_eq!(user.id, USER_ID);
        assert_eq!(user.r#ref.as_deref(), Some("007"));
        assert_eq!(user.groups, vec!["dept-sales".to_owned()]);
    }
    assert_eq!(
        status(&metrics, "200"),
        9.0,
        "8 queries and 1 token request"
    );
}

/// A server whose first token is refused with `refusal` and whose second one works; each token
/// must be issued exactly once and each used exactly once.
async fn server_refusing_the_first_token(refusal: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    mount_token(&server, "tok-2", Some(1)).await;
    graphql("tok-1")
        .respond_with(refusal)
        .expect(1)
        .mount(&server)
        .await;
    graphql("tok-2")
        .respond_with(ResponseTemplate::new(200).set_body_json(user_data()))
        .expect(1)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn http_401_renews_the_token_and_the_call_succeeds() {
    let server = server_refusing_the_first_token(ResponseTemplate::new(401)).await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let email = Email::parse("a@example.com").unwrap();
    let user = client.find_user_by_email(&email).await.unwrap();
    assert_eq!(user.map(|u| u.name).as_deref(), Some("Ann"));
}

#[tokio::test]
async fn a_graphql_auth_error_renews_the_token_and_the_call_succeeds() {
    let expired = ResponseTemplate::new(200).set_body_json(json!({
        "data": null,
        "errors": [{"message": "Token has expired", "extensions": {"code": "AuthenticationError"}}]
    }));
    let server = server_refusing_the_first_token(expired).await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let user = client.find_user_by_ref(&employee("007")).await.unwrap();
    assert!(user.is_some());
}

#[tokio::test]
async fn a_fresh_token_refused_again_is_an_auth_error_not_a_loop() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", None).await;
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let error = client.groups().await.unwrap_err();
    assert!(matches!(error, PluvoError::Auth(_)), "{error:?}");
    assert!(!error.is_retryable());
    // The token response granted every scope asked for: scope cannot be the cause, and the
    // error says so instead of sending the operator to pluvo.scope.
    let text = error.to_string();
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(text.contains("scope is not the cause"), "{text}");
}

/// Servers word "your token is no good" differently; each is a reason to renew it once.
#[tokio::test]
async fn a_refused_token_is_renewed_whatever_the_server_calls_it() {
    let cases = [
        (
            "Django REST framework: 403 and a detail",
            ResponseTemplate::new(403)
                .set_body_json(json!({"detail": "Authentication credentials were not provided."})),
        ),
        (
            "graphene: 200 and a permission message, no code",
            ResponseTemplate::new(200).set_body_json(json!({
                "data": null,
                "errors": [{"message": "You do not have permission to perform this action"}]
            })),
        ),
        (
            "Apollo: UNAUTHENTICATED",
            ResponseTemplate::new(200).set_body_json(json!({
                "errors": [{"message": "Unauthenticated", "extensions": {"code": "UNAUTHENTICATED"}}]
            })),
        ),
        (
            "graphql-jwt: expired signature",
            ResponseTemplate::new(200)
                .set_body_json(json!({"errors": [{"message": "Signature has expired"}]})),
        ),
    ];
    for (name, refusal) in cases {
        let server = server_refusing_the_first_token(refusal).await;
        let (client, _) = client_for(&server.uri(), json!({}));
        let user = client.find_user_by_ref(&employee("007")).await;
        assert!(matches!(user, Ok(Some(_))), "{name}: {user:?}");
    }
}

/// A user that does not exist is `None`, whichever way the server says so.
#[tokio::test]
async fn a_missing_user_is_none_whatever_the_server_calls_it() {
    let cases = [
        json!({"message": "no user with ref `007`", "path": ["user"], "extensions": {"code": "NOT_FOUND"}}),
        json!({"message": "User matching query does not exist.", "path": ["user"]}),
        json!({"message": "x", "path": ["user"], "extensions": {"code": "DoesNotExist"}}),
    ];
    for error in cases {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", None).await;
        graphql("tok-1")
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": {"user": null}, "errors": [error.clone()]})),
            )
            .mount(&server)
            .await;
        let (client, _) = client_for(&server.uri(), json!({}));
        let user = client.find_user_by_ref(&employee("007")).await;
        assert!(matches!(user, Ok(None)), "{error}: {user:?}");
    }
}

/// A server that answers a taken address with HTTP 409 (with or without a path) refuses that
/// item: it is an e-mail conflict, not a failure of the connection.
#[tokio::test]
async fn a_409_conflict_is_the_items_email_conflict() {
    let cases = [
        json!({"message": "User with this Email address already exists.", "path": ["u0"],
               "extensions": {"code": "Conflict", "field": "email"}}),
        json!({"message": "User with this Email address already exists."}),
    ];
    for error in cases {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", None).await;
        graphql("tok-1")
            .respond_with(
                ResponseTemplate::new(409)
                    .set_body_json(json!({"data": null, "errors": [error.clone()]})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let (client, _) = client_for(&server.uri(), json!({}));
        let batch = client.upsert_users(&[upsert("1")]).await;
        let item = batch.items[0].as_ref().unwrap_err();
        assert!(item.is_email_conflict(), "{error}: {item:?}");
        assert!(item.is_refusal());
    }
}

#[tokio::test]
async fn invalid_client_is_reported_once_and_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token/"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": "invalid_client"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/graphql/"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let error = client.check_token().await.unwrap_err();
    match &error {
        PluvoError::Auth(message) => {
            assert!(message.contains("pluvo.client_id"), "{message}");
            assert!(
                !message.contains("top-secret"),
                "the secret must not leak: {message}"
            );
        }
        other => panic!("expected Auth, got {other:?}"),
    }
    assert!(!error.is_retryable());
    // A second call does not ask again with the same refused credentials.
    assert!(matches!(
        client.user_categories().await,
        Err(PluvoError::Auth(_))
    ));
}

#[tokio::test]
async fn a_429_with_retry_after_pauses_then_succeeds() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"extraCategories": [
                {"id": USER_ID, "ref": "dept", "title": "Department", "categoryType": "CHOICE",
                 "choiceOptions": [{"stringValue": "Sales"}, {"stringValue": "IT"}]}
            ]}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let (client, metrics) = client_for(&server.uri(), json!({"rate_per_second": 10.0}));
    let started = Instant::now();
    let categories = client.user_categories().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(categories[0].r#ref.as_deref(), Some("dept"));
    assert_eq!(categories[0].choices, ["Sales", "IT"]);
    assert_eq!(metrics.get("pluvo_rate_limited_total", vec![]), 1.0);
    assert_eq!(status(&metrics, "429"), 1.0);
    // The 429 slowed the client down (to 70 %; the answered retry may have raised it a little).
    let rate = metrics.get("pluvo_request_rate_per_second", vec![]);
    assert!((7.0..7.1).contains(&rate), "rate in force: {rate}");
}

/// Some servers (and gateways) refuse a request for its rate with HTTP 200 and a GraphQL error
/// instead of a 429. Whatever they call it, it is a 429: the call is retried, not failed, and
/// the client slows down as it would for a 429.
#[tokio::test]
async fn a_rate_limit_error_in_a_graphql_answer_slows_down_like_a_429() {
    let cases = [
        json!({"message": "Rate limit exceeded", "extensions": {"code": "RATE_LIMITED"}}),
        json!({"message": "Too many requests, please slow down"}),
        json!({"message": "Request was throttled. Expected available in 1 second."}),
        json!({"message": "Slow down", "extensions": {"code": "TOO_MANY_REQUESTS"}}),
    ];
    for error in cases {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", Some(1)).await;
        graphql("tok-1")
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"data": null, "errors": [error.clone()]})),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        let data: serde_json::Map<_, _> = [upserted("u0", "1", true), upserted("u1", "2", true)]
            .into_iter()
            .collect();
        graphql("tok-1")
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": data})))
            .expect(1)
            .mount(&server)
            .await;
        let (client, metrics) = client_for(
            &server.uri(),
            json!({"rate_per_second": 10.0, "backoff_base_ms": 50, "backoff_max_ms": 100}),
        );
        let batch = client.upsert_users(&[upsert("1"), upsert("2")]).await;
        assert_eq!(batch.succeeded(), 2, "{error}: {:?}", batch.items);
        assert_eq!(batch.attempts, 2, "{error}");
        assert_eq!(
            metrics.get("pluvo_rate_limited_total", vec![]),
            1.0,
            "{error}"
        );
        let rate = metrics.get("pluvo_request_rate_per_second", vec![]);
        assert!((7.0..7.1).contains(&rate), "{error}: rate in force: {rate}");
    }
}

/// A taken address refused as Django/graphene words it, without a `path`.
fn path_less_conflict() -> Value {
    json!({"data": null, "errors": [{
        "message": "User with this Email address already exists.",
        "extensions": {"code": "Conflict", "field": "email"}}]})
}

/// A server that refuses a taken address without a `path` (the whole answer one error, HTTP 200
/// or 409) does not say which person of a batch it meant. The batch's people are then sent one
/// by one, so only the person whose address is taken fails, as their own refusal.
#[tokio::test]
async fn a_path_less_email_conflict_in_a_batch_fails_only_the_conflicting_person() {
    for status in [200, 409] {
        let server = MockServer::start().await;
        mount_token(&server, "tok-1", Some(1)).await;
        let conflict = path_less_conflict();
        // The batch of three.
        graphql("tok-1")
            .and(body_string_contains("u2: updateOrCreateUser"))
            .respond_with(ResponseTemplate::new(status).set_body_json(conflict.clone()))
            .expect(1)
            .mount(&server)
            .await;
        // Then each person alone: the second one's address is taken.
        graphql("tok-1")
            .and(body_partial_json(json!({"variables": {"u0_ref": "2"}})))
            .respond_with(ResponseTemplate::new(status).set_body_json(conflict.clone()))
            .expect(1)
            .mount(&server)
            .await;
        for r in ["1", "3"] {
            let data: serde_json::Map<_, _> = [upserted("u0", r, true)].into_iter().collect();
            graphql("tok-1")
                .and(body_partial_json(json!({"variables": {"u0_ref": r}})))
                .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": data})))
                .expect(1)
                .mount(&server)
                .await;
        }
        let (client, _) = client_for(&server.uri(), json!({}));
        let batch = client
            .upsert_users(&[upsert("1"), upsert("2"), upsert("3")])
            .await;
        assert_eq!(batch.attempts, 4, "HTTP {status}: the batch, then one each");
        assert_eq!(batch.items[0].as_ref().unwrap().r#ref.as_deref(), Some("1"));
        assert_eq!(batch.items[2].as_ref().unwrap().r#ref.as_deref(), Some("3"));
        let error = batch.items[1].as_ref().unwrap_err();
        assert!(error.is_email_conflict(), "HTTP {status}: {error:?}");
        assert!(error.is_refusal(), "the person's own refusal, not systemic");
    }
}

/// A person's upsert and custom fields share a document with other people's; when the server
/// refuses a taken address without a path, the people are sent one by one, and only the person
/// whose address is taken fails, with an e-mail conflict on their upsert.
#[tokio::test]
async fn one_persons_refusal_in_a_shared_document_fails_only_that_person() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    let conflict = path_less_conflict();
    graphql("tok-1")
        .and(body_string_contains("u2: updateOrCreateUser"))
        .respond_with(ResponseTemplate::new(200).set_body_json(conflict.clone()))
        .expect(1)
        .mount(&server)
        .await;
    graphql("tok-1")
        .and(body_partial_json(json!({"variables": {"u0_ref": "2"}})))
        .respond_with(ResponseTemplate::new(409).set_body_json(conflict))
        .expect(1)
        .mount(&server)
        .await;
    let mut data: serde_json::Map<_, _> = [upserted("u0", "1", true)].into_iter().collect();
    data.insert("c1".into(), json!({"extraCategoryValues": []}));
    graphql("tok-1")
        .and(body_partial_json(
            json!({"variables": {"u0_ref": "1", "c1_modelRef": "1"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": data})))
        .expect(1)
        .mount(&server)
        .await;
    let person = |r: &str| PersonWrite {
        employee_ref: employee(r),
        user: Some(upsert(r).fields),
        categories: vec![(
            CategoryRef::parse("has_company_car").unwrap(),
            CategoryValue::Boolean(true),
        )],
    };
    let (client, _) = client_for(&server.uri(), json!({}));
    let batch = client.write_people(&[person("1"), person("2")]).await;
    assert_eq!(batch.attempts, 3, "the batch, then one each");
    let first = batch.items[0].as_ref().unwrap();
    assert!(first.user.as_ref().unwrap().as_ref().unwrap().created);
    assert!(first.categories.as_ref().unwrap().is_ok());
    let second = batch.items[1].as_ref().unwrap();
    let error = second.user.as_ref().unwrap().as_ref().unwrap_err();
    assert!(error.is_email_conflict(), "{error:?}");
}

/// Stopping a run must not wait out Pluvo's `Retry-After`: the waiting call gives up at once,
/// sends nothing more, and says why.
#[tokio::test]
async fn a_cancelled_call_stops_waiting_for_retry_after_and_sends_nothing_more() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let cancel = tokio_util::sync::CancellationToken::new();
    let client = client.with_cancel(cancel.clone());
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.user_categories().await }
    });
    while server.received_requests().await.unwrap_or_default().len() < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .expect("the call kept waiting for Retry-After after cancellation")
        .unwrap();
    assert_eq!(result.unwrap_err(), PluvoError::Cancelled);
    assert!(stopped.elapsed() < Duration::from_secs(1));
    // A later call on the cancelled client is not sent either, even behind the shared pause.
    assert_eq!(
        client.user_categories().await.unwrap_err(),
        PluvoError::Cancelled
    );
}

fn upsert(r: &str) -> UserUpsert {
    UserUpsert {
        selector: Selector::Ref(employee(r)),
        fields: UserFields {
            name: Some(format!("Person {r}")),
            roles: Some(vec![Role::Participant]),
            ..UserFields::default()
        },
    }
}

fn upserted(alias: &str, r: &str, created: bool) -> (String, Value) {
    (
        alias.to_owned(),
        json!({"user": {"id": USER_ID, "ref": r}, "created": created}),
    )
}

#[tokio::test]
async fn a_503_is_retried_and_the_batch_counts_both_attempts() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    let data: serde_json::Map<_, _> = [upserted("u0", "1", true)].into_iter().collect();
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": data})))
        .expect(1)
        .mount(&server)
        .await;
    let (client, metrics) = client_for(&server.uri(), json!({}));
    let batch = client.upsert_users(&[upsert("1")]).await;
    assert_eq!(batch.attempts, 2);
    let user = batch.items[0].as_ref().unwrap();
    assert!(user.created);
    assert_eq!(user.id, USER_ID);
    assert_eq!(status(&metrics, "503"), 1.0);
    assert_eq!(metrics.get("pluvo_retries_total", vec![]), 1.0);
}

#[tokio::test]
async fn a_timed_out_request_is_retried() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    graphql("tok-1")
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(user_data())
                .set_delay(Duration::from_secs(5)),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(user_data()))
        .expect(1)
        .mount(&server)
        .await;
    let (client, metrics) = client_for(&server.uri(), json!({"timeout_secs": 1}));
    assert!(
        client
            .find_user_by_ref(&employee("007"))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        status(&metrics, "transport_error"),
        1.0,
        "the timed-out attempt"
    );
    assert_eq!(metrics.get("pluvo_retries_total", vec![]), 1.0);
}

#[tokio::test]
async fn attempts_are_capped_and_every_item_gets_the_error() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(500))
        .expect(3)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({"max_attempts": 3}));
    let batch = client.upsert_users(&[upsert("1"), upsert("2")]).await;
    assert_eq!(batch.attempts, 3);
    assert_eq!(batch.items.len(), 2);
    for item in &batch.items {
        match item {
            Err(error @ PluvoError::Exhausted { attempts: 3, last }) => {
                assert!(matches!(**last, PluvoError::Http { status: 500, .. }));
                assert!(error.is_retryable(), "a later run may succeed");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_field_error_fails_only_its_own_item() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    let mut data: serde_json::Map<_, _> = [upserted("u0", "1", false), upserted("u2", "3", true)]
        .into_iter()
        .collect();
    data.insert("u1".into(), Value::Null);
    graphql("tok-1")
        .and(body_string_contains(
            "u2: updateOrCreateUser(ref: $u2_ref, sendInvite: false",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": data,
            "errors": [{"message": "Email is already in use", "path": ["u1"],
                        "extensions": {"code": "EMAIL_TAKEN"}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let batch = client
        .upsert_users(&[upsert("1"), upsert("2"), upsert("3")])
        .await;
    assert_eq!(batch.attempts, 1, "field errors are not retried");
    assert_eq!(batch.succeeded(), 2);
    assert!(!batch.items[0].as_ref().unwrap().created);
    assert!(batch.items[2].as_ref().unwrap().created);
    let error = batch.items[1].as_ref().unwrap_err();
    assert_eq!(error.code(), Some("EMAIL_TAKEN"));
    assert!(!error.is_retryable());
}

/// An `Auth…` error on one alias of a batch, beside data for the others, is renewed once (it may
/// be the token); when the fresh token gets the same answer, the error is that field's own, and
/// the aliases that succeeded must be reported as succeeded, not failed with it.
#[tokio::test]
async fn an_auth_error_on_one_alias_that_survives_renewal_fails_only_that_alias() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", None).await;
    let mut data: serde_json::Map<_, _> = [upserted("u0", "1", false)].into_iter().collect();
    data.insert("u1".into(), Value::Null);
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": data,
            "errors": [{"message": "You may not change an administrator", "path": ["u1"],
                        "extensions": {"code": "NOT_AUTHORIZED"}}]
        })))
        .expect(2)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let batch = client.upsert_users(&[upsert("1"), upsert("2")]).await;
    assert_eq!(batch.attempts, 2, "one renewal, then the answer stands");
    assert!(batch.items[0].is_ok(), "{:?}", batch.items[0]);
    assert!(
        matches!(batch.items[1], Err(PluvoError::Auth(_))),
        "{:?}",
        batch.items[1]
    );
}

#[tokio::test]
async fn batches_are_split_at_batch_size_and_keep_input_order() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    // Two documents: aliases restart at u0 in each; the second has one item.
    let first: serde_json::Map<_, _> = [upserted("u0", "a", true), upserted("u1", "b", true)]
        .into_iter()
        .collect();
    let second: serde_json::Map<_, _> = [upserted("u0", "c", false)].into_iter().collect();
    graphql("tok-1")
        .and(body_string_contains("u1: updateOrCreateUser"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": first})))
        .expect(1)
        .mount(&server)
        .await;
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": second})))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({"batch_size": 2}));
    let batch = client
        .upsert_users(&[upsert("a"), upsert("b"), upsert("c")])
        .await;
    assert_eq!(batch.attempts, 2);
    let refs: Vec<_> = batch
        .items
        .iter()
        .map(|r| r.as_ref().unwrap().r#ref.clone().unwrap())
        .collect();
    assert_eq!(refs, ["a", "b", "c"]);
}

#[tokio::test]
async fn category_values_go_in_one_document_and_empty_updates_send_nothing() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    graphql("tok-1")
        .and(body_partial_json(json!({"variables": {
            "c0_modelRef": "1",
            "c0_values": [{"categoryRef": "start", "datetimeValue": "2025-03-01T00:00:00Z"}],
            "c1_modelRef": "3",
            "c1_values": [{"categoryRef": "site", "choiceValues": [{"stringValue": "North"}]}],
        }})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "c0": {"extraCategoryValues": [{"category": {"ref": "start"}}]},
            "c1": null
        }, "errors": [{"message": "Unknown choice", "path": ["c1"], "extensions": {"code": "BAD_USER_INPUT"}}]})))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let date = chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
    let updates = [
        CategoryUpdate {
            user: employee("1"),
            values: vec![(
                CategoryRef::parse("start").unwrap(),
                CategoryValue::Date(date),
            )],
        },
        CategoryUpdate {
            user: employee("2"),
            values: vec![],
        },
        CategoryUpdate {
            user: employee("3"),
            values: vec![(
                CategoryRef::parse("site").unwrap(),
                CategoryValue::Choice("North".into()),
            )],
        },
    ];
    let batch = client.set_category_values(&updates).await;
    assert_eq!(batch.attempts, 1);
    assert!(batch.items[0].is_ok());
    assert!(batch.items[1].is_ok(), "nothing to send is success");
    assert_eq!(
        batch.items[2].as_ref().unwrap_err().code(),
        Some("BAD_USER_INPUT")
    );
}

#[tokio::test]
async fn groups_follow_end_cursor_until_the_last_page() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    let group = |id: &str, r: &str| json!({"node": {"id": id, "ref": r, "name": r.to_uppercase()}, "cursor": r});
    graphql("tok-1")
        .and(body_partial_json(
            json!({"variables": {"first": 50, "after": null}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"paginatedGroups": {
                "edges": [group(USER_ID, "g1"), group(USER_ID, "g2")],
                "pageInfo": {"hasNextPage": true, "endCursor": "c2"}
            }}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    graphql("tok-1")
        .and(body_partial_json(
            json!({"variables": {"first": 50, "after": "c2"}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"data": {"paginatedGroups": {
                "edges": [group(USER_ID, "g3")],
                "pageInfo": {"hasNextPage": false, "endCursor": "c3"}
            }}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let groups = client.groups().await.unwrap();
    let refs: Vec<_> = groups.iter().map(|g| g.r#ref.clone().unwrap()).collect();
    assert_eq!(refs, ["g1", "g2", "g3"]);
}

/// The 100-refs cap is per root field, not per request: 101 new members of one group are two
/// fields of one document.
#[tokio::test]
async fn a_group_of_101_new_members_is_one_request() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    let users: Vec<EmployeeRef> = (0..101).map(|i| employee(&i.to_string())).collect();
    let refs =
        |range: std::ops::Range<usize>| -> Vec<String> { range.map(|i| i.to_string()).collect() };
    graphql("tok-1")
        .and(body_partial_json(json!({"variables": {
            "a0_groupRef": "sales", "a0_userRefs": refs(0..100),
            "a1_groupRef": "sales", "a1_userRefs": refs(100..101),
        }})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {
            "a0": {"addedIds": refs(0..100), "alreadyAddedIds": [], "failedIds": []},
            "a1": {"addedIds": ["100"], "alreadyAddedIds": [], "failedIds": []},
        }})))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let sales = GroupRef::parse("sales").unwrap();
    let added = client.add_to_group(&sales, &users).await.unwrap();
    assert_eq!(added.done.len(), 101);
    assert_eq!(added.attempts, 1);
}

#[tokio::test]
async fn membership_changes_report_per_user_outcomes() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    graphql("tok-1")
        .and(body_string_contains("addUsersToGroup"))
        .and(body_partial_json(
            json!({"variables": {"a0_groupRef": "sales", "a0_userRefs": ["1", "2", "3"]}}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": {"a0": {
                "addedIds": ["1"], "alreadyAddedIds": ["2"], "failedIds": ["3"]
            }}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    graphql("tok-1")
        .and(body_string_contains("removeUsersFromGroup"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": {"r0": null},
            "errors": [{"message": "Group not found", "path": ["r0"],
                        "extensions": {"code": "NOT_FOUND"}}]
        })))
        .expect(1)
        .mount(&server)
        .await;
    let (client, _) = client_for(&server.uri(), json!({}));
    let sales = GroupRef::parse("sales").unwrap();
    let users = [employee("1"), employee("2"), employee("3")];
    let added = client.add_to_group(&sales, &users).await.unwrap();
    assert_eq!(
        (added.done, added.already, added.failed),
        (
            vec!["1".to_owned()],
            vec!["2".to_owned()],
            vec!["3".to_owned()]
        )
    );
    assert_eq!(added.attempts, 1);
    let error = client.remove_from_group(&sales, &users).await.unwrap_err();
    assert_eq!(error.code(), Some("NOT_FOUND"));
}

#[tokio::test]
async fn requests_are_paced_by_the_rate_limiter() {
    let server = MockServer::start().await;
    mount_token(&server, "tok-1", Some(1)).await;
    graphql("tok-1")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"user": null}})))
        .expect(5)
        .mount(&server)
        .await;
    let (client, metrics) = client_for(&server.uri(), json!({"rate_per_second": 10.0, "burst": 1}));
    let started = Instant::now();
    for _ in 0..5 {
        assert!(
            client
                .find_user_by_ref(&employee("x"))
                .await
                .unwrap()
                .is_none()
        );
    }
    // 6 requests (token included) at 10/s with no burst: at least 5 gaps of 100 ms.
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert!(metrics.get("pluvo_rate_limiter_wait_seconds_total", vec![]) > 0.0);
}

/// A bare HTTP/1.1 server for what wiremock cannot do: drop connections. Every connection serves
/// one request and closes. The first GraphQL request gets no answer at all, the second a body cut
/// off mid-way, the third a real answer.
async fn flaky_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let mut graphql_calls = 0;
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let request = read_request(&mut socket).await;
            let reply = if request.starts_with("POST /oauth/token/ ") {
                http_response(&token_body("tok-1").to_string())
            } else {
                graphql_calls += 1;
                match graphql_calls {
                    1 => continue, // dropped: the socket closes without a byte
                    2 => "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\nconnection: close\r\n\r\n{\"data\":".to_owned(),
                    _ => http_response(&user_data().to_string()),
                }
            };
            let _ = socket.write_all(reply.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (url, handle)
}

fn http_response(body: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Reads one request (headers and a content-length body) and returns it as text.
async fn read_request(socket: &mut tokio::net::TcpStream) -> String {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = socket.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buffer.len() >= end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buffer).into_owned()
}

#[tokio::test]
async fn dropped_connections_and_cut_off_bodies_are_retried() {
    let (url, server) = flaky_server().await;
    let (client, metrics) = client_for(&url, json!({}));
    let user = client.find_user_by_ref(&employee("007")).await.unwrap();
    assert_eq!(user.map(|u| u.id).as_deref(), Some(USER_ID));
    assert_eq!(
        status(&metrics, "transport_error"),
        1.0,
        "the dropped connection"
    );
    assert_eq!(status(&metrics, "200"), 3.0, "token, cut-off body, answer");
    assert_eq!(metrics.get("pluvo_retries_total", vec![]), 2.0);
    server.abort();
}
