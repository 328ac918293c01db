//! `[source.rest]`: how to reach the HR API, how to page through it and where each column's value
//! sits in a record. These are the raw settings as config holds them;
//! [`RestSource::from_settings`](super::RestSource::from_settings) resolves them once (secrets read
//! from their files, paths parsed, the HTTP client built).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::path::FieldPath;
use crate::sync::source::SourceError;

/// `[source.rest]`. Secrets are `SecretString`s, so `Debug` prints them as `[REDACTED]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestSettings {
    /// Scheme, host and any fixed path prefix, e.g. `https://12345.rest.afas.online/profitrestservices`.
    pub base_url: String,
    /// Appended to `base_url`, e.g. `/connectors/Pluvo_Employees`. May carry a query string.
    #[serde(default)]
    pub path: String,
    /// Fixed query parameters sent with the first request (and every request but `link`'s), e.g.
    /// AFAS's `orderbyfieldids`. Paging needs a stable order, so set one where the API allows it.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// JSON path of the record list in a response, e.g. `rows` or `data`; `""` when the body is the
    /// list itself.
    #[serde(default)]
    pub records: String,
    /// Column name (as `[mapping]` uses it) → field path in a record, e.g.
    /// `email = "attributes.email.value"`. Only these columns are read.
    pub fields: BTreeMap<String, String>,
    /// The column that holds the employee number. A record that cannot be read still names its
    /// person through it, so that person is held rather than taken for a leaver.
    #[serde(default = "default_ref_column")]
    pub ref_column: String,
    /// Time limit of one request, body included.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts per page before the read fails (429, 5xx, timeouts, dropped connections).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Wait before the first retry; it doubles per attempt, with jitter, up to `max_backoff_secs`.
    #[serde(default = "default_initial_backoff_ms")]
    pub initial_backoff_ms: u64,
    /// Longest wait between attempts. A `Retry-After` longer than this fails the read at once.
    #[serde(default = "default_max_backoff_secs")]
    pub max_backoff_secs: u64,
    /// A read with more pages than this fails: it guards against an API that never says "done".
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    #[serde(default)]
    pub auth: AuthSettings,
    #[serde(default)]
    pub pagination: PaginationSettings,
}

/// `[source.rest.auth]`. Each secret is given inline (`token`, `password`, `value`; from the
/// environment through config) or as a file read once and trimmed (`*_file`), not both.
#[derive(Debug, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthSettings {
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer {
        token: Option<SecretString>,
        token_file: Option<PathBuf>,
    },
    /// HTTP basic authentication.
    Basic {
        username: String,
        password: Option<SecretString>,
        password_file: Option<PathBuf>,
    },
    /// Any header, e.g. AFAS's `Authorization: AfasToken <base64>`: `name`, then `prefix`
    /// followed by the secret.
    Header {
        name: String,
        #[serde(default)]
        prefix: String,
        value: Option<SecretString>,
        value_file: Option<PathBuf>,
    },
}

/// `[source.rest.pagination]`.
#[derive(Debug, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PaginationSettings {
    /// One request returns everyone.
    #[default]
    None,
    /// Numbered pages: `?page=1&per_page=100`, then `page=2`, …
    Page {
        #[serde(default = "default_page_param")]
        page_param: String,
        #[serde(default = "default_per_page_param")]
        per_page_param: String,
        page_size: u32,
        #[serde(default = "default_first_page")]
        first_page: u32,
        /// JSON path of the total number of records; the read stops once it has that many.
        total: Option<String>,
        /// JSON path of the total number of pages; the read stops after that many.
        total_pages: Option<String>,
    },
    /// Record offsets: `?skip=0&take=100`, then `skip=100`, …
    Offset {
        #[serde(default = "default_skip_param")]
        skip_param: String,
        #[serde(default = "default_take_param")]
        take_param: String,
        page_size: u32,
        /// JSON path of the total number of records; the read stops once it has that many.
        total: Option<String>,
    },
    /// Each response names the next page's cursor, sent back as `cursor_param`.
    Cursor {
        cursor_param: String,
        /// JSON path of the next cursor; missing, `null` or `""` ends the read.
        next_cursor: String,
    },
    /// `Link: <…>; rel="next"` response headers (RFC 8288), as GitHub-style APIs send them.
    Link,
}

/// How a request proves who we are, resolved.
pub(super) enum Auth {
    None,
    Basic {
        username: String,
        password: SecretString,
    },
    /// Marked sensitive, so its `Debug` and reqwest's logging never show it.
    Header {
        name: HeaderName,
        value: HeaderValue,
    },
}

/// A total reported by the API, and what it counts.
#[derive(Debug)]
pub(super) enum Total {
    Records(FieldPath),
    Pages(FieldPath),
}

/// Pagination, resolved.
#[derive(Debug)]
pub(super) enum Paging {
    None,
    Page {
        page_param: String,
        per_page_param: String,
        page_size: u32,
        first_page: u32,
        total: Option<Total>,
    },
    Offset {
        skip_param: String,
        take_param: String,
        page_size: u32,
        total: Option<Total>,
    },
    Cursor {
        cursor_param: String,
        next_cursor: FieldPath,
    },
    Link,
}

impl AuthSettings {
    pub(super) fn resolve(&self) -> Result<Auth, SourceError> {
        Ok(match self {
            AuthSettings::None => Auth::None,
            AuthSettings::Bearer { token, token_file } => Auth::Header {
                name: reqwest::header::AUTHORIZATION,
                value: header_value("Bearer ", &secret("token", token, token_file)?)?,
            },
            AuthSettings::Basic {
                username,
                password,
                password_file,
            } => Auth::Basic {
                username: username.clone(),
                password: secret("password", password, password_file)?,
            },
            AuthSettings::Header {
                name,
                prefix,
                value,
                value_file,
            } => Auth::Header {
                name: HeaderName::try_from(name.as_str()).map_err(|_| {
                    SourceError::Config(format!(
                        "[source.rest.auth] name '{name}' is not a valid HTTP header name"
                    ))
                })?,
                value: header_value(prefix, &secret("value", value, value_file)?)?,
            },
        })
    }
}

impl PaginationSettings {
    pub(super) fn resolve(&self) -> Result<Paging, SourceError> {
        Ok(match self {
            PaginationSettings::None => Paging::None,
            PaginationSettings::Page {
                page_param,
                per_page_param,
                page_size,
                first_page,
                total,
                total_pages,
            } => Paging::Page {
                page_param: page_param.clone(),
                per_page_param: per_page_param.clone(),
                page_size: positive_page_size(*page_size)?,
                first_page: *first_page,
                total: match (total, total_pages) {
                    (Some(_), Some(_)) => {
                        return Err(SourceError::Config(
                            "[source.rest.pagination] sets both total and total_pages; keep the one the API reports".to_owned(),
                        ));
                    }
                    (Some(total), None) => Some(Total::Records(path("pagination.total", total)?)),
                    (None, Some(pages)) => {
                        Some(Total::Pages(path("pagination.total_pages", pages)?))
                    }
                    (None, None) => None,
                },
            },
            PaginationSettings::Offset {
                skip_param,
                take_param,
                page_size,
                total,
            } => Paging::Offset {
                skip_param: skip_param.clone(),
                take_param: take_param.clone(),
                page_size: positive_page_size(*page_size)?,
                total: total
                    .as_deref()
                    .map(|total| path("pagination.total", total).map(Total::Records))
                    .transpose()?,
            },
            PaginationSettings::Cursor {
                cursor_param,
                next_cursor,
            } => Paging::Cursor {
                cursor_param: cursor_param.clone(),
                next_cursor: path("pagination.next_cursor", next_cursor)?,
            },
            PaginationSettings::Link => Paging::Link,
        })
    }
}

/// Parses a configured field path, naming the setting when it is malformed.
pub(super) fn path(setting: &str, text: &str) -> Result<FieldPath, SourceError> {
    FieldPath::parse(text).ok_or_else(|| {
        SourceError::Config(format!(
            "[source.rest] {setting} = '{text}' is not a field path: write keys and list indexes separated by single dots, e.g. 'attributes.email.value'"
        ))
    })
}

fn positive_page_size(page_size: u32) -> Result<u32, SourceError> {
    if page_size == 0 {
        return Err(SourceError::Config(
            "[source.rest.pagination] page_size must be at least 1".to_owned(),
        ));
    }
    Ok(page_size)
}

/// The secret given inline or in a file; exactly one of the two.
fn secret(
    name: &str,
    inline: &Option<SecretString>,
    file: &Option<PathBuf>,
) -> Result<SecretString, SourceError> {
    let secret = match (inline, file) {
        (Some(inline), None) => SecretString::from(inline.expose_secret().trim()),
        (None, Some(file)) => read_secret_file(file)?,
        (Some(_), Some(_)) => {
            return Err(SourceError::Config(format!(
                "[source.rest.auth] sets both {name} and {name}_file; keep one"
            )));
        }
        (None, None) => {
            return Err(SourceError::Config(format!(
                "[source.rest.auth] needs {name} or {name}_file"
            )));
        }
    };
    if secret.expose_secret().is_empty() {
        return Err(SourceError::Config(format!(
            "[source.rest.auth] {name} is empty"
        )));
    }
    Ok(secret)
}

fn read_secret_file(file: &Path) -> Result<SecretString, SourceError> {
    let text = std::fs::read_to_string(file).map_err(|source| SourceError::Io {
        path: file.display().to_string(),
        source,
    })?;
    Ok(SecretString::from(text.trim()))
}

fn header_value(prefix: &str, secret: &SecretString) -> Result<HeaderValue, SourceError> {
    let mut value = HeaderValue::try_from(format!("{prefix}{}", secret.expose_secret()))
        .map_err(|_| {
            // Never echo the value: it is the secret.
            SourceError::Config(
                "[source.rest.auth] the secret contains characters an HTTP header cannot carry (line breaks or control characters)".to_owned(),
            )
        })?;
    value.set_sensitive(true);
    Ok(value)
}

fn default_ref_column() -> String {
    "employee_number".to_owned()
}
fn default_timeout_secs() -> u64 {
    30
}
fn default_max_attempts() -> u32 {
    5
}
fn default_initial_backoff_ms() -> u64 {
    500
}
fn default_max_backoff_secs() -> u64 {
    60
}
fn default_max_pages() -> u32 {
    10_000
}
fn default_page_param() -> String {
    "page".to_owned()
}
fn default_per_page_param() -> String {
    "per_page".to_owned()
}
fn default_first_page() -> u32 {
    1
}
fn default_skip_param() -> String {
    "skip".to_owned()
}
fn default_take_param() -> String {
    "take".to_owned()
}
