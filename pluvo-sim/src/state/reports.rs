//! Portfolio reports: one row per person and training they take part in, and one per
//! certificate they were awarded, with the filters of `portfolioReport`.
//!
//! Pluvo computes progress and awards certificates as people learn; the simulator has no
//! learners, so both are set through the admin API (and the seed). Rows are computed from what
//! reads see: a participant whose membership is still pending has no row yet.

use chrono::NaiveDate;

use super::trainings::{TrainingRole, parse_date};
use super::{ApiError, Selector, State, UserKey, parse_datetime, parse_uuid};

/// A person's progress in one training.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// 0 to 100.
    pub progress: f64,
    pub score: Option<f64>,
    pub completion_date: Option<NaiveDate>,
    pub time_spent_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CertificateRec {
    pub user: usize,
    pub title: String,
    pub completion_date: NaiveDate,
    /// The expiry, reported as `endDate`.
    pub end_date: Option<NaiveDate>,
    pub score: Option<f64>,
}

/// Pluvo's `PortfolioRelatedObjectType`; the simulator produces the first two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelatedObjectType {
    Training,
    Certificate,
}

impl RelatedObjectType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Training => "TRAINING",
            Self::Certificate => "CERTIFICATE",
        }
    }
}

/// One `PortfolioReportItem`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportRow {
    pub user: usize,
    pub title: String,
    pub kind: RelatedObjectType,
    pub progress: Option<f64>,
    pub score: Option<f64>,
    pub completion_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    pub time_spent_seconds: Option<u64>,
}

/// Filters of `portfolioReport`, as given.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    pub user_ids: Option<Vec<String>>,
    pub group_ids: Option<Vec<String>>,
    pub kinds: Option<Vec<String>>,
    pub completion_from: Option<String>,
    pub completion_to: Option<String>,
}

impl State {
    /// The rows `filter` selects: training rows in training then user order, then certificates
    /// in the order they were awarded.
    pub fn portfolio_rows(&self, filter: &ReportFilter) -> Result<Vec<ReportRow>, ApiError> {
        let users = match &filter.user_ids {
            None => None,
            Some(ids) => Some(
                ids.iter()
                    .map(|id| parse_uuid(id, "a user id"))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .filter_map(|id| self.user_by_id.get(&id).copied())
                    .collect::<Vec<_>>(),
            ),
        };
        let groups = self.groups_by_ids(filter.group_ids.as_ref())?;
        let from = filter
            .completion_from
            .as_deref()
            .map(parse_date)
            .transpose()?;
        let to = filter
            .completion_to
            .as_deref()
            .map(parse_date)
            .transpose()?;
        let kinds: Option<Vec<&str>> = filter
            .kinds
            .as_ref()
            .map(|k| k.iter().map(String::as_str).collect());
        let wanted =
            |kind: RelatedObjectType| kinds.as_ref().is_none_or(|k| k.contains(&kind.as_str()));
        let mut rows = Vec::new();
        if wanted(RelatedObjectType::Training) {
            for (t, training) in self.trainings.iter().enumerate() {
                for user in self.training_users(t) {
                    if !self
                        .training_roles_of(t, user)
                        .contains(&TrainingRole::Participant)
                    {
                        continue;
                    }
                    let progress = training.progress.get(&user).cloned().unwrap_or_default();
                    rows.push(ReportRow {
                        user,
                        title: training.title.clone(),
                        kind: RelatedObjectType::Training,
                        progress: Some(progress.progress),
                        score: progress.score,
                        completion_date: progress.completion_date,
                        end_date: training.end_date,
                        time_spent_seconds: progress.time_spent_seconds,
                    });
                }
            }
        }
        if wanted(RelatedObjectType::Certificate) {
            rows.extend(self.certificates.iter().map(|c| ReportRow {
                user: c.user,
                title: c.title.clone(),
                kind: RelatedObjectType::Certificate,
                progress: Some(100.0),
                score: c.score,
                completion_date: Some(c.completion_date),
                end_date: c.end_date,
                time_spent_seconds: None,
            }));
        }
        rows.retain(|row| {
            users.as_ref().is_none_or(|us| us.contains(&row.user))
                && groups.as_ref().is_none_or(|gs| {
                    gs.iter()
                        .any(|&g| self.groups[g].members.visible().contains(&row.user))
                })
                && from.is_none_or(|from| row.completion_date.is_some_and(|d| d >= from))
                && to.is_none_or(|to| row.completion_date.is_some_and(|d| d <= to))
        });
        Ok(rows)
    }

    /// Admin: sets someone's progress in a training they reach (directly or via an object).
    pub fn set_progress(
        &mut self,
        training: &Selector,
        user: &UserKey,
        progress: Progress,
    ) -> Result<(), ApiError> {
        let t = self.require_training(training)?;
        let u = self.require_user_key(user)?;
        let direct = self.trainings[t]
            .members
            .committed()
            .iter()
            .any(|&(m, _)| m == u);
        if !direct && !self.linked_via_object(t, u) {
            return Err(ApiError::bad_input(format!(
                "`{}` does not take part in training `{}`",
                user.as_given(),
                self.training_key(t)
            )));
        }
        if !(0.0..=100.0).contains(&progress.progress) {
            return Err(ApiError::bad_input(format!(
                "progress must be between 0 and 100, got {}",
                progress.progress
            )));
        }
        self.trainings[t].progress.insert(u, progress);
        Ok(())
    }

    /// Admin: awards a certificate.
    pub fn award_certificate(
        &mut self,
        user: &UserKey,
        title: &str,
        completion_date: &str,
        expiry_date: Option<&str>,
        score: Option<f64>,
    ) -> Result<(), ApiError> {
        let u = self.require_user_key(user)?;
        let completion_date = parse_date(completion_date)?;
        let end_date = expiry_date.map(parse_date).transpose()?;
        if title.trim().is_empty() {
            return Err(ApiError::bad_input("a certificate needs a title"));
        }
        self.certificates.push(CertificateRec {
            user: u,
            title: title.to_owned(),
            completion_date,
            end_date,
            score,
        });
        Ok(())
    }

    /// Admin: sets (or clears, for "never logged in") someone's last login.
    pub fn set_last_login(&mut self, user: &UserKey, at: Option<&str>) -> Result<(), ApiError> {
        let u = self.require_user_key(user)?;
        self.users[u].last_login = at.map(parse_datetime).transpose()?;
        Ok(())
    }
}
