//! The REST source against a fake HR API on 127.0.0.1: pagination, auth, retries, broken pages,
//! field paths, and the two documented example configs.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::*;

// ----- the fake HR API -------------------------------------------------------------------------

/// A request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    query: HashMap<String, String>,
    headers: HeaderMap,
    /// How many requests came before this one.
    n: usize,
}

impl Seen {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    fn number(&self, name: &str) -> usize {
        self.param(name)
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("request {} lacks a numeric {name}", self.n))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    fn json(body: Value) -> Self {
        Self::raw(200, body.to_string())
    }

    fn raw(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    fn status(status: u16) -> Self {
        Self::raw(status, "")
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

struct FakeApi {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeApi {
    async fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        let handler = Arc::new(handler);
        let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
        let log = Arc::clone(&seen);
        let app = axum::Router::new().fallback(move |request: Request| {
            let handler = Arc::clone(&handler);
            let log = Arc::clone(&log);
            async move {
                let uri = request.uri();
                let query = uri
                    .query()
                    .map(|query| {
                        Url::parse(&format!("http://fake/?{query}"))
                            .expect("query")
                            .query_pairs()
                            .map(|(name, value)| (name.into_owned(), value.into_owned()))
                            .collect()
                    })
                    .unwrap_or_default();
                let seen = {
                    let mut log = log.lock().expect("log");
                    let seen = Seen {
                        path: uri.path().to_owned(),
                        query,
                        headers: request.headers().clone(),
                        n: log.len(),
                    };
                    log.push(seen.clone());
                    seen
                };
                let reply = handler(&seen);
                tokio::time::sleep(reply.delay).await;
                let mut response = Response::builder().status(reply.status);
                for (name, value) in reply.headers {
                    response = response.header(name, value);
                }
                response.body(Body::from(reply.body)).expect("response")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serve");
        });
        Self {
            base: format!("http://{address}"),
            seen,
            server,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }

    /// The values of two numeric parameters in each request, in order.
    fn asked(&self, first: &str, second: &str) -> Vec<(usize, usize)> {
        self.seen()
            .iter()
            .map(|seen| (seen.number(first), seen.number(second)))
            .collect()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

// ----- helpers ---------------------------------------------------------------------------------

/// Settings from a `[source.rest]` TOML document, through config as the service loads them.
/// `BASE` in the text stands for the fake's address.
fn settings_from(toml: &str, base: &str) -> RestSettings {
    let text = toml.replace("BASE", base);
    config::Config::builder()
        .add_source(config::File::from_str(&text, config::FileFormat::Toml))
        .build()
        .expect("config")
        .get::<RestSettings>("source.rest")
        .expect("[source.rest]")
}

/// A quick source: `records = "people"`, columns `employee_number = "id"` and `email = "email"`,
/// fast retries, plus `extra` (top-level keys first, then tables).
fn source(api: &FakeApi, extra: &str) -> RestSource {
    let (keys, mut tables) = match extra.find('[') {
        Some(at) => (&extra[..at], extra[at..].to_owned()),
        None => (extra, String::new()),
    };
    // More columns are written as their own [source.rest.fields] table; TOML allows one.
    let mut more_fields = String::new();
    if let Some((before, after)) = tables.split_once("[source.rest.fields]\n") {
        let (fields, rest) = after
            .split_once("\n[")
            .map_or((after, String::new()), |(fields, rest)| {
                (fields, format!("\n[{rest}"))
            });
        more_fields = fields.to_owned();
        tables = format!("{before}{rest}");
    }
    let toml = format!(
        "[source.rest]\nbase_url = \"BASE\"\npath = \"/api/people\"\nrecords = \"people\"\ninitial_backoff_ms = 1\nmax_attempts = 3\n{keys}\n[source.rest.fields]\nemployee_number = \"id\"\nemail = \"email\"\n{more_fields}\n{tables}"
    );
    RestSource::from_settings(&settings_from(&toml, &api.base)).expect("valid settings")
}

fn person(n: usize) -> Value {
    json!({"id": format!("E{n:03}"), "email": format!("p{n}@example.com")})
}

fn people(range: std::ops::Range<usize>) -> Vec<Value> {
    range.map(person).collect()
}

/// A record's expected fields.
fn columns(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(column, value)| ((*column).to_owned(), (*value).to_owned()))
        .collect()
}

fn required() -> Vec<String> {
    vec!["employee_number".to_owned(), "email".to_owned()]
}

fn refs(data: &SourceData) -> Vec<String> {
    data.records
        .iter()
        .map(|record| record.get("employee_number").expect("ref").to_owned())
        .collect()
}

fn expected_refs(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|n| format!("E{n:03}")).collect()
}

fn page_error(result: Result<SourceData, SourceError>) -> (u32, String) {
    match result {
        Err(SourceError::Page { page, detail }) => (page, detail),
        other => panic!("expected a page error, got {other:?}"),
    }
}

// ----- pagination ------------------------------------------------------------------------------

#[tokio::test]
async fn page_style_stops_at_the_reported_total() {
    let api = FakeApi::start(|seen| {
        let page = seen.number("page");
        let size = seen.number("per_page");
        let start = (page - 1) * size;
        Reply::json(json!({"people": people(start..(start + size).min(5)), "meta": {"total": 5}}))
    })
    .await;
    let source = source(
        &api,
        "[source.rest.pagination]\nkind = \"page\"\npage_size = 2\ntotal = \"meta.total\"",
    );
    let data = source.read(&required()).await.expect("read");
    assert_eq!(refs(&data), expected_refs(0..5));
    let asked = api.asked("page", "per_page");
    assert_eq!(asked, [(1, 2), (2, 2), (3, 2)]);
    assert_eq!(
        data.records[4].location,
        Location::Item { page: 3, index: 0 }
    );
    assert_eq!(
        data.records[1].location,
        Location::Item { page: 1, index: 1 }
    );
}

#[tokio::test]
async fn page_style_without_total_stops_on_a_short_or_empty_page() {
    for (name, count, requests) in [
        ("short last page", 5, 3),
        ("exact multiple, empty last page", 4, 3),
    ] {
        let api = FakeApi::start(move |seen| {
            let start = (seen.number("pg") - 1) * seen.number("size");
            Reply::json(json!({"people": people(start.min(count)..(start + 2).min(count))}))
        })
        .await;
        let source = source(
            &api,
            "[source.rest.pagination]\nkind = \"page\"\npage_param = \"pg\"\nper_page_param = \"size\"\npage_size = 2",
        );
        let data = source.read(&required()).await.expect(name);
        assert_eq!(refs(&data), expected_refs(0..count), "{name}");
        assert_eq!(api.seen().len(), requests, "{name}");
    }
}

#[tokio::test]
async fn page_style_with_total_pages_and_zero_based_pages() {
    let api = FakeApi::start(|seen| {
        let page = seen.number("page");
        Reply::json(json!({
            "people": people(page * 2..(page * 2 + 2).min(5)),
            "metadata": {"total_pages": "3", "current_page": page}
        }))
    })
    .await;
    let source = source(
        &api,
        "[source.rest.pagination]\nkind = \"page\"\npage_size = 2\nfirst_page = 0\ntotal_pages = \"metadata.total_pages\"",
    );
    let data = source.read(&required()).await.expect("read");
    assert_eq!(refs(&data), expected_refs(0..5));
    let asked: Vec<usize> = api.seen().iter().map(|s| s.number("page")).collect();
    assert_eq!(asked, [0, 1, 2]);
}

#[tokio::test]
async fn offset_style_sends_skip_and_take_and_keeps_fixed_query() {
    let api = FakeApi::start(|seen| {
        let skip = seen.number("skip");
        let take = seen.number("take");
        Reply::json(json!({"skip": skip, "take": take, "people": people(skip.min(7)..(skip + take).min(7))}))
    })
    .await;
    let source = source(
        &api,
        "[source.rest.query]\norderbyfieldids = \"Medewerker\"\n[source.rest.pagination]\nkind = \"offset\"\npage_size = 3",
    );
    let data = source.read(&required()).await.expect("read");
    assert_eq!(refs(&data), expected_refs(0..7));
    let seen = api.seen();
    let asked = api.asked("skip", "take");
    assert_eq!(asked, [(0, 3), (3, 3), (6, 3)]);
    assert!(
        seen.iter()
            .all(|s| s.param("orderbyfieldids") == Some("Medewerker"))
    );
    assert!(seen.iter().all(|s| s.path == "/api/people"));
}

#[tokio::test]
async fn cursor_style_follows_the_cursor_until_it_is_null() {
    let api = FakeApi::start(|seen| match seen.param("after") {
        None => Reply::json(json!({"people": people(0..2), "paging": {"next": "c2"}})),
        Some("c2") => Reply::json(json!({"people": people(2..4), "paging": {"next": 3}})),
        Some("3") => Reply::json(json!({"people": people(4..5), "paging": {"next": null}})),
        Some(other) => panic!("unexpected cursor {other}"),
    })
    .await;
    let source = source(
        &api,
        "[source.rest.pagination]\nkind = \"cursor\"\ncursor_param = \"after\"\nnext_cursor = \"paging.next\"",
    );
    let data = source.read(&required()).await.expect("read");
    assert_eq!(refs(&data), expected_refs(0..5));
    assert_eq!(api.seen().len(), 3);
}

#[tokio::test]
async fn cursor_style_stops_on_an_empty_or_missing_cursor() {
    for last in [
        json!({"people": [], "paging": {"next": ""}}),
        json!({"people": []}),
    ] {
        let body = last.clone();
        let api = FakeApi::start(move |seen| match seen.param("after") {
            None => Reply::json(json!({"people": people(0..2), "paging": {"next": "x"}})),
            Some(_) => Reply::json(body.clone()),
        })
        .await;
        let source = source(
            &api,
            "[source.rest.pagination]\nkind = \"cursor\"\ncursor_param = \"after\"\nnext_cursor = \"paging.next\"",
        );
        let data = source.read(&required()).await.expect("read");
        assert_eq!(refs(&data), expected_refs(0..2), "{last}");
    }
}

#[tokio::test]
async fn cursor_style_refuses_a_cursor_it_has_seen() {
    let api = FakeApi::start(|seen| match seen.param("after") {
        None => Reply::json(json!({"people": people(0..2), "next": "a"})),
        Some("a") => Reply::json(json!({"people": people(2..4), "next": "b"})),
        Some(_) => Reply::json(json!({"people": people(4..6), "next": "a"})),
    })
    .await;
    let source = source(
        &api,
        "[source.rest.pagination]\nkind = \"cursor\"\ncursor_param = \"after\"\nnext_cursor = \"next\"",
    );
    let (page, detail) = page_error(source.read(&required()).await);
    assert_eq!(page, 3);
    assert!(detail.contains("returned before"), "{detail}");
    assert_eq!(api.seen().len(), 3);
}

#[tokio::test]
async fn link_style_follows_relative_and_absolute_next_links() {
    let api = FakeApi::start(|seen| match seen.param("page") {
        None => Reply::json(json!({"people": people(0..2)})).header(
            "link",
            r#"</api/people?page=1>; rel="first", </api/people?page=2>; rel="next""#,
        ),
        Some("2") => {
            let host = seen.header("host").expect("host").to_owned();
            Reply::json(json!({"people": people(2..4)}))
                .header(
                    "link",
                    format!(r#"<http://{host}/api/people?page=3&cursor=a,b>; rel="next last""#),
                )
                .header("link", r#"</api/people?page=1>; rel="prev""#)
        }
        Some(_) => Reply::json(json!({"people": people(4..5)}))
            .header("link", r#"</api/people?page=2>; rel="prev""#),
    })
    .await;
    let source = source(&api, "[source.rest.pagination]\nkind = \"link\"");
    let data = source.read(&required()).await.expect("read");
    assert_eq!(refs(&data), expected_refs(0..5));
    let seen = api.seen();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2].param("cursor"), Some("a,b"));
}

#[tokio::test]
async fn link_style_refuses_loops_and_other_hosts() {
    let looping = FakeApi::start(|seen| match seen.param("page") {
        None => {
            Reply::json(json!({"people": people(0..1)})).header("link", r#"<?page=2>; rel="next""#)
        }
        Some(_) => Reply::json(json!({"people": people(1..2)}))
            .header("link", r#"</api/people>; rel="next""#),
    })
    .await;
    let (page, detail) = page_error(
        source(&looping, "[source.rest.pagination]\nkind = \"link\"")
            .read(&required())
            .await,
    );
    assert_eq!(page, 2);
    assert!(detail.contains("read before"), "{detail}");

    let elsewhere = FakeApi::start(|_| {
        Reply::json(json!({"people": people(0..1)}))
            .header("link", r#"<https://evil.example/steal>; rel="next""#)
    })
    .await;
    let (page, detail) = page_error(
        source(&elsewhere, "[source.rest.pagination]\nkind = \"link\"")
            .read(&required())
            .await,
    );
    assert_eq!(page, 1);
    assert!(detail.contains("https://evil.example"), "{detail}");
    assert_eq!(elsewhere.seen().len(), 1);
}

#[tokio::test]
async fn max_pages_stops_an_api_that_never_ends() {
    let api = FakeApi::start(|seen| {
        let page = seen.number("page");
        Reply::json(json!({"people": people(page * 2..page * 2 + 2)}))
    })
    .await;
    let source = source(
        &api,
        "max_pages = 3\n[source.rest.pagination]\nkind = \"page\"\npage_size = 2",
    );
    let (page, detail) = page_error(source.read(&required()).await);
    assert_eq!(page, 4);
    assert!(detail.contains("max_pages"), "{detail}");
    assert_eq!(api.seen().len(), 3);
}

#[tokio::test]
async fn an_api_that_ignores_the_offset_is_caught() {
    let api = FakeApi::start(|_| Reply::json(json!({"people": people(0..2)}))).await;
    let source = source(
        &api,
        "[source.rest.pagination]\nkind = \"offset\"\npage_size = 2",
    );
    let (page, detail) = page_error(source.read(&required()).await);
    assert_eq!(page, 2);
    assert!(detail.contains("same page"), "{detail}");
}

/// Records `skip..end` and the reported total, for a request at `skip`.
type TotalPage = fn(usize) -> (usize, u64);

#[tokio::test]
async fn pages_that_contradict_the_reported_total_fail_the_read() {
    let cases: [(&str, TotalPage, &str); 2] = [
        (
            "the total changes mid-read",
            |skip| (skip + 2, if skip == 0 { 6 } else { 5 }),
            "changed from 6 to 5",
        ),
        (
            "page 2 is short although the API promised 6",
            |skip| (if skip == 0 { 2 } else { skip + 1 }, 6),
            "6 records in total ('total') and only 3 have been read; the read is incomplete",
        ),
    ];
    for (name, serve, expected) in cases {
        let api = FakeApi::start(move |seen| {
            let skip = seen.number("skip");
            let (end, total) = serve(skip);
            Reply::json(json!({"people": people(skip..end), "total": total}))
        })
        .await;
        let source = source(
            &api,
            "[source.rest.pagination]\nkind = \"offset\"\npage_size = 2\ntotal = \"total\"",
        );
        let (page, detail) = page_error(source.read(&required()).await);
        assert_eq!(page, 2, "{name}");
        assert!(detail.contains(expected), "{name}: {detail}");
    }
}

// ----- auth ------------------------------------------------------------------------------------

/// An API that wants exactly `expected` in `header`, and answers 401 otherwise.
async fn guarded_api(header: &'static str, expected: &'static str) -> FakeApi {
    FakeApi::start(move |seen| {
        if seen.header(header) == Some(expected) {
            Reply::json(json!({"people": people(0..1)}))
        } else {
            Reply::raw(401, r#"{"error":"invalid token"}"#)
        }
    })
    .await
}

fn secret_file(content: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(content.as_bytes()).expect("write");
    file
}

#[tokio::test]
async fn bearer_token_is_sent() {
    let api = guarded_api("authorization", "Bearer s3cret").await;
    let source = source(
        &api,
        "[source.rest.auth]\nkind = \"bearer\"\ntoken = \"s3cret\"",
    );
    source.read(&required()).await.expect("read");
    assert_eq!(api.seen()[0].header("authorization"), Some("Bearer s3cret"));
}

#[tokio::test]
async fn basic_auth_with_a_password_file() {
    // "hr:pa55" in base64.
    let api = guarded_api("authorization", "Basic aHI6cGE1NQ==").await;
    let password = secret_file("pa55\n");
    let source = source(
        &api,
        &format!(
            "[source.rest.auth]\nkind = \"basic\"\nusername = \"hr\"\npassword_file = \"{}\"",
            password.path().display()
        ),
    );
    source.read(&required()).await.expect("read");
}

#[tokio::test]
async fn custom_afas_token_header_from_a_file() {
    let api = guarded_api("authorization", "AfasToken PHRva2VuPjwvdG9rZW4+").await;
    let token = secret_file("  PHRva2VuPjwvdG9rZW4+\n");
    let source = source(
        &api,
        &format!(
            "[source.rest.auth]\nkind = \"header\"\nname = \"Authorization\"\nprefix = \"AfasToken \"\nvalue_file = \"{}\"",
            token.path().display()
        ),
    );
    source.read(&required()).await.expect("read");
    assert_eq!(api.seen().len(), 1);
}

#[tokio::test]
async fn a_custom_header_name() {
    let api = guarded_api("x-api-key", "k3y").await;
    let source = source(
        &api,
        "[source.rest.auth]\nkind = \"header\"\nname = \"X-Api-Key\"\nvalue = \"k3y\"",
    );
    source.read(&required()).await.expect("read");
}

#[tokio::test]
async fn wrong_credentials_fail_at_once_with_a_clear_error() {
    let cases = [
        (
            "bearer",
            "[source.rest.auth]\nkind = \"bearer\"\ntoken = \"wrong\"",
        ),
        (
            "basic",
            "[source.rest.auth]\nkind = \"basic\"\nusername = \"hr\"\npassword = \"wrong\"",
        ),
        (
            "header",
            "[source.rest.auth]\nkind = \"header\"\nname = \"Authorization\"\nprefix = \"AfasToken \"\nvalue = \"wrong\"",
        ),
    ];
    for (name, auth) in cases {
        let api = guarded_api("authorization", "Bearer right").await;
        let (page, detail) = page_error(source(&api, auth).read(&required()).await);
        assert_eq!(page, 1, "{name}");
        assert!(detail.contains("401"), "{name}: {detail}");
        assert!(detail.contains("[source.rest.auth]"), "{name}: {detail}");
        assert!(
            !detail.contains("wrong"),
            "{name}: the secret leaked: {detail}"
        );
        assert_eq!(api.seen().len(), 1, "{name}: a 401 must not be retried");
    }
}

#[test]
fn auth_settings_are_checked_before_any_request() {
    let cases = [
        (
            "both inline and file",
            "[source.rest.auth]\nkind = \"bearer\"\ntoken = \"a\"\ntoken_file = \"/x\"",
            "both token and token_file",
        ),
        (
            "neither",
            "[source.rest.auth]\nkind = \"bearer\"",
            "needs token or token_file",
        ),
        (
            "blank",
            "[source.rest.auth]\nkind = \"bearer\"\ntoken = \"  \"",
            "token is empty",
        ),
        (
            "bad header name",
            "[source.rest.auth]\nkind = \"header\"\nname = \"Bad Name\"\nvalue = \"v\"",
            "not a valid HTTP header name",
        ),
        (
            "line break in a secret",
            "[source.rest.auth]\nkind = \"header\"\nname = \"X-Key\"\nvalue = \"a\\nb\"",
            "cannot carry",
        ),
        (
            "zero page size",
            "[source.rest.pagination]\nkind = \"offset\"\npage_size = 0",
            "page_size must be at least 1",
        ),
        (
            "both totals",
            "[source.rest.pagination]\nkind = \"page\"\npage_size = 2\ntotal = \"t\"\ntotal_pages = \"p\"",
            "both total and total_pages",
        ),
        (
            "malformed path",
            "[source.rest.pagination]\nkind = \"cursor\"\ncursor_param = \"c\"\nnext_cursor = \"a..b\"",
            "not a field path",
        ),
    ];
    for (name, extra, expected) in cases {
        let toml = format!(
            "[source.rest]\nbase_url = \"http://127.0.0.1:9\"\n[source.rest.fields]\nemployee_number = \"id\"\n{extra}"
        );
        match RestSource::from_settings(&settings_from(&toml, "")) {
            Err(SourceError::Config(message)) => {
                assert!(message.contains(expected), "{name}: {message}");
            }
            other => panic!("{name}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn a_missing_secret_file_names_the_file() {
    let toml = "[source.rest]\nbase_url = \"http://127.0.0.1:9\"\n[source.rest.fields]\nemployee_number = \"id\"\n[source.rest.auth]\nkind = \"bearer\"\ntoken_file = \"/nonexistent/token\"";
    match RestSource::from_settings(&settings_from(toml, "")) {
        Err(SourceError::Io { path, .. }) => assert_eq!(path, "/nonexistent/token"),
        other => panic!("expected an io error, got {other:?}"),
    }
}

#[test]
fn unknown_settings_are_refused() {
    let cases = [
        (
            "typo at the top",
            "[source.rest]\nbase_url = \"x\"\ntimout_secs = 3\n[source.rest.fields]\na = \"b\"",
        ),
        (
            "typo in a variant",
            "[source.rest]\nbase_url = \"x\"\n[source.rest.fields]\na = \"b\"\n[source.rest.pagination]\nkind = \"offset\"\npage_size = 2\nskip = \"s\"",
        ),
        (
            "unknown kind",
            "[source.rest]\nbase_url = \"x\"\n[source.rest.fields]\na = \"b\"\n[source.rest.auth]\nkind = \"oauth\"",
        ),
    ];
    for (name, toml) in cases {
        let parsed = config::Config::builder()
            .add_source(config::File::from_str(toml, config::FileFormat::Toml))
            .build()
            .expect("config")
            .get::<RestSettings>("source.rest");
        assert!(parsed.is_err(), "{name}");
    }
}

#[test]
fn secrets_stay_out_of_debug_and_describe() {
    let toml = "[source.rest]\nbase_url = \"https://hr.example/api\"\npath = \"people\"\n[source.rest.query]\napi_key = \"q-s3cret\"\n[source.rest.fields]\nemployee_number = \"id\"\n[source.rest.auth]\nkind = \"basic\"\nusername = \"hr\"\npassword = \"p-s3cret\"";
    let settings = settings_from(toml, "");
    assert!(!format!("{settings:?}").contains("p-s3cret"));
    let source = RestSource::from_settings(&settings).expect("valid");
    assert_eq!(source.describe(), "rest:https://hr.example/api/people");
    let debug = format!("{source:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
}

// ----- retries and broken pages ----------------------------------------------------------------

#[tokio::test]
async fn a_503_on_page_three_fails_the_whole_read_after_its_retries() {
    let api = FakeApi::start(|seen| {
        let skip = seen.number("skip");
        if skip == 4 {
            return Reply::raw(503, "upstream down");
        }
        Reply::json(json!({"people": people(skip..skip + 2)}))
    })
    .await;
    let source = source(
        &api,
        "[source.rest.query]\ntoken = \"q-s3cret\"\n[source.rest.pagination]\nkind = \"offset\"\npage_size = 2",
    );
    let (page, detail) = page_error(source.read(&required()).await);
    assert_eq!(page, 3);
    assert!(detail.contains("/api/people"), "{detail}");
    assert!(detail.contains("503"), "{detail}");
    assert!(detail.contains("gave up after 3 attempts"), "{detail}");
    assert!(!detail.contains("q-s3cret"), "query leaked: {detail}");
    let page_three = api
        .seen()
        .iter()
        .filter(|s| s.param("skip") == Some("4"))
        .count();
    assert_eq!(page_three, 3, "page 3 is tried max_attempts times");
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    let api = FakeApi::start(|seen| {
        if seen.n == 0 {
            Reply::status(429).header("retry-after", "1")
        } else {
            Reply::json(json!({"people": people(0..1)}))
        }
    })
    .await;
    let source = source(&api, "");
    let started = Instant::now();
    let data = source.read(&required()).await.expect("read");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
    assert_eq!(refs(&data), expected_refs(0..1));
    assert_eq!(api.seen().len(), 2);
}

#[tokio::test]
async fn a_retry_after_beyond_max_backoff_fails_at_once() {
    let api = FakeApi::start(|_| Reply::status(429).header("retry-after", "3600")).await;
    let source = source(&api, "max_backoff_secs = 60");
    let (page, detail) = page_error(source.read(&required()).await);
    assert_eq!(page, 1);
    assert!(detail.contains("3600s"), "{detail}");
    assert_eq!(api.seen().len(), 1);
}

#[tokio::test]
async fn a_500_and_a_timeout_are_retried() {
    let api = FakeApi::start(|seen| match seen.n {
        0 => Reply::status(500),
        1 => Reply::json(json!({"people": people(0..1)})).after(Duration::from_secs(3)),
        _ => Reply::json(json!({"people": people(0..1)})),
    })
    .await;
    let mut source = source(&api, "");
    source.fetcher.timeout = Duration::from_millis(300);
    let data = source.read(&required()).await.expect("read");
    assert_eq!(refs(&data), expected_refs(0..1));
    assert_eq!(api.seen().len(), 3);
}

#[tokio::test]
async fn a_connection_refused_fails_after_retries() {
    let api = FakeApi::start(|_| Reply::status(200)).await;
    let base = api.base.clone();
    let source = source(&api, "");
    drop(api);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (page, detail) = page_error(source.read(&required()).await);
    assert_eq!(page, 1);
    assert!(
        detail.contains("gave up after 3 attempts"),
        "{detail} ({base})"
    );
}

#[tokio::test]
async fn other_client_errors_are_not_retried_and_show_the_api_message() {
    let api = FakeApi::start(|seen| match seen.n {
        _ if seen.path.ends_with("people") => Reply::raw(400, "{\"message\":\n\"unknown filter\"}"),
        _ => Reply::status(404),
    })
    .await;
    let (page, detail) = page_error(source(&api, "").read(&required()).await);
    assert_eq!(page, 1);
    assert!(detail.contains("400"), "{detail}");
    assert!(
        detail.contains(r#"{"message": "unknown filter"}"#),
        "{detail}"
    );
    assert_eq!(api.seen().len(), 1);
}

#[tokio::test]
async fn a_404_points_at_base_url_and_path() {
    let api = FakeApi::start(|_| Reply::status(404)).await;
    let (_, detail) = page_error(source(&api, "").read(&required()).await);
    assert!(detail.contains("check base_url and path"), "{detail}");
    assert_eq!(api.seen().len(), 1);
}

#[tokio::test]
async fn a_redirect_within_the_host_is_followed_with_credentials() {
    let api = FakeApi::start(|seen| match seen.path.as_str() {
        "/api/people" => Reply::status(307).header("location", "/v2/people"),
        _ if seen.header("authorization") == Some("Bearer t0k") => {
            Reply::json(json!({"people": people(0..1)}))
        }
        _ => Reply::status(401),
    })
    .await;
    let source = source(
        &api,
        "[source.rest.auth]\nkind = \"bearer\"\ntoken = \"t0k\"",
    );
    let data = source.read(&required()).await.expect("read");
    assert_eq!(refs(&data), expected_refs(0..1));
    let paths: Vec<String> = api.seen().into_iter().map(|seen| seen.path).collect();
    assert_eq!(paths, ["/api/people", "/v2/people"]);
}

#[tokio::test]
async fn a_redirect_to_another_host_is_not_followed() {
    let api =
        FakeApi::start(|_| Reply::status(302).header("location", "https://login.example/sso?x=1"))
            .await;
    let (_, detail) = page_error(source(&api, "").read(&required()).await);
    assert!(detail.contains("https://login.example"), "{detail}");
    assert!(!detail.contains("x=1"), "{detail}");
}

#[tokio::test]
async fn truncated_json_names_the_page() {
    let api = FakeApi::start(|seen| {
        if seen.number("skip") == 0 {
            Reply::json(json!({"people": people(0..2)}))
        } else {
            Reply::raw(200, r#"{"people": [{"id": "E002", "email": "p2@exa"#)
        }
    })
    .await;
    let source = source(
        &api,
        "[source.rest.pagination]\nkind = \"offset\"\npage_size = 2",
    );
    let (page, detail) = page_error(source.read(&required()).await);
    assert_eq!(page, 2);
    assert!(detail.contains("/api/people"), "{detail}");
    assert!(detail.contains("not valid JSON"), "{detail}");
    assert!(detail.contains("cut off"), "{detail}");
    let error = SourceError::Page { page, detail };
    assert!(
        error
            .to_string()
            .starts_with("the HR API failed on page 2:"),
        "{error}"
    );
}

#[tokio::test]
async fn an_html_page_is_not_json() {
    let api = FakeApi::start(|_| Reply::raw(200, "<html>Please log in</html>")).await;
    let (page, detail) = page_error(source(&api, "").read(&required()).await);
    assert_eq!(page, 1);
    assert!(detail.contains("not valid JSON"), "{detail}");
}

#[tokio::test]
async fn a_missing_or_wrong_record_list_is_named() {
    let cases = [
        (
            "missing",
            json!({"data": [], "meta": {}}),
            "'people' is missing",
            Some("(the response has: data, meta)"),
        ),
        (
            "not a list",
            json!({"people": {"id": 1}}),
            "'people' is an object, not a list",
            None,
        ),
        ("null", json!({"people": null}), "'people' is missing", None),
    ];
    for (name, body, expected, hint) in cases {
        let api = FakeApi::start(move |_| Reply::json(body.clone())).await;
        let (page, detail) = page_error(source(&api, "").read(&required()).await);
        assert_eq!(page, 1, "{name}");
        assert!(detail.contains(expected), "{name}: {detail}");
        if let Some(hint) = hint {
            assert!(detail.contains(hint), "{name}: {detail}");
        }
    }
}

#[tokio::test]
async fn an_empty_records_path_means_the_body_is_the_list() {
    let api = FakeApi::start(|_| Reply::json(json!(people(0..3)))).await;
    let mut settings = settings_from(
        "[source.rest]\nbase_url = \"BASE\"\nrecords = \"\"\n[source.rest.fields]\nemployee_number = \"id\"",
        &api.base,
    );
    settings.initial_backoff_ms = 1;
    let source = RestSource::from_settings(&settings).expect("valid");
    let data = source
        .read(&["employee_number".to_owned()])
        .await
        .expect("read");
    assert_eq!(refs(&data), expected_refs(0..3));
}

// ----- records and fields ----------------------------------------------------------------------

#[tokio::test]
async fn field_paths_reach_nested_values_and_keep_scalars_as_written() {
    let api = FakeApi::start(|_| {
        Reply::json(json!({"people": [{
            "id": "00123",
            "email": "ada@example.com",
            "attributes": {"badge": {"label": "Badge", "value": 4711}, "manager": {"value": true}, "nickname": {"value": null}},
            "emails": [{"address": "first@example.com"}, {"address": "second@example.com"}],
            "fte": 0.8
        }]}))
    })
    .await;
    let source = source(
        &api,
        "[source.rest.fields]\nbadge = \"attributes.badge.value\"\nmanager = \"attributes.manager.value\"\nnickname = \"attributes.nickname.value\"\nsecond = \"emails.1.address\"\nfte = \"fte\"\nphone = \"contact.phone\"",
    );
    let data = source.read(&required()).await.expect("read");
    assert!(data.rejected.is_empty(), "{:?}", data.rejected);
    let record = &data.records[0];
    let expected = columns(&[
        ("employee_number", "00123"),
        ("email", "ada@example.com"),
        ("badge", "4711"),
        ("manager", "true"),
        ("second", "second@example.com"),
        ("fte", "0.8"),
    ]);
    // null and missing values are absent, not empty strings.
    assert_eq!(record.fields, expected);
}

#[tokio::test]
async fn a_record_that_cannot_be_flattened_is_rejected_alone() {
    let api = FakeApi::start(|_| {
        Reply::json(json!({"people": [
            person(0),
            {"id": 7, "email": {"label": "Email", "value": "x@example.com"}},
            "not a record",
            {"id": "E009", "email": "p9@example.com", "dept": "Sales"},
            person(3)
        ]}))
    })
    .await;
    let source = source(&api, "[source.rest.fields]\ndepartment = \"dept.name\"");
    let data = source
        .read(&required())
        .await
        .expect("a bad record does not fail the read");
    assert_eq!(refs(&data), ["E000", "E003"]);
    let rejected: Vec<(Location, Option<&str>, Option<&str>)> = data
        .rejected
        .iter()
        .map(|error| {
            (
                error.location.clone(),
                error.employee_ref.as_deref(),
                error.field.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (
                Location::Item { page: 1, index: 1 },
                Some("7"),
                Some("email")
            ),
            (Location::Item { page: 1, index: 2 }, None, None),
            (
                Location::Item { page: 1, index: 3 },
                Some("E009"),
                Some("department")
            ),
        ]
    );
    assert!(
        data.rejected[0].reason.contains("'email' holds an object"),
        "{}",
        data.rejected[0]
    );
    assert!(
        data.rejected[0].reason.contains("'email.value'"),
        "{}",
        data.rejected[0]
    );
    assert!(
        data.rejected[1].reason.contains("a string, not an object"),
        "{}",
        data.rejected[1]
    );
    assert!(
        data.rejected[2].reason.contains("'dept' is a string"),
        "{}",
        data.rejected[2]
    );
    assert_eq!(
        data.rejected[0].to_string(),
        "page 1, record 2 (employee 7), field 'email': field path 'email' holds an object, not a single value; point the path at the value inside it (e.g. 'email.value')"
    );
}

#[tokio::test]
async fn a_required_column_without_a_field_path_fails_before_any_request() {
    let api = FakeApi::start(|_| Reply::json(json!({"people": []}))).await;
    let source = source(&api, "");
    let result = source
        .read(&[
            "employee_number".to_owned(),
            "last_name".to_owned(),
            "email".to_owned(),
        ])
        .await;
    match result {
        Err(SourceError::Config(message)) => {
            assert!(message.contains("last_name"), "{message}");
            assert!(
                message.contains("configured: email, employee_number"),
                "{message}"
            );
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    assert!(api.seen().is_empty());
}

#[test]
fn ref_column_must_be_configured() {
    let toml = "[source.rest]\nbase_url = \"http://127.0.0.1:9\"\n[source.rest.fields]\nmedewerker = \"Medewerker\"";
    match RestSource::from_settings(&settings_from(toml, "")) {
        Err(SourceError::Config(message)) => assert!(message.contains("ref_column"), "{message}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_fingerprint_covers_every_page_in_order() {
    let bodies = [
        json!({"people": people(0..2)}).to_string(),
        json!({"people": people(2..3)}).to_string(),
    ];
    let served = bodies.clone();
    let api =
        FakeApi::start(move |seen| Reply::raw(200, served[seen.number("skip") / 2].clone())).await;
    let source = source(
        &api,
        "[source.rest.pagination]\nkind = \"offset\"\npage_size = 2",
    );
    let data = source.read(&required()).await.expect("read");
    let expected = hex::encode(Sha256::digest(format!("{}{}", bodies[0], bodies[1])));
    assert_eq!(data.fingerprint, expected);
}

// ----- the documented example configs -----------------------------------------------------------

fn example(name: &str) -> String {
    let path = format!("{}/config/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Reads with an example config as it is checked in, pointed at `base_url` and at a temporary
/// file holding `secret` in place of the production secret file.
async fn read_example(name: &str, base_url: &str, secret: &str) -> SourceData {
    let token = secret_file(secret);
    let mut settings = settings_from(&example(name), "");
    settings.base_url = base_url.to_owned();
    match &mut settings.auth {
        AuthSettings::Header {
            value_file: file, ..
        }
        | AuthSettings::Bearer {
            token_file: file, ..
        }
        | AuthSettings::Basic {
            password_file: file,
            ..
        } => {
            assert!(file.is_some(), "{name} reads its secret from a file");
            *file = Some(token.path().to_owned());
        }
        AuthSettings::None => panic!("{name} has no auth"),
    }
    let source = RestSource::from_settings(&settings).expect("valid");
    let required = ["employee_number", "email", "first_name", "last_name"].map(str::to_owned);
    source.read(&required).await.expect("read")
}

fn afas_row(n: usize) -> Value {
    json!({
        "Medewerker": format!("{:06}", n + 1),
        "Roepnaam": format!("Voornaam{n}"),
        "Achternaam": format!("Achternaam{n}"),
        "Email_werk": format!("m{n}@bedrijf.nl"),
        "Afdeling": if n % 2 == 0 { "Verkoop" } else { "Zorg" },
        "Datum_in_dienst": "2020-01-01T00:00:00Z",
        "Datum_uit_dienst": null
    })
}

#[tokio::test]
async fn afas_example_config() {
    const ROWS: usize = 230;
    let api = FakeApi::start(|seen| {
        if seen.path != "/profitrestservices/connectors/Pluvo_Employees" {
            return Reply::status(404);
        }
        if seen.header("authorization")
            != Some("AfasToken PHRva2VuPjx2ZXJzaW9uPjE8L3ZlcnNpb24+PC90b2tlbj4=")
        {
            return Reply::status(401);
        }
        let skip = seen.number("skip");
        let take = seen.number("take");
        let rows: Vec<Value> = (skip.min(ROWS)..(skip + take).min(ROWS))
            .map(afas_row)
            .collect();
        Reply::json(json!({"skip": skip, "take": take, "rows": rows}))
    })
    .await;
    let data = read_example(
        "hr-rest-afas.toml",
        &format!("{}/profitrestservices", api.base),
        "PHRva2VuPjx2ZXJzaW9uPjE8L3ZlcnNpb24+PC90b2tlbj4=\n",
    )
    .await;

    assert_eq!(data.records.len(), ROWS);
    assert!(data.rejected.is_empty());
    let asked = api.asked("skip", "take");
    assert_eq!(asked, [(0, 100), (100, 100), (200, 100)]);
    assert!(
        api.seen()
            .iter()
            .all(|s| s.param("orderbyfieldids") == Some("Medewerker"))
    );
    let last = &data.records[ROWS - 1];
    assert_eq!(last.get("employee_number"), Some("000230"));
    assert_eq!(last.get("email"), Some("m229@bedrijf.nl"));
    assert_eq!(last.get("department"), Some("Zorg"));
    assert_eq!(last.get("end_date"), None);
    assert_eq!(last.location, Location::Item { page: 3, index: 29 });
}

fn personio_employee(n: usize) -> Value {
    let attribute = |label: &str, value: Value| json!({"label": label, "value": value});
    json!({
        "type": "Employee",
        "attributes": {
            "id": attribute("ID", json!(1000 + n)),
            "first_name": attribute("First name", json!(format!("First{n}"))),
            "last_name": attribute("Last name", json!(format!("Last{n}"))),
            "email": attribute("Email", json!(format!("e{n}@firma.de"))),
            "status": attribute("Status", json!(if n == 7 { "inactive" } else { "active" })),
            "hire_date": attribute("Hire date", json!("2021-03-01T00:00:00+01:00")),
            "termination_date": attribute("Termination date", if n == 7 { json!("2024-06-30T00:00:00+02:00") } else { Value::Null }),
            "department": attribute("Department", json!({"type": "Department", "attributes": {"id": 3, "name": format!("Dept{}", n % 3)}}))
        }
    })
}

#[tokio::test]
async fn personio_example_config() {
    const EMPLOYEES: usize = 250;
    let api = FakeApi::start(|seen| {
        if seen.path != "/v1/company/employees" {
            return Reply::status(404);
        }
        if seen.header("authorization") != Some("Bearer personio-token") {
            return Reply::raw(401, r#"{"success":false,"error":{"code":0,"message":"Unauthorized"}}"#);
        }
        let offset = seen.number("offset");
        let limit = seen.number("limit");
        let data: Vec<Value> = (offset.min(EMPLOYEES)..(offset + limit).min(EMPLOYEES)).map(personio_employee).collect();
        Reply::json(json!({
            "success": true,
            "data": data,
            "metadata": {"total_elements": EMPLOYEES, "current_page": offset / limit, "total_pages": EMPLOYEES.div_ceil(limit)},
            "offset": offset,
            "limit": limit
        }))
    })
    .await;
    let data = read_example(
        "hr-rest-personio.toml",
        &format!("{}/v1", api.base),
        "personio-token\n",
    )
    .await;

    assert_eq!(data.records.len(), EMPLOYEES);
    assert!(data.rejected.is_empty());
    let asked = api.asked("offset", "limit");
    assert_eq!(asked, [(0, 100), (100, 100), (200, 100)]);
    let leaver = &data.records[7];
    let expected = columns(&[
        ("employee_number", "1007"),
        ("first_name", "First7"),
        ("last_name", "Last7"),
        ("email", "e7@firma.de"),
        ("status", "inactive"),
        ("department", "Dept1"),
        ("start_date", "2021-03-01T00:00:00+01:00"),
        ("end_date", "2024-06-30T00:00:00+02:00"),
    ]);
    assert_eq!(leaver.fields, expected);
    assert_eq!(data.records[8].get("end_date"), None);
}
