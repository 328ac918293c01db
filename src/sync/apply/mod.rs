//! Sends a [`Plan`] to Pluvo and advances the snapshot for what Pluvo acknowledged.
//!
//! Three phases, because each depends on the one before: **users** (create, update, archive,
//! unarchive, and the same people's **custom fields**: one aliased document carries a batch of
//! people, each person's upsert followed by their custom fields, so a create runs before the
//! custom fields that need it), then the **custom fields that had to wait** (of people whose
//! upsert went through only after an adoption or an address that had to be freed first; never
//! for people whose user call failed), then **memberships** (one change per group and direction, removals first,
//! several groups' changes in one document, people in root fields of at most
//! [`crate::pluvo::REFS_PER_MEMBERSHIP_FIELD`]). A person whose
//! step fails is skipped in the later phases, journaled, and left un-advanced in the snapshot, so
//! the next run retries exactly them. One person's failure never stops the others.
//!
//! An address change refused because the address is still another employee's, who is moving
//! off it in the same plan (a chain of changes, or a swap), is retried once that person has moved;
//! a swap or longer ring is opened by parking one of them on a placeholder address first
//! (see [`Applier::resolve_email_conflicts`]).
//!
//! Every acknowledged call is journaled together with the snapshot rows it advances (one
//! transaction per call), so a crash between calls loses nothing and repeats nothing that Pluvo
//! confirmed. Calls that are repeated after a crash mid-call are harmless: every call here is
//! idempotent (users are selected by `ref`, values and memberships are set, not toggled).
//!
//! This file holds the [`Applier`], the phase loop and what every phase shares: the one helper
//! that sends a phase's calls, judges each item and commits ([`Applier::send_and_commit`]), and
//! the journal/snapshot commit itself. Each job has its own file: [`users`], [`addresses`],
//! [`adoption`], [`categories`], [`memberships`].

mod addresses;
mod adoption;
mod categories;
mod memberships;
mod users;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

// Boxing each call's future erases its borrowed lifetimes, which lets the compiler prove the
// whole run is `Send` (needed to spawn it) where the unboxed stream hits rust-lang/rust#102211.
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use indicatif::ProgressBar;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::domain::{EmployeeRef, GroupRef, OpKind, OpStatus};
use crate::metrics::Metrics;
use crate::pluvo::{PluvoClient, PluvoError};
use crate::sync::journal::{Journal, OperationRecord};
use crate::sync::plan::{ManagedGroups, Plan};
use crate::sync::snapshot::{Snapshot, SnapshotUser};

pub use categories::ChoiceOptions;

use adoption::StaleMemberships;

/// What applying a plan came to.
#[derive(Debug, Clone, Default)]
pub struct ApplyOutcome {
    pub ok: u64,
    /// Every failed operation: refused by Pluvo, or not delivered.
    pub failed: u64,
    /// Of `failed`, those that failed for a reason that is not the item's own: transport,
    /// credentials, the schema, the journal. Only these can make a run `failed`.
    pub systemic: u64,
    pub skipped: u64,
    /// The first few failures, for the run's error summary.
    pub errors: Vec<String>,
    /// The stop came while work remained: some call was not sent, or not repeated, because of
    /// it. A stop after the last call leaves this false: the run did all it had to.
    pub aborted: bool,
    /// What Pluvo acknowledged, by kind of user operation.
    pub acknowledged: Acknowledged,
}

/// User operations Pluvo acknowledged in a run: what a summary may call "created" or "archived".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Acknowledged {
    /// New accounts, and existing accounts adopted for a new employee.
    pub created: u64,
    pub updated: u64,
    pub archived: u64,
    pub unarchived: u64,
}

impl ApplyOutcome {
    const MAX_ERRORS: usize = 20;

    /// The status of an operation that ended with `error`, counting why: a stop leaves it
    /// skipped (and the run interrupted), a refusal of the item is the item's failure, anything
    /// else is systemic.
    fn failure(&mut self, error: &PluvoError) -> OpStatus {
        match error {
            PluvoError::Cancelled => {
                self.aborted = true;
                OpStatus::Skipped
            }
            error if error.is_refusal() => OpStatus::Failed,
            _ => {
                self.systemic += 1;
                OpStatus::Failed
            }
        }
    }

    fn count(&mut self, op: &OperationRecord) {
        match op.status {
            OpStatus::Ok => {
                self.ok += 1;
                match op.kind {
                    OpKind::Create | OpKind::Adopt => self.acknowledged.created += 1,
                    OpKind::Update => self.acknowledged.updated += 1,
                    OpKind::Archive => self.acknowledged.archived += 1,
                    OpKind::Unarchive => self.acknowledged.unarchived += 1,
                    _ => {}
                }
            }
            OpStatus::Failed => {
                self.failed += 1;
                if self.errors.len() < Self::MAX_ERRORS {
                    self.errors.push(format!(
                        "{} {}{}: {}",
                        op.kind,
                        op.employee_ref.as_deref().unwrap_or("?"),
                        op.target
                            .as_deref()
                            .map(|t| format!(" ({t})"))
                            .unwrap_or_default(),
                        op.error.as_deref().unwrap_or("unknown error"),
                    ));
                }
            }
            OpStatus::Skipped | OpStatus::Rejected => self.skipped += 1,
        }
    }
}

/// The next call that was actually made, skipping those that shutdown stopped from starting
/// (and noting in `aborted` that there were such calls).
async fn next_started<T, S: futures::Stream<Item = Option<T>> + Unpin>(
    results: &mut S,
    aborted: &mut bool,
) -> Option<T> {
    while let Some(item) = results.next().await {
        if item.is_some() {
            return item;
        }
        *aborted = true;
    }
    None
}

/// Everything [`Applier::apply`] needs besides the plan.
pub struct Applier<'a> {
    pub client: &'a PluvoClient,
    /// Which groups the sync may remove people from (the mapping's rules).
    pub managed: &'a ManagedGroups<'a>,
    pub journal: &'a Journal,
    pub metrics: &'a Arc<Metrics>,
    pub run_id: &'a str,
    pub cancel: CancellationToken,
    pub progress: ProgressBar,
    /// Pluvo's choice options, if they could be read this run.
    pub choices: Option<&'a ChoiceOptions>,
}

impl Applier<'_> {
    /// Applies `plan`; `snapshot` is advanced in memory as the database is.
    pub async fn apply(&self, plan: &Plan, snapshot: &mut Snapshot) -> ApplyOutcome {
        let mut outcome = ApplyOutcome::default();
        self.progress.set_length(plan.summary.operations as u64);
        let mut blocked: BTreeSet<EmployeeRef> = BTreeSet::new();

        let mut stale = StaleMemberships::new();
        let categories = self.hold_unknown_options(plan, &mut outcome).await;
        let deferred = self
            .users_phase(
                plan,
                &categories,
                snapshot,
                &mut blocked,
                &mut stale,
                &mut outcome,
            )
            .await;
        self.categories_phase(deferred, snapshot, &blocked, &mut outcome)
            .await;
        self.memberships_phase(plan, snapshot, &blocked, &stale, &mut outcome)
            .await;

        self.progress.finish_and_clear();
        outcome
    }

    /// Sends `calls` (at most the client's concurrency at once, results in order), hands each
    /// result to `judge` for the journal rows and the acknowledged snapshot rows it makes, and
    /// commits those per call. Calls are taken from `calls` only when there is room to send
    /// them, so a call formed by [`sized_chunks`] gets the batch size of that moment. Calls a
    /// stop kept from starting are not judged; the stop is noted in `aborted`. Returns once
    /// every call has ended, so the client is free again.
    async fn send_and_commit<'s, R: Send + 's, F, I>(
        &'s self,
        calls: I,
        snapshot: &mut Snapshot,
        outcome: &mut ApplyOutcome,
        mut judge: impl FnMut(R, &Snapshot, &mut ApplyOutcome) -> Judged,
    ) where
        F: Future<Output = R> + Send + 's,
        I: IntoIterator<Item = F>,
        I::IntoIter: Send + 's,
    {
        // Boxed as a trait object for the same reason as the calls' futures (rust#102211): the
        // lazy iterator's closure types would otherwise be part of this future's type.
        let calls: Box<dyn Iterator<Item = BoxFuture<'s, Option<R>>> + Send + 's> = Box::new(
            calls
                .into_iter()
                .map(|call| -> BoxFuture<'s, Option<R>> { self.unless_cancelled(call) }),
        );
        let mut results = stream::iter(calls).buffered(self.client.concurrency().max(1));
        while let Some(result) = next_started(&mut results, &mut outcome.aborted).await {
            let (ops, acked) = judge(result, snapshot, outcome);
            self.commit(&ops, &acked, snapshot, outcome).await;
        }
    }

    /// Wraps one call so that it sends nothing once shutdown was requested. Calls already under
    /// way when it comes finish, and their results are journaled; the rest resolve to `None` at
    /// once and are left for the next run (every call is idempotent, so that is safe).
    fn unless_cancelled<'a, T: Send + 'a>(
        &'a self,
        call: impl Future<Output = T> + Send + 'a,
    ) -> BoxFuture<'a, Option<T>> {
        async move {
            if self.cancel.is_cancelled() {
                return None;
            }
            Some(call.await)
        }
        .boxed()
    }

    /// Journals `people`'s operations as skipped because their user operation failed; `why`
    /// says what became of them.
    async fn skip<'r>(
        &self,
        people: impl Iterator<Item = (&'r EmployeeRef, OpKind, Option<&'r GroupRef>)>,
        why: &str,
        outcome: &mut ApplyOutcome,
    ) {
        let ops: Vec<OperationRecord> = people
            .map(|(employee_ref, kind, group)| {
                OperationRecord::new(
                    Some(employee_ref.to_string()),
                    kind,
                    group.map(ToString::to_string),
                    json!([]),
                )
                .ended(OpStatus::Skipped, why)
            })
            .collect();
        if !ops.is_empty() {
            let mut unchanged = Snapshot::new();
            self.commit(&ops, &[], &mut unchanged, outcome).await;
        }
    }

    /// Journals `ops` and advances `acked` in one transaction, then mirrors it in memory.
    async fn commit(
        &self,
        ops: &[OperationRecord],
        acked: &[SnapshotUser],
        snapshot: &mut Snapshot,
        outcome: &mut ApplyOutcome,
    ) {
        let acked_refs: Vec<&SnapshotUser> = acked.iter().collect();
        if let Err(error) = self.journal.record(self.run_id, ops, &acked_refs).await {
            // Pluvo did the work but we could not write it down: count these as failed so the
            // run is not reported ok; the snapshot stays behind and the next run repeats the
            // (idempotent) calls.
            tracing::error!(%error, operations = ops.len(), "cannot write the journal");
            outcome.failed += ops.len() as u64;
            outcome.systemic += ops.len() as u64;
            outcome
                .errors
                .push(format!("journal write failed: {error}"));
            return;
        }
        for user in acked {
            snapshot.insert(user.employee_ref.clone(), user.clone());
        }
        for op in ops {
            outcome.count(op);
            self.metrics.inc(
                crate::metrics::names::OPERATIONS_TOTAL,
                vec![
                    ("kind", op.kind.as_str().to_owned()),
                    ("status", op.status.as_str().to_owned()),
                ],
            );
        }
        self.progress.inc(ops.len() as u64);
    }
}

/// A call the run's stop kept from being sent was not refused: it is skipped, and the next run
/// makes it. Anything else that did not succeed failed.
fn status_of(error: &PluvoError) -> OpStatus {
    match error {
        PluvoError::Cancelled => OpStatus::Skipped,
        _ => OpStatus::Failed,
    }
}

/// `items` in consecutive chunks, each as long as the client's batch size at the moment the chunk
/// is taken: the size is the client's to decide ([`PluvoClient::batch_size`]), and it changes
/// as Pluvo accepts or refuses documents, so chunks are taken lazily, as calls are started.
fn sized_chunks<'i, T: Sync>(
    items: &'i [T],
    client: &'i PluvoClient,
) -> impl Iterator<Item = &'i [T]> + Send + 'i {
    let mut rest = items;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let (chunk, tail) = rest.split_at(client.batch_size().clamp(1, rest.len()));
        rest = tail;
        Some(chunk)
    })
}

/// What judging one call's results comes to: its journal rows, and the snapshot rows Pluvo
/// acknowledged.
type Judged = (Vec<OperationRecord>, Vec<SnapshotUser>);

/// Names for the values the job files' tests are written in.
#[cfg(test)]
mod fixtures {
    use crate::domain::{Email, EmployeeRef};

    pub(super) fn r(raw: &str) -> EmployeeRef {
        EmployeeRef::parse(raw).unwrap()
    }

    /// `raw@example.com`.
    pub(super) fn e(raw: &str) -> Email {
        Email::parse(&format!("{raw}@example.com")).unwrap()
    }
}
