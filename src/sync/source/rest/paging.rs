//! Which page comes next, and when the read is complete.
//!
//! The pager is told what each page held and answers with the next URL or "done". It is strict on
//! purpose: whenever the pages contradict each other (a total that changes mid-read, a short page
//! before the reported total, a cursor or link seen before, the same page twice) it fails the read
//! instead of ending it, because an incomplete read would make the missing people look like
//! leavers.

use std::collections::HashSet;

use reqwest::Url;
use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::fetch::origin;
use super::link;
use super::path::{FieldPath, Lookup, cell_text, kind};
use super::settings::{Paging, Total};
use crate::sync::source::SourceError;

/// What the pager needs to know about a page it was given.
pub(super) struct PageSeen<'a> {
    pub url: &'a Url,
    pub headers: &'a HeaderMap,
    pub body: &'a Value,
    pub raw: &'a [u8],
    pub records: usize,
}

pub(super) struct Pager<'a> {
    paging: &'a Paging,
    /// The first page's URL, fixed query included; page and offset parameters are set on it.
    start: Url,
    max_pages: u32,
    /// Pages read so far; the page being read is `pages + 1`.
    pages: u32,
    collected: u64,
    total: Option<u64>,
    seen_cursors: HashSet<String>,
    seen_urls: HashSet<Url>,
    previous_digest: Option<[u8; 32]>,
}

impl<'a> Pager<'a> {
    pub fn new(paging: &'a Paging, start: Url, max_pages: u32) -> Self {
        Self {
            paging,
            start,
            max_pages,
            pages: 0,
            collected: 0,
            total: None,
            seen_cursors: HashSet::new(),
            seen_urls: HashSet::new(),
            previous_digest: None,
        }
    }

    /// The number (1-based) of the page about to be read.
    pub fn page(&self) -> u32 {
        self.pages + 1
    }

    /// The first page's URL.
    pub fn first(&mut self) -> Url {
        match self.paging {
            Paging::None | Paging::Cursor { .. } => self.start.clone(),
            Paging::Link => {
                self.seen_urls.insert(self.start.clone());
                self.start.clone()
            }
            Paging::Page { .. } | Paging::Offset { .. } => self.numbered(),
        }
    }

    /// Takes note of the page just read; the next URL, or `None` when the read is complete.
    pub fn next(&mut self, seen: &PageSeen<'_>) -> Result<Option<Url>, SourceError> {
        let page = self.page();
        let fail = |detail: String| SourceError::Page { page, detail };
        self.pages += 1;
        self.collected += seen.records as u64;

        let digest: [u8; 32] = Sha256::digest(seen.raw).into();
        if seen.records > 0 && self.previous_digest == Some(digest) {
            return Err(fail(format!(
                "GET {} returned the same page as the one before it; the API is ignoring the pagination parameters, so check [source.rest.pagination]",
                seen.url.path()
            )));
        }
        self.previous_digest = Some(digest);

        let paging = self.paging;
        let more = match paging {
            Paging::None => false,
            Paging::Page {
                page_size, total, ..
            }
            | Paging::Offset {
                page_size, total, ..
            } => self.more_numbered(seen, *page_size, total.as_ref(), page)?,
            Paging::Cursor {
                cursor_param,
                next_cursor,
            } => {
                return self.next_cursor(seen, cursor_param, next_cursor, page);
            }
            Paging::Link => return self.next_link(seen, page),
        };
        if !more {
            return Ok(None);
        }
        self.guard_page_count()?;
        Ok(Some(self.numbered()))
    }

    /// The URL of the next numbered (page or offset) page.
    fn numbered(&self) -> Url {
        match self.paging {
            Paging::Page {
                page_param,
                per_page_param,
                page_size,
                first_page,
                ..
            } => with_params(
                &self.start,
                &[
                    (
                        page_param,
                        first_page.saturating_add(self.pages).to_string(),
                    ),
                    (per_page_param, page_size.to_string()),
                ],
            ),
            Paging::Offset {
                skip_param,
                take_param,
                page_size,
                ..
            } => with_params(
                &self.start,
                &[
                    (skip_param, self.collected.to_string()),
                    (take_param, page_size.to_string()),
                ],
            ),
            Paging::None | Paging::Cursor { .. } | Paging::Link => self.start.clone(),
        }
    }

    /// Whether a page or offset read goes on after this page.
    fn more_numbered(
        &mut self,
        seen: &PageSeen<'_>,
        page_size: u32,
        total: Option<&Total>,
        page: u32,
    ) -> Result<bool, SourceError> {
        let short = seen.records < page_size as usize;
        let Some(total) = total else {
            // Without a total, a short page is the only end there is. (A page_size above the API's
            // own maximum makes every page short: keep it at or below what the API allows.)
            return Ok(!short);
        };
        let (path, done, unit) = match total {
            Total::Records(path) => (path, self.collected, "records"),
            Total::Pages(path) => (path, u64::from(self.pages), "pages"),
        };
        let reported = count_at(seen.body, path, page)?;
        if let Some(before) = self.total.replace(reported)
            && before != reported
        {
            return Err(SourceError::Page {
                page,
                detail: format!(
                    "the API's total ('{path}') changed from {before} to {reported} during the read; people were added or removed meanwhile, so pages may have shifted and someone may have been skipped. The run stops rather than guess; the next run reads again"
                ),
            });
        }
        if done >= reported {
            return Ok(false);
        }
        if short {
            return Err(SourceError::Page {
                page,
                detail: format!(
                    "GET {} returned {} record(s) where {page_size} were asked for, yet the API reports {reported} {unit} in total ('{path}') and only {done} have been read; the read is incomplete",
                    seen.url.path(),
                    seen.records
                ),
            });
        }
        Ok(true)
    }

    fn next_cursor(
        &mut self,
        seen: &PageSeen<'_>,
        cursor_param: &str,
        path: &FieldPath,
        page: u32,
    ) -> Result<Option<Url>, SourceError> {
        let fail = |detail: String| SourceError::Page { page, detail };
        let cursor = match path.lookup(seen.body) {
            Lookup::Absent => None,
            Lookup::Found(value) => cell_text(value).map_err(|found| {
                fail(format!(
                    "the next cursor ('{path}') is {found}, not a string or number; check pagination.next_cursor"
                ))
            })?,
            Lookup::Blocked { at, found } => {
                return Err(fail(format!(
                    "the next cursor ('{path}') cannot be read: {at} is {found}; check pagination.next_cursor"
                )));
            }
        };
        let Some(cursor) = cursor.filter(|cursor| !cursor.is_empty()) else {
            return Ok(None);
        };
        // The cursor itself stays out of the message: it is opaque and may encode anything.
        if !self.seen_cursors.insert(cursor.clone()) {
            return Err(fail(format!(
                "the API returned a next cursor ('{path}') it had returned before; reading on would loop forever"
            )));
        }
        self.guard_page_count()?;
        Ok(Some(with_params(&self.start, &[(cursor_param, cursor)])))
    }

    fn next_link(&mut self, seen: &PageSeen<'_>, page: u32) -> Result<Option<Url>, SourceError> {
        let fail = |detail: String| SourceError::Page { page, detail };
        let values = seen
            .headers
            .get_all(LINK)
            .iter()
            .filter_map(|value| value.to_str().ok());
        let Some(target) = link::next_target(values) else {
            return Ok(None);
        };
        let next = seen.url.join(&target).map_err(|error| {
            fail(format!(
                "the Link header's rel=\"next\" is not a usable URL ({error})"
            ))
        })?;
        // Credentials go with every request, so only ever to the host they were configured for.
        if next.origin() != self.start.origin() {
            return Err(fail(format!(
                "the Link header's next page is on {}, not on {}; credentials are only sent to the configured host",
                origin(&next),
                origin(&self.start)
            )));
        }
        if !self.seen_urls.insert(next.clone()) {
            return Err(fail(format!(
                "the Link header's next page ({}) was read before; reading on would loop forever",
                next.path()
            )));
        }
        self.guard_page_count()?;
        Ok(Some(next))
    }

    fn guard_page_count(&self) -> Result<(), SourceError> {
        if self.pages >= self.max_pages {
            return Err(SourceError::Page {
                page: self.page(),
                detail: format!(
                    "the API still had more after {} pages (max_pages); if it really has that many, raise [source.rest] max_pages, otherwise check [source.rest.pagination]",
                    self.max_pages
                ),
            });
        }
        Ok(())
    }
}

/// A count the API reports: a non-negative integer, or a string holding one.
fn count_at(body: &Value, path: &FieldPath, page: u32) -> Result<u64, SourceError> {
    let found = match path.lookup(body) {
        Lookup::Found(Value::Number(number)) => number.as_u64(),
        Lookup::Found(Value::String(text)) => text.trim().parse().ok(),
        Lookup::Found(_) | Lookup::Absent | Lookup::Blocked { .. } => None,
    };
    found.ok_or_else(|| {
        let what = match path.lookup(body) {
            Lookup::Found(value) => kind(value).to_owned(),
            Lookup::Absent => "missing".to_owned(),
            Lookup::Blocked { at, found } => format!("unreachable ({at} is {found})"),
        };
        SourceError::Page {
            page,
            detail: format!(
                "the total '{path}' is {what}, not a count; check the total setting in [source.rest.pagination]"
            ),
        }
    })
}

/// `url` with each `(name, value)` set, replacing any earlier value of that name.
fn with_params<N: AsRef<str>>(url: &Url, params: &[(N, String)]) -> Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !params.iter().any(|(param, _)| param.as_ref() == name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    let mut next = url.clone();
    {
        let mut query = next.query_pairs_mut();
        query.clear();
        query.extend_pairs(kept);
        query.extend_pairs(params.iter().map(|(name, value)| (name.as_ref(), value)));
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_params_replaces_and_keeps() {
        let url = Url::parse("http://hr.example/c?orderby=Medewerker&skip=5").expect("url");
        let next = with_params(
            &url,
            &[("skip", "100".to_owned()), ("take", "50".to_owned())],
        );
        assert_eq!(
            next.as_str(),
            "http://hr.example/c?orderby=Medewerker&skip=100&take=50"
        );
    }
}
