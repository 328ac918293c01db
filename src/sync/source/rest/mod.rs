//! Employees from an HR REST API: AFAS GetConnectors, Personio and the like.
//!
//! A read walks the API page by page (`paging`), each page one GET with retries (`fetch`),
//! and flattens every JSON record into the flat *column → text* map the rest of the pipeline
//! knows from CSV, using one configured field path (`path`) per column.
//!
//! The read is all or nothing: a page that still fails after its retries, a body that is not
//! JSON (or is cut off), a record list that is not where the settings say, or pages that
//! contradict each other fail the whole read, and the run stops before anything is planned.
//! Only a single record that cannot be flattened is skipped, as a [`RecordError`].
//!
//! Example configurations live in `config/examples/hr-rest-afas.toml` and
//! `config/examples/hr-rest-personio.toml`.

mod fetch;
mod link;
mod paging;
mod path;
mod settings;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use reqwest::Url;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use self::settings::{AuthSettings, PaginationSettings, RestSettings};

use self::fetch::{Fetcher, RetryPolicy};
use self::paging::{PageSeen, Pager};
use self::path::{FieldPath, Lookup, cell_text, kind};
use self::settings::{Auth, Paging};
use super::{Location, RecordError, Source, SourceData, SourceError, SourceRecord};

/// Redirects followed within the configured host; more is a misconfiguration.
const MAX_REDIRECTS: usize = 5;

/// A configured HR REST API, ready to read.
pub struct RestSource {
    /// `base_url` + `path` + the fixed query: the first page's URL.
    start: Url,
    records: FieldPath,
    /// Column → where its value sits in a record, in column order.
    fields: Vec<(String, FieldPath)>,
    ref_column: String,
    paging: Paging,
    max_pages: u32,
    fetcher: Fetcher,
}

impl fmt::Debug for RestSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The auth header is left out altogether, sensitive flag or not.
        f.debug_struct("RestSource")
            .field("url", &self.describe())
            .field("records", &self.records.as_str())
            .field("columns", &self.fields.len())
            .field("paging", &self.paging)
            .finish_non_exhaustive()
    }
}

impl RestSource {
    /// Resolves the settings: parses the URL and every path, reads secret files, builds the HTTP
    /// client. Fails with [`SourceError::Config`] (or [`SourceError::Io`] for an unreadable secret
    /// file) before any request is made.
    pub fn from_settings(settings: &RestSettings) -> Result<Self, SourceError> {
        let start = start_url(settings)?;
        let records = settings::path("records", &settings.records)?;
        if settings.fields.is_empty() {
            return Err(SourceError::Config(
                "[source.rest.fields] is empty: map each column [mapping] uses to its field path in a record".to_owned(),
            ));
        }
        let fields = settings
            .fields
            .iter()
            .map(|(column, text)| {
                settings::path(&format!("fields.{column}"), text).map(|path| (column.clone(), path))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if !settings.fields.contains_key(&settings.ref_column) {
            return Err(SourceError::Config(format!(
                "[source.rest] ref_column is '{}', but [source.rest.fields] has no such column; set ref_column to the column holding the employee number",
                settings.ref_column
            )));
        }
        let auth = settings.auth.resolve()?;
        let paging = settings.pagination.resolve()?;
        if settings.timeout_secs == 0 {
            return Err(SourceError::Config(
                "[source.rest] timeout_secs must be at least 1".to_owned(),
            ));
        }
        if settings.max_pages == 0 {
            return Err(SourceError::Config(
                "[source.rest] max_pages must be at least 1".to_owned(),
            ));
        }
        if !matches!(auth, Auth::None)
            && start.scheme() == "http"
            && !start.host_str().is_some_and(is_loopback)
        {
            tracing::warn!(
                host = start.host_str().unwrap_or_default(),
                "[source.rest] sends credentials over plain http; use https"
            );
        }
        let timeout = Duration::from_secs(settings.timeout_secs);
        let client = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("pluvo-sync/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // Follow only within the first request's origin: a custom auth header (unlike
                // `Authorization`) would otherwise travel to whatever host a redirect names.
                let same_origin = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if !same_origin {
                    attempt.stop()
                } else if attempt.previous().len() > MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|error| {
                SourceError::Config(format!("cannot build the HTTP client: {error}"))
            })?;
        Ok(Self {
            start,
            records,
            fields,
            ref_column: settings.ref_column.clone(),
            paging,
            max_pages: settings.max_pages,
            fetcher: Fetcher {
                client,
                auth,
                timeout,
                retry: RetryPolicy {
                    max_attempts: settings.max_attempts.max(1),
                    initial_backoff: Duration::from_millis(settings.initial_backoff_ms),
                    max_backoff: Duration::from_secs(settings.max_backoff_secs),
                },
            },
        })
    }

    /// Every page, in order; fails as a whole on the first page that cannot be read.
    #[tracing::instrument(
        skip_all,
        fields(source = %self.describe(), pages, records, rejected),
        err(Display)
    )]
    async fn read_all(&self) -> Result<SourceData, SourceError> {
        let mut pager = Pager::new(&self.paging, self.start.clone(), self.max_pages);
        let mut hasher = Sha256::new();
        let mut data = SourceData::default();
        let mut next = Some(pager.first());
        while let Some(url) = next {
            let page = pager.page();
            let fetched = self.fetcher.get(&url, page).await?;
            hasher.update(&fetched.body);
            let fail = |detail: String| SourceError::Page {
                page,
                detail: format!("GET {}: {detail}", fetched.url.path()),
            };
            let body: Value = serde_json::from_slice(&fetched.body).map_err(|error| {
                fail(format!(
                    "response is not valid JSON: {error} (was the response cut off?)"
                ))
            })?;
            let records = self.record_list(&body).map_err(fail)?;
            for (index, record) in records.iter().enumerate() {
                match self.flatten(record, Location::Item { page, index }) {
                    Ok(record) => data.records.push(record),
                    Err(rejected) => data.rejected.push(rejected),
                }
            }
            tracing::debug!(page, records = records.len(), "read a page of the HR API");
            next = pager.next(&PageSeen {
                url: &fetched.url,
                headers: &fetched.headers,
                body: &body,
                raw: &fetched.body,
                records: records.len(),
            })?;
        }
        data.fingerprint = hex::encode(hasher.finalize());
        let span = tracing::Span::current();
        span.record("pages", pager.page() - 1);
        span.record("records", data.records.len());
        span.record("rejected", data.rejected.len());
        Ok(data)
    }

    /// The page's record list, or why it is not there.
    fn record_list<'v>(&self, body: &'v Value) -> Result<&'v [Value], String> {
        let (what, hint) = match self.records.lookup(body) {
            Lookup::Found(Value::Array(records)) => return Ok(records),
            Lookup::Found(value) => (kind(value).to_owned(), String::new()),
            Lookup::Absent => ("missing".to_owned(), top_level_keys(body)),
            Lookup::Blocked { at, found } => {
                (format!("unreachable ({at} is {found})"), String::new())
            }
        };
        let name = if self.records.as_str().is_empty() {
            "the response body".to_owned()
        } else {
            format!("'{}'", self.records)
        };
        Err(format!(
            "the record list {name} is {what}, not a list{hint}; set [source.rest] records to the JSON path of the list of employees"
        ))
    }

    /// One JSON record as a column → text map, or the reason it cannot be one.
    fn flatten(&self, record: &Value, location: Location) -> Result<SourceRecord, RecordError> {
        let employee_ref = || {
            self.fields
                .iter()
                .find(|(column, _)| *column == self.ref_column)
                .and_then(|(_, path)| match path.lookup(record) {
                    Lookup::Found(value) => cell_text(value).ok().flatten(),
                    Lookup::Absent | Lookup::Blocked { .. } => None,
                })
                .map(|text| text.trim().to_owned())
                .filter(|text| !text.is_empty())
        };
        if !record.is_object() {
            return Err(RecordError {
                location,
                employee_ref: None,
                field: None,
                reason: format!("the record is {}, not an object", kind(record)),
                structural: false,
            });
        }
        let mut fields = HashMap::with_capacity(self.fields.len());
        for (column, path) in &self.fields {
            let reject = |reason: String| RecordError {
                location: location.clone(),
                employee_ref: employee_ref(),
                field: Some(column.clone()),
                reason,
                structural: false,
            };
            match path.lookup(record) {
                Lookup::Absent => {}
                Lookup::Found(value) => match cell_text(value) {
                    Ok(Some(text)) => {
                        fields.insert(column.clone(), text);
                    }
                    Ok(None) => {}
                    Err(found) => {
                        return Err(reject(format!(
                            "field path '{path}' holds {found}, not a single value; point the path at the value inside it (e.g. '{path}.value')"
                        )));
                    }
                },
                Lookup::Blocked { at, found } => {
                    return Err(reject(format!(
                        "field path '{path}' cannot be followed: {at} is {found}"
                    )));
                }
            }
        }
        Ok(SourceRecord { location, fields })
    }
}

impl Source for RestSource {
    async fn read(&self, required: &[String]) -> Result<SourceData, SourceError> {
        let missing: Vec<&str> = required
            .iter()
            .map(String::as_str)
            .filter(|column| !self.fields.iter().any(|(known, _)| known == column))
            .collect();
        if !missing.is_empty() {
            let known: Vec<&str> = self
                .fields
                .iter()
                .map(|(column, _)| column.as_str())
                .collect();
            return Err(SourceError::Config(format!(
                "[source.rest.fields] has no field path for required column(s) {}; configured: {}",
                missing.join(", "),
                known.join(", ")
            )));
        }
        self.read_all().await
    }

    fn describe(&self) -> String {
        // Origin and path only: no user info, no query (either may hold a secret).
        format!("rest:{}{}", fetch::origin(&self.start), self.start.path())
    }
}

/// `base_url` and `path` joined with exactly one slash, plus the fixed query.
fn start_url(settings: &RestSettings) -> Result<Url, SourceError> {
    let joined = if settings.path.is_empty() {
        settings.base_url.clone()
    } else {
        format!(
            "{}/{}",
            settings.base_url.trim_end_matches('/'),
            settings.path.trim_start_matches('/')
        )
    };
    let mut url = Url::parse(&joined).map_err(|error| {
        SourceError::Config(format!(
            "[source.rest] base_url and path do not make a URL ({error}); write base_url as e.g. https://hr.example.com/api"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SourceError::Config(format!(
            "[source.rest] base_url must be http or https, not {}",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SourceError::Config(
            "[source.rest] base_url must not carry a user or password; use [source.rest.auth] kind = \"basic\"".to_owned(),
        ));
    }
    if !settings.query.is_empty() {
        url.query_pairs_mut().extend_pairs(&settings.query);
    }
    Ok(url)
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `" (the response has: a, b, c)"`: key names help find the right `records` path; values stay
/// out, they may be personal data.
fn top_level_keys(body: &Value) -> String {
    match body {
        Value::Object(members) if !members.is_empty() => {
            let keys: Vec<&str> = members.keys().map(String::as_str).take(20).collect();
            format!(" (the response has: {})", keys.join(", "))
        }
        _ => String::new(),
    }
}
