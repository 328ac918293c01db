//! Paging: Relay connections, edges and cursors over a filtered list of records.
//!
//! One room for Pluvo's page-size rules and graphene's cursor format, shared by every
//! `paginated*` root field and every connection-typed object field.

use apollo_compiler::resolvers::{ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::args::{arg_int, arg_str};
use super::groups::GroupObj;
use super::reports::ReportItemObj;
use super::trainings::TrainingObj;
use super::users::UserObj;
use super::{Ctx, Resolved, objects, opt_leaf};
use crate::state::{ApiError, ErrorCode};

/// Pluvo's documented page-size limit.
pub const MAX_PAGE: i64 = 50;

/// Relay cursors in graphene's format (base64 of `arrayconnection:<index>`); clients must treat
/// them as opaque.
fn cursor(index: usize) -> String {
    BASE64.encode(format!("arrayconnection:{index}"))
}

fn decode_cursor(text: &str) -> Result<usize, ApiError> {
    BASE64
        .decode(text)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|s| {
            s.strip_prefix("arrayconnection:")
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| ApiError::new(ErrorCode::BadUserInput, format!("invalid cursor `{text}`")))
}

/// One page of a connection over `items` (already filtered and ordered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Items on this page with their absolute positions.
    pub items: Vec<(usize, usize)>,
    pub total: usize,
    pub has_next: bool,
    pub has_previous: bool,
}

/// Applies `first` (default and maximum [`MAX_PAGE`]; larger is an error rather than a silent
/// clamp, so a client that asks for more learns it at once), `after` and `offset`.
pub fn page(
    items: &[usize],
    first: Option<i64>,
    after: Option<&str>,
    offset: Option<i64>,
) -> Result<Page, ApiError> {
    let bad = |m: String| ApiError::new(ErrorCode::BadUserInput, m);
    let first = first.unwrap_or(MAX_PAGE);
    if !(0..=MAX_PAGE).contains(&first) {
        return Err(bad(format!(
            "`first` must be between 0 and {MAX_PAGE}, got {first}"
        )));
    }
    let offset = offset.unwrap_or(0);
    let offset = usize::try_from(offset)
        .map_err(|_| bad(format!("`offset` must not be negative, got {offset}")))?;
    let after = after.map(decode_cursor).transpose()?;
    let start = after
        .map_or(0, |a| a + 1)
        .saturating_add(offset)
        .min(items.len());
    let end = start
        .saturating_add(usize::try_from(first).unwrap_or(0))
        .min(items.len());
    Ok(Page {
        items: (start..end).map(|pos| (pos, items[pos])).collect(),
        total: items.len(),
        has_next: end < items.len(),
        has_previous: start > 0,
    })
}

#[derive(Clone, Copy)]
pub(super) enum Kind {
    User,
    Group,
    /// `userData` of each node is about `user`.
    Training {
        user: Option<usize>,
    },
    /// Items are positions in the document's report row arena.
    Report,
}

pub(super) struct Connection<'c> {
    ctx: &'c Ctx,
    kind: Kind,
    page: Page,
}

impl<'c> Connection<'c> {
    /// `offset` is only an argument of the root `paginated*` fields.
    pub(super) fn new(
        ctx: &'c Ctx,
        kind: Kind,
        items: &[usize],
        args: &JsonMap,
        with_offset: bool,
    ) -> Result<Self, ApiError> {
        let offset = if with_offset {
            arg_int(args, "offset")
        } else {
            None
        };
        let page = page(
            items,
            arg_int(args, "first"),
            arg_str(args, "after").as_deref(),
            offset,
        )?;
        Ok(Self { ctx, kind, page })
    }
}

impl ObjectValue for Connection<'_> {
    fn type_name(&self) -> &str {
        match self.kind {
            Kind::User => "UserConnection",
            Kind::Group => "GroupConnection",
            Kind::Training { .. } => "TrainingConnection",
            Kind::Report => "PortfolioReportItemConnection",
        }
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let page = &self.page;
        Ok(match info.field_name() {
            "count" => ResolvedValue::leaf(i64::try_from(page.total).unwrap_or(i64::MAX)),
            "edges" => objects(page.items.iter().map(|&(pos, idx)| Edge {
                ctx: self.ctx,
                kind: self.kind,
                pos,
                idx,
            })),
            "pageInfo" => ResolvedValue::object(PageInfo { page }),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

struct Edge<'c> {
    ctx: &'c Ctx,
    kind: Kind,
    pos: usize,
    idx: usize,
}

impl ObjectValue for Edge<'_> {
    fn type_name(&self) -> &str {
        match self.kind {
            Kind::User => "UserEdge",
            Kind::Group => "GroupEdge",
            Kind::Training { .. } => "TrainingEdge",
            Kind::Report => "PortfolioReportItemEdge",
        }
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let (ctx, idx) = (self.ctx, self.idx);
        Ok(match (info.field_name(), self.kind) {
            ("cursor", _) => ResolvedValue::leaf(cursor(self.pos)),
            ("node", Kind::User) => ResolvedValue::object(UserObj { ctx, idx }),
            ("node", Kind::Group) => ResolvedValue::object(GroupObj { ctx, idx }),
            ("node", Kind::Training { user }) => {
                ResolvedValue::object(TrainingObj { ctx, idx, user })
            }
            ("node", Kind::Report) => ResolvedValue::object(ReportItemObj { ctx, idx }),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

struct PageInfo<'p> {
    page: &'p Page,
}

impl ObjectValue for PageInfo<'_> {
    fn type_name(&self) -> &str {
        "PageInfo"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let page = self.page;
        Ok(match info.field_name() {
            "hasNextPage" => ResolvedValue::leaf(page.has_next),
            "hasPreviousPage" => ResolvedValue::leaf(page.has_previous),
            "startCursor" => opt_leaf(page.items.first().map(|&(pos, _)| cursor(pos))),
            "endCursor" => opt_leaf(page.items.last().map(|&(pos, _)| cursor(pos))),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_table() {
        let items: Vec<usize> = (0..120).collect();
        let c = |i| cursor(i);
        // (name, first, after, offset) -> (first pos, len, has_next, has_prev), or None for an error
        type Case<'a> = (
            &'a str,
            Option<i64>,
            Option<String>,
            Option<i64>,
            Option<(usize, usize, bool, bool)>,
        );
        let cases: Vec<Case> = vec![
            ("default page", None, None, None, Some((0, 50, true, false))),
            (
                "small page",
                Some(10),
                None,
                None,
                Some((0, 10, true, false)),
            ),
            (
                "after cursor",
                Some(50),
                Some(c(49)),
                None,
                Some((50, 50, true, true)),
            ),
            (
                "last page",
                Some(50),
                Some(c(99)),
                None,
                Some((100, 20, false, true)),
            ),
            (
                "past the end",
                Some(50),
                Some(c(119)),
                None,
                Some((120, 0, false, true)),
            ),
            ("offset", Some(5), None, Some(7), Some((7, 5, true, true))),
            ("zero", Some(0), None, None, Some((0, 0, true, false))),
            ("too many", Some(51), None, None, None),
            ("negative first", Some(-1), None, None, None),
            ("negative offset", None, None, Some(-3), None),
            ("garbage cursor", None, Some("nope".into()), None, None),
        ];
        for (name, first, after, offset, expected) in cases {
            let got = page(&items, first, after.as_deref(), offset).ok().map(|p| {
                (
                    p.items.first().map_or(p.items.len() + 120, |&(pos, _)| pos),
                    p.items.len(),
                    p.has_next,
                    p.has_previous,
                )
            });
            let expected =
                expected.map(|(start, len, n, p)| (if len == 0 { 120 } else { start }, len, n, p));
            assert_eq!(got, expected, "case {name}");
        }
    }
}
