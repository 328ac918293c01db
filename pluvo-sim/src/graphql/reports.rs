//! Resolvers for reports: the `portfolioReport` root field and its rows.
//!
//! Rows are computed once per field and kept in the document's row arena ([`Ctx`]), so the
//! connection pages over arena positions like every other connection pages over records.

use apollo_compiler::resolvers::{ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonMap;

use super::args::{arg_str, arg_strs};
use super::paging::{Connection, Kind};
use super::users::UserObj;
use super::{Ctx, Resolved, opt_leaf};
use crate::state::{ApiError, ReportFilter};

/// `portfolioReport(userIds, userGroupIds, relatedObjectTypes, completionDateFrom/To, first,
/// after, offset)`.
pub(super) fn portfolio_report<'a>(
    ctx: &'a Ctx,
    args: &JsonMap,
) -> Result<ResolvedValue<'a>, ApiError> {
    let filter = ReportFilter {
        user_ids: arg_strs(args, "userIds"),
        group_ids: arg_strs(args, "userGroupIds"),
        kinds: arg_strs(args, "relatedObjectTypes"),
        completion_from: arg_str(args, "completionDateFrom"),
        completion_to: arg_str(args, "completionDateTo"),
    };
    let rows = ctx.state.borrow().portfolio_rows(&filter)?;
    let mut arena = ctx.report_rows.borrow_mut();
    let start = arena.len();
    arena.extend(rows);
    let items: Vec<usize> = (start..arena.len()).collect();
    drop(arena);
    Ok(ResolvedValue::object(Connection::new(
        ctx,
        Kind::Report,
        &items,
        args,
        true,
    )?))
}

pub(super) struct ReportItemObj<'c> {
    pub(super) ctx: &'c Ctx,
    /// Position in the document's row arena.
    pub(super) idx: usize,
}

impl ObjectValue for ReportItemObj<'_> {
    fn type_name(&self) -> &str {
        "PortfolioReportItem"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let ctx = self.ctx;
        let arena = ctx.report_rows.borrow();
        let row = &arena[self.idx];
        let date = |d: Option<chrono::NaiveDate>| opt_leaf(d.map(|d| d.to_string()));
        let float = |f: Option<f64>| f.map_or_else(ResolvedValue::null, ResolvedValue::leaf);
        Ok(match info.field_name() {
            "user" => ResolvedValue::object(UserObj { ctx, idx: row.user }),
            "title" => ResolvedValue::leaf(row.title.as_str()),
            "relatedObjectType" => ResolvedValue::leaf(row.kind.as_str()),
            "progress" => float(row.progress),
            "score" => float(row.score),
            "completionDate" => date(row.completion_date),
            "endDate" => date(row.end_date),
            "timeSpent" => match row.time_spent_seconds {
                None => ResolvedValue::null(),
                Some(secs) => ResolvedValue::object(TimeSpent { secs }),
            },
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

/// `{days seconds}`: whole days, and the seconds left over.
struct TimeSpent {
    secs: u64,
}

impl ObjectValue for TimeSpent {
    fn type_name(&self) -> &str {
        "TimeSpent"
    }

    fn resolve_field<'a>(&'a self, info: &'a ResolveInfo<'a>) -> Resolved<'a> {
        let int = |n: u64| ResolvedValue::leaf(i64::try_from(n).unwrap_or(i64::MAX));
        Ok(match info.field_name() {
            "days" => int(self.secs / 86_400),
            "seconds" => int(self.secs % 86_400),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}
