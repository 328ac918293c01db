//! Sends a [`Plan`] to Pluvo and advances the snapshot for what Pluvo acknowledged.
//!
//! Three phases, because each depends on the one before: **users** (create, update, archive,
//! unarchive; batched as aliased mutations), then **custom fields** (only for people whose user
//! call succeeded), then **memberships** (one batched call per group and direction). A person whose
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

// Boxing each call's future erases its borrowed lifetimes, which lets the compiler prove the
// whole run is `Send` (needed to spawn it) where the unboxed stream hits rust-lang/rust#102211.
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{self, StreamExt};
use indicatif::ProgressBar;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::domain::{Email, EmployeeRef, GroupRef, Groups, OpKind, OpStatus};
use crate::sync::journal::{Journal, OperationRecord};

use crate::domain::{Categories, CategoryRef, CategoryValue};
use crate::metrics::Metrics;
use crate::pluvo::{
    Batch, CategoryUpdate, PluvoClient, PluvoError, Selector, UpsertedUser, UserFields, UserUpsert,
};
use crate::sync::plan::{CategoryChange, FieldChange, ManagedGroups, NewUser, Plan, UserChange};
use crate::sync::snapshot::{Snapshot, SnapshotUser};

/// Refs per membership call. Pluvo documents no limit; this keeps documents small and a failed
/// call cheap to retry.
pub const MEMBERSHIP_BATCH: usize = 100;

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

/// The options of each choice category Pluvo has, as read at the start of the run
/// (`extraCategories`). A choice value Pluvo lacks would fail the person's whole custom-field
/// call, so such a value is held back and journaled, and the person's other fields are sent.
#[derive(Debug, Clone, Default)]
pub struct ChoiceOptions(BTreeMap<String, BTreeSet<String>>);

impl ChoiceOptions {
    /// From Pluvo's categories: the choice categories with a ref, and their options.
    pub fn from_remote(categories: &[crate::pluvo::RemoteCategory]) -> Self {
        Self(
            categories
                .iter()
                .filter(|c| c.category_type.eq_ignore_ascii_case("CHOICE"))
                .filter_map(|c| Some((c.r#ref.clone()?, c.choices.iter().cloned().collect())))
                .collect(),
        )
    }

    /// Whether Pluvo is known to lack `value` for `category`. A category Pluvo does not list
    /// as a choice category is not judged here: Pluvo itself answers for it.
    fn lacks(&self, category: &CategoryRef, value: &CategoryValue) -> bool {
        match (self.0.get(category.as_str()), value) {
            (Some(options), CategoryValue::Choice(option)) => !options.contains(option),
            _ => false,
        }
    }
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
        self.users_phase(plan, snapshot, &mut blocked, &mut stale, &mut outcome)
            .await;
        self.categories_phase(plan, snapshot, &blocked, &mut outcome)
            .await;
        self.memberships_phase(plan, snapshot, &blocked, &stale, &mut outcome)
            .await;

        self.progress.finish_and_clear();
        outcome
    }

    async fn users_phase(
        &self,
        plan: &Plan,
        snapshot: &mut Snapshot,
        blocked: &mut BTreeSet<EmployeeRef>,
        stale: &mut StaleMemberships,
        outcome: &mut ApplyOutcome,
    ) {
        // Groups an adopted account was already in, by ref, filled in by `adopt` during the calls.
        let adopted: Mutex<BTreeMap<EmployeeRef, Vec<String>>> = Mutex::new(BTreeMap::new());
        let adopted = &adopted;
        let work: Vec<(&EmployeeRef, &UserChange)> = plan
            .people
            .iter()
            .filter_map(|p| p.user.as_ref().map(|change| (&p.employee_ref, change)))
            .collect();
        let chunks: Vec<_> = work.chunks(self.client.batch_size().max(1)).collect();
        let calls: Vec<BoxFuture<'_, _>> = chunks
            .into_iter()
            .map(|chunk| {
                self.unless_cancelled(async move {
                    let items: Vec<UserUpsert> = chunk
                        .iter()
                        .map(|(employee_ref, change)| upsert_for(employee_ref, change))
                        .collect();
                    let Batch {
                        attempts,
                        elapsed,
                        items,
                    } = self.client.upsert_users(&items).await;
                    // Adoptions run here, inside the call, and not in the loop below: while the
                    // loop body awaits, the other calls in `buffered` are not polled, and one of
                    // them may already own the client's token lock (tokio's Mutex hands it to the
                    // next waiter on release), so a client call from the loop body can wait
                    // forever.
                    let mut results = Vec::with_capacity(chunk.len());
                    for ((employee_ref, change), result) in chunk.iter().zip(items) {
                        results.push(match (result, change) {
                            (Err(error), UserChange::Create { user }) if error.is_field_error() => {
                                self.adopt(employee_ref, user, error, adopted).await
                            }
                            (result, _) => result
                                .map(|user| (user, change.kind()))
                                .map_err(UserFailure::from),
                        });
                    }
                    (chunk, attempts, elapsed, results)
                })
            })
            .collect();
        let mut results = stream::iter(calls).buffered(self.client.concurrency().max(1));

        let mut conflicts: Vec<EmailConflict<'_>> = Vec::new();
        while let Some((chunk, attempts, elapsed, items)) =
            next_started(&mut results, &mut outcome.aborted).await
        {
            let mut ops = Vec::with_capacity(chunk.len());
            let mut acked = Vec::new();
            for ((employee_ref, change), result) in chunk.iter().zip(items) {
                let mut op = OperationRecord {
                    employee_ref: Some(employee_ref.to_string()),
                    kind: change.kind(),
                    target: None,
                    changes: user_changes_json(change),
                    status: OpStatus::Ok,
                    attempts,
                    error: None,
                    duration_ms: elapsed.as_millis() as u64,
                };
                match result {
                    Ok((remote, kind)) => {
                        op.kind = kind;
                        let mut next = acknowledge_user(
                            snapshot.get(*employee_ref),
                            employee_ref,
                            change,
                            &remote,
                        );
                        let existing = adopted
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(*employee_ref);
                        if let (Some(next), Some(existing)) = (next.as_mut(), existing) {
                            self.note_existing_memberships(next, &existing, plan, stale);
                        }
                        acked.extend(next);
                    }
                    Err(failure) => match new_email(change) {
                        // The address may be one another person gives up later in this run.
                        Some(email) if failure.email_taken => {
                            conflicts.push(EmailConflict {
                                employee_ref,
                                change,
                                email,
                                op,
                                error: failure.message,
                                systemic: false,
                            });
                            continue;
                        }
                        _ => {
                            op.status = failure.status;
                            op.error = Some(failure.message);
                            outcome.systemic += u64::from(failure.systemic);
                            outcome.aborted |= failure.status == OpStatus::Skipped;
                            blocked.insert((*employee_ref).clone());
                        }
                    },
                }
                ops.push(op);
            }
            self.commit(&ops, &acked, snapshot, outcome).await;
        }
        // `results` is drained, so no other call holds the client: it is safe to call it here.
        drop(results);
        self.resolve_email_conflicts(conflicts, snapshot, blocked, outcome)
            .await;
    }

    /// Updates refused because their new address is taken. When it is taken by another person of
    /// this plan who is moving off it (a chain of address changes, or two people swapping), the
    /// refusal is only a matter of order, and the run would fail the same way every time for a
    /// swap. So: retry them while that makes progress (the holder has moved on meanwhile); when it
    /// stops, and one of them still holds an address another of them wants (a cycle), park that
    /// person on a temporary address (journaled and in the snapshot, like any acknowledged
    /// change, so a crash right after it is repaired by the next run) and go on. An address held
    /// by an account outside the plan is never touched: that stays a failure.
    async fn resolve_email_conflicts(
        &self,
        mut pending: Vec<EmailConflict<'_>>,
        snapshot: &mut Snapshot,
        blocked: &mut BTreeSet<EmployeeRef>,
        outcome: &mut ApplyOutcome,
    ) {
        let mut parked = 0usize;
        while !pending.is_empty() && !self.cancel.is_cancelled() {
            let upserts: Vec<UserUpsert> = pending
                .iter()
                .map(|c| upsert_for(c.employee_ref, c.change))
                .collect();
            let batch = self.client.upsert_users(&upserts).await;
            let mut ops = Vec::new();
            let mut acked = Vec::new();
            let mut still = Vec::new();
            for (mut conflict, result) in pending.into_iter().zip(batch.items) {
                conflict.op.attempts += batch.attempts;
                match result {
                    Ok(remote) => {
                        acked.extend(acknowledge_user(
                            snapshot.get(conflict.employee_ref),
                            conflict.employee_ref,
                            conflict.change,
                            &remote,
                        ));
                        ops.push(conflict.op);
                    }
                    Err(error) => {
                        conflict.error = error.to_string();
                        conflict.systemic =
                            !error.is_refusal() && !matches!(error, PluvoError::Cancelled);
                        still.push(conflict);
                    }
                }
            }
            let progress = !ops.is_empty();
            if progress {
                self.commit(&ops, &acked, snapshot, outcome).await;
            }
            pending = still;
            if progress {
                continue;
            }
            // No progress: do some of them want each other's addresses, round in a cycle?
            let Some(cycle) = email_cycle(&pending, snapshot) else {
                break;
            };
            // Every park opens a cycle for good, so this ends; the bound is a safeguard.
            if parked >= pending.len() || !self.cycle_confirmed(&pending, &cycle).await {
                break;
            }
            if !self
                .park(pending[cycle[0]].employee_ref, snapshot, outcome)
                .await
            {
                break;
            }
            parked += 1;
        }
        // Left over because of a stop: not refused, just not finished; the next run does them.
        let stopped = self.cancel.is_cancelled() && !pending.is_empty();
        outcome.aborted |= stopped;
        let mut ops = Vec::with_capacity(pending.len());
        for mut conflict in pending {
            conflict.op.status = if stopped {
                OpStatus::Skipped
            } else {
                OpStatus::Failed
            };
            outcome.systemic += u64::from(conflict.systemic && !stopped);
            conflict.op.error = Some(conflict.error);
            blocked.insert(conflict.employee_ref.clone());
            ops.push(conflict.op);
        }
        if !ops.is_empty() {
            self.commit(&ops, &[], snapshot, outcome).await;
        }
    }

    /// Whether Pluvo agrees that each address in `cycle` is held by the next person in it. The
    /// snapshot says so, but an administrator may have changed an address by hand; parking
    /// someone for an address an outside account holds would only strand them on the placeholder.
    async fn cycle_confirmed(&self, pending: &[EmailConflict<'_>], cycle: &[usize]) -> bool {
        for (position, &index) in cycle.iter().enumerate() {
            let holder = pending[cycle[(position + 1) % cycle.len()]].employee_ref;
            match self.client.find_user_by_email(pending[index].email).await {
                Ok(Some(user)) if user.r#ref.as_deref() == Some(holder.as_str()) => {}
                _ => return false,
            }
        }
        true
    }

    /// Moves `employee_ref` off their current address onto a unique placeholder in the reserved
    /// `.invalid` domain (RFC 2606: never delivered), so that address can go to whoever the HR
    /// system gave it to. Returns whether Pluvo acknowledged it.
    async fn park(
        &self,
        employee_ref: &EmployeeRef,
        snapshot: &mut Snapshot,
        outcome: &mut ApplyOutcome,
    ) -> bool {
        let Some(before) = snapshot.get(employee_ref) else {
            return false;
        };
        let digest = hex::encode(Sha256::digest(employee_ref.as_str().as_bytes()));
        let run = self.run_id.get(..8).unwrap_or(self.run_id);
        let Ok(placeholder) = Email::parse(&format!(
            "pluvo-sync.{}.{run}@address-change.invalid",
            &digest[..16]
        )) else {
            return false;
        };
        let upsert = UserUpsert {
            selector: Selector::Ref(employee_ref.clone()),
            fields: UserFields {
                email: Some(placeholder.clone()),
                ..UserFields::default()
            },
        };
        let batch = self
            .client
            .upsert_users(std::slice::from_ref(&upsert))
            .await;
        let Some(Ok(remote)) = batch.items.into_iter().next() else {
            return false;
        };
        let change = UserChange::Update {
            changes: vec![FieldChange::Email {
                before: before.email.clone(),
                after: placeholder,
            }],
        };
        let acked = acknowledge_user(Some(before), employee_ref, &change, &remote);
        let mut changes = user_changes_json(&change);
        if let Some(first) = changes.get_mut(0) {
            first["why"] = json!("temporary, to free the address for another employee");
        }
        let op = OperationRecord {
            employee_ref: Some(employee_ref.to_string()),
            kind: OpKind::Update,
            target: None,
            changes,
            status: OpStatus::Ok,
            attempts: batch.attempts,
            error: None,
            duration_ms: batch.elapsed.as_millis() as u64,
        };
        let acked: Vec<SnapshotUser> = acked.into_iter().collect();
        self.commit(std::slice::from_ref(&op), &acked, snapshot, outcome)
            .await;
        true
    }

    /// A new hire whose create was refused, typically because the e-mail address already has a
    /// Pluvo account. Take that account over when it carries no ref (or ours), never when it
    /// carries someone else's: that would hand one employee's learning history to another.
    async fn adopt(
        &self,
        employee_ref: &EmployeeRef,
        desired: &NewUser,
        original: PluvoError,
        adopted: &Mutex<BTreeMap<EmployeeRef, Vec<String>>>,
    ) -> Result<(UpsertedUser, OpKind), UserFailure> {
        let existing = match self.client.find_user_by_email(&desired.email).await {
            Ok(Some(existing)) => existing,
            Ok(None) => return Err(UserFailure::from(original)),
            Err(error) => {
                let message =
                    format!("{original}; looking up the e-mail address also failed: {error}");
                return Err(UserFailure::from(error).with_message(message));
            }
        };
        match existing.r#ref.as_deref() {
            Some(other) if other != employee_ref.as_str() => Err(UserFailure::refused(format!(
                "the e-mail address is already used by the Pluvo account with ref '{other}'; \
                 pluvo-sync does not take over an account that belongs to another employee \
                 (fix the address in the HR system or in Pluvo)"
            ))),
            _ => {
                let upsert = UserUpsert {
                    selector: Selector::Email(desired.email.clone()),
                    fields: new_user_fields(employee_ref, desired),
                };
                let batch = self
                    .client
                    .upsert_users(std::slice::from_ref(&upsert))
                    .await;
                match batch.items.into_iter().next() {
                    Some(Ok(user)) => {
                        adopted
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(employee_ref.clone(), existing.groups);
                        Ok((user, OpKind::Adopt))
                    }
                    Some(Err(error)) => {
                        let message = format!("adopting the existing account failed: {error}");
                        Err(UserFailure::from(error).with_message(message))
                    }
                    None => Err(UserFailure::from(original)),
                }
            }
        }
    }

    /// An adopted account may already be in groups the sync manages (an administrator put them
    /// there). The snapshot starts from those, and the ones HR does not give this person are
    /// removed in this run's membership phase, so the account ends as the mapping says.
    fn note_existing_memberships(
        &self,
        next: &mut SnapshotUser,
        existing: &[String],
        plan: &Plan,
        stale: &mut StaleMemberships,
    ) {
        let wanted: Groups = plan
            .people
            .iter()
            .find(|p| p.employee_ref == next.employee_ref)
            .map(|p| p.groups_added.iter().cloned().collect())
            .unwrap_or_default();
        for group in existing.iter().filter_map(|g| GroupRef::parse(g).ok()) {
            if !(self.managed)(&group) {
                continue;
            }
            if !wanted.contains(&group) {
                stale
                    .entry(group.clone())
                    .or_default()
                    .push(next.employee_ref.clone());
            }
            next.groups.insert(group);
        }
    }

    async fn categories_phase(
        &self,
        plan: &Plan,
        snapshot: &mut Snapshot,
        blocked: &BTreeSet<EmployeeRef>,
        outcome: &mut ApplyOutcome,
    ) {
        let work: Vec<(&EmployeeRef, &Vec<CategoryChange>)> = plan
            .people
            .iter()
            .filter(|p| !p.categories.is_empty())
            .map(|p| (&p.employee_ref, &p.categories))
            .collect();
        let (ready, skipped): (Vec<_>, Vec<_>) =
            work.into_iter().partition(|(r, _)| !blocked.contains(*r));
        self.skip(
            skipped.iter().map(|(r, _)| (*r, OpKind::Categories, None)),
            outcome,
        )
        .await;
        let ready = self.hold_unknown_options(ready, outcome).await;

        let chunks: Vec<_> = ready.chunks(self.client.batch_size().max(1)).collect();
        let calls: Vec<BoxFuture<'_, _>> = chunks
            .into_iter()
            .map(|chunk| {
                self.unless_cancelled(async move {
                    let items: Vec<CategoryUpdate> = chunk
                        .iter()
                        .map(|(employee_ref, changes)| CategoryUpdate {
                            user: (*employee_ref).clone(),
                            values: changes
                                .iter()
                                .map(|c| (c.category.clone(), c.after.clone()))
                                .collect(),
                        })
                        .collect();
                    (chunk, self.client.set_category_values(&items).await)
                })
            })
            .collect();
        let mut results = stream::iter(calls).buffered(self.client.concurrency().max(1));

        while let Some((chunk, batch)) = next_started(&mut results, &mut outcome.aborted).await {
            let mut ops = Vec::with_capacity(chunk.len());
            let mut acked = Vec::new();
            for ((employee_ref, changes), result) in chunk.iter().zip(batch.items) {
                let mut op = OperationRecord {
                    employee_ref: Some(employee_ref.to_string()),
                    kind: OpKind::Categories,
                    target: None,
                    changes: Value::Array(
                        changes
                            .iter()
                            .map(|c| json!({"field": c.category, "before": c.before, "after": c.after}))
                            .collect(),
                    ),
                    status: OpStatus::Ok,
                    attempts: batch.attempts,
                    error: None,
                    duration_ms: batch.elapsed.as_millis() as u64,
                };
                match (result, snapshot.get(*employee_ref)) {
                    (Ok(()), Some(before)) => {
                        let mut next = before.clone();
                        for change in changes.iter() {
                            next.categories
                                .insert(change.category.clone(), change.after.clone());
                        }
                        acked.push(next);
                    }
                    (Ok(()), None) => {}
                    (Err(error), _) => {
                        op.status = outcome.failure(&error);
                        op.error = Some(error.to_string());
                    }
                }
                ops.push(op);
            }
            self.commit(&ops, &acked, snapshot, outcome).await;
        }
    }

    /// Takes out of each person's custom-field changes the choice values Pluvo has no option
    /// for, journaling each as a failure that names the field and the value; returns the rest
    /// (people left with nothing to send are dropped). Their snapshot keeps the old value, so
    /// the next run tries the value again, and succeeds once the option exists in Pluvo.
    async fn hold_unknown_options<'p>(
        &self,
        ready: Vec<(&'p EmployeeRef, &'p Vec<CategoryChange>)>,
        outcome: &mut ApplyOutcome,
    ) -> Vec<(&'p EmployeeRef, Vec<&'p CategoryChange>)> {
        let mut held = Vec::new();
        let mut sendable = Vec::with_capacity(ready.len());
        for (employee_ref, changes) in ready {
            let (bad, good): (Vec<&CategoryChange>, Vec<&CategoryChange>) =
                changes.iter().partition(|c| {
                    self.choices
                        .is_some_and(|known| known.lacks(&c.category, &c.after))
                });
            for change in bad {
                let value = match &change.after {
                    CategoryValue::Choice(option) => option.as_str(),
                    _ => "",
                };
                held.push(OperationRecord {
                    employee_ref: Some(employee_ref.to_string()),
                    kind: OpKind::Categories,
                    target: Some(change.category.to_string()),
                    changes: json!([{"field": change.category, "before": change.before, "after": change.after}]),
                    status: OpStatus::Failed,
                    attempts: 0,
                    error: Some(format!(
                        "not sent: Pluvo's custom field '{}' has no option '{value}'; add the option \
                         in Pluvo (or correct the value in the HR system); this person's other \
                         fields were sent",
                        change.category
                    )),
                    duration_ms: 0,
                });
            }
            if !good.is_empty() {
                sendable.push((employee_ref, good));
            }
        }
        if !held.is_empty() {
            tracing::warn!(
                values = held.len(),
                "choice values Pluvo has no option for were not sent; they are in the journal"
            );
            let mut unchanged = Snapshot::new();
            self.commit(&held, &[], &mut unchanged, outcome).await;
        }
        sendable
    }

    async fn memberships_phase(
        &self,
        plan: &Plan,
        snapshot: &mut Snapshot,
        blocked: &BTreeSet<EmployeeRef>,
        stale: &StaleMemberships,
        outcome: &mut ApplyOutcome,
    ) {
        // (group, adding?, refs) — removals first, so a department move never shows someone in
        // two departments' groups for longer than necessary.
        let mut calls: Vec<(&GroupRef, bool, Vec<EmployeeRef>)> = Vec::new();
        for (group, changes) in &plan.groups {
            for (adding, refs) in [(false, &changes.remove), (true, &changes.add)] {
                let (ready, held): (Vec<_>, Vec<_>) =
                    refs.iter().partition(|r| !blocked.contains(*r));
                let kind = if adding {
                    OpKind::GroupAdd
                } else {
                    OpKind::GroupRemove
                };
                self.skip(held.into_iter().map(|r| (r, kind, Some(group))), outcome)
                    .await;
                for chunk in ready.chunks(MEMBERSHIP_BATCH) {
                    calls.push((group, adding, chunk.iter().map(|r| (*r).clone()).collect()));
                }
            }
        }
        for (group, refs) in stale {
            for chunk in refs.chunks(MEMBERSHIP_BATCH) {
                calls.push((group, false, chunk.to_vec()));
            }
        }
        calls.sort_by_key(|(_, adding, _)| *adding);

        let calls: Vec<BoxFuture<'_, _>> = calls
            .into_iter()
            .map(|(group, adding, refs)| {
                self.unless_cancelled(async move {
                    let started = Instant::now();
                    let result = if adding {
                        self.client.add_to_group(group, &refs).await
                    } else {
                        self.client.remove_from_group(group, &refs).await
                    };
                    (group, adding, refs, result, started.elapsed())
                })
            })
            .collect();
        let mut results = stream::iter(calls).buffered(self.client.concurrency().max(1));

        while let Some((group, adding, refs, result, elapsed)) =
            next_started(&mut results, &mut outcome.aborted).await
        {
            let kind = if adding {
                OpKind::GroupAdd
            } else {
                OpKind::GroupRemove
            };
            let mut ops = Vec::with_capacity(refs.len());
            let mut acked = Vec::new();
            for employee_ref in &refs {
                let mut op = OperationRecord {
                    employee_ref: Some(employee_ref.to_string()),
                    kind,
                    target: Some(group.to_string()),
                    changes: json!([{"field": "group", "before": (!adding).then_some(group), "after": adding.then_some(group)}]),
                    status: OpStatus::Ok,
                    attempts: 1,
                    error: None,
                    duration_ms: elapsed.as_millis() as u64,
                };
                let verdict = match &result {
                    Ok(membership) => {
                        op.attempts = membership.attempts;
                        membership.verdict(
                            employee_ref.as_str(),
                            snapshot
                                .get(employee_ref)
                                .and_then(|s| s.pluvo_id.as_deref()),
                        )
                    }
                    Err(error) => {
                        op.status = outcome.failure(error);
                        Err(error.to_string())
                    }
                };
                match (verdict, snapshot.get(employee_ref)) {
                    (Ok(()), Some(before)) => {
                        let mut next = before.clone();
                        if adding {
                            next.groups.insert(group.clone());
                        } else {
                            next.groups.remove(group);
                        }
                        acked.push(next);
                    }
                    (Ok(()), None) => {}
                    (Err(error), _) => {
                        if op.status == OpStatus::Ok {
                            op.status = OpStatus::Failed;
                        }
                        op.error = Some(error);
                    }
                }
                ops.push(op);
            }
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

    async fn skip<'r>(
        &self,
        people: impl Iterator<Item = (&'r EmployeeRef, OpKind, Option<&'r GroupRef>)>,
        outcome: &mut ApplyOutcome,
    ) {
        let ops: Vec<OperationRecord> = people
            .map(|(employee_ref, kind, group)| OperationRecord {
                employee_ref: Some(employee_ref.to_string()),
                kind,
                target: group.map(ToString::to_string),
                changes: json!([]),
                status: OpStatus::Skipped,
                attempts: 0,
                error: Some("not attempted: the user operation for this person failed".to_owned()),
                duration_ms: 0,
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

/// Managed-group memberships found on adopted accounts that the mapping does not give them.
type StaleMemberships = BTreeMap<GroupRef, Vec<EmployeeRef>>;

/// Why a user call failed, whether it was because the new address belongs to someone else, and
/// whether the cause is the item's own (a refusal) or systemic.
struct UserFailure {
    message: String,
    email_taken: bool,
    status: OpStatus,
    systemic: bool,
}

impl UserFailure {
    /// Refused for a reason of this person's data, found by pluvo-sync itself.
    fn refused(message: String) -> Self {
        Self {
            message,
            email_taken: false,
            status: OpStatus::Failed,
            systemic: false,
        }
    }

    fn with_message(self, message: String) -> Self {
        Self { message, ..self }
    }
}

impl From<PluvoError> for UserFailure {
    fn from(error: PluvoError) -> Self {
        let status = status_of(&error);
        Self {
            email_taken: error.is_email_conflict(),
            systemic: status == OpStatus::Failed && !error.is_refusal(),
            status,
            message: error.to_string(),
        }
    }
}

/// An update whose new address was taken when it was sent; see
/// [`Applier::resolve_email_conflicts`].
struct EmailConflict<'p> {
    employee_ref: &'p EmployeeRef,
    change: &'p UserChange,
    email: &'p Email,
    /// The journal row, written once the conflict is settled either way.
    op: OperationRecord,
    error: String,
    /// Whether the last attempt failed for a systemic reason rather than the conflict.
    systemic: bool,
}

/// Indices into `pending` of people who each want the address the next one holds (per the
/// snapshot), the last wanting the first's: a swap, or a longer ring.
fn email_cycle(pending: &[EmailConflict<'_>], snapshot: &Snapshot) -> Option<Vec<usize>> {
    let holders: HashMap<&Email, usize> = pending
        .iter()
        .enumerate()
        .filter_map(|(index, c)| snapshot.get(c.employee_ref).map(|s| (&s.email, index)))
        .collect();
    for start in 0..pending.len() {
        let mut path = vec![start];
        let mut at = start;
        while let Some(&next) = holders.get(pending[at].email) {
            if next == start {
                return Some(path);
            }
            if path.contains(&next) {
                break;
            }
            path.push(next);
            at = next;
        }
    }
    None
}

/// The address an update or unarchive moves someone to, if it changes their address.
fn new_email(change: &UserChange) -> Option<&Email> {
    let (UserChange::Update { changes } | UserChange::Unarchive { changes }) = change else {
        return None;
    };
    changes.iter().find_map(|c| match c {
        FieldChange::Email { after, .. } => Some(after),
        _ => None,
    })
}

/// Everything a new account gets; also used to adopt an existing account by e-mail.
fn new_user_fields(employee_ref: &EmployeeRef, user: &NewUser) -> UserFields {
    UserFields {
        r#ref: Some(employee_ref.clone()),
        name: Some(user.name.clone()),
        email: Some(user.email.clone()),
        roles: Some(user.roles.iter().copied().collect()),
        language: user.language,
        archived: Some(false),
    }
}

/// The call that carries out `change`. Known people are always selected by ref, so an e-mail
/// change can never create a second account.
fn upsert_for(employee_ref: &EmployeeRef, change: &UserChange) -> UserUpsert {
    let mut fields = UserFields::default();
    match change {
        UserChange::Create { user } => fields = new_user_fields(employee_ref, user),
        UserChange::Update { changes } => apply_fields(&mut fields, changes),
        UserChange::Unarchive { changes } => {
            apply_fields(&mut fields, changes);
            fields.archived = Some(false);
        }
        UserChange::Archive { .. } => fields.archived = Some(true),
    }
    UserUpsert {
        selector: Selector::Ref(employee_ref.clone()),
        fields,
    }
}

fn apply_fields(fields: &mut UserFields, changes: &[FieldChange]) {
    for change in changes {
        match change {
            FieldChange::Name { after, .. } => fields.name = Some(after.clone()),
            FieldChange::Email { after, .. } => fields.email = Some(after.clone()),
            FieldChange::Roles { after, .. } => {
                fields.roles = Some(after.iter().copied().collect())
            }
            FieldChange::Language { after, .. } => fields.language = Some(*after),
        }
    }
}

/// The `changes` column for a user operation: `[{field, before, after}]`.
fn user_changes_json(change: &UserChange) -> Value {
    let field = |c: &FieldChange| match c {
        FieldChange::Name { before, after } => {
            json!({"field": "name", "before": before, "after": after})
        }
        FieldChange::Email { before, after } => {
            json!({"field": "email", "before": before, "after": after})
        }
        FieldChange::Roles { before, after } => {
            json!({"field": "roles", "before": before, "after": after})
        }
        FieldChange::Language { before, after } => {
            json!({"field": "language", "before": before, "after": after})
        }
    };
    match change {
        UserChange::Create { user } => json!([
            {"field": "name", "before": null, "after": user.name},
            {"field": "email", "before": null, "after": user.email},
            {"field": "roles", "before": null, "after": user.roles},
            {"field": "language", "before": null, "after": user.language},
        ]),
        UserChange::Update { changes } => Value::Array(changes.iter().map(field).collect()),
        UserChange::Unarchive { changes } => {
            let mut all: Vec<Value> = changes.iter().map(field).collect();
            all.push(json!({"field": "archived", "before": true, "after": false}));
            Value::Array(all)
        }
        UserChange::Archive { why } => {
            json!([{"field": "archived", "before": false, "after": true, "why": why}])
        }
    }
}

/// The snapshot row after Pluvo acknowledged `change`. Only a create has no row before it (the
/// plan emits updates, archives and unarchives for known people only).
fn acknowledge_user(
    before: Option<&SnapshotUser>,
    employee_ref: &EmployeeRef,
    change: &UserChange,
    remote: &UpsertedUser,
) -> Option<SnapshotUser> {
    let mut next = match (before, change) {
        (Some(before), _) => before.clone(),
        (None, UserChange::Create { user }) => SnapshotUser {
            employee_ref: employee_ref.clone(),
            pluvo_id: None,
            email: user.email.clone(),
            name: user.name.clone(),
            roles: user.roles.clone(),
            language: user.language,
            archived: false,
            categories: Categories::new(),
            groups: Groups::new(),
        },
        (None, _) => return None,
    };
    next.pluvo_id = Some(remote.id.clone());
    match change {
        UserChange::Create { .. } => next.archived = false,
        UserChange::Update { changes } => apply_snapshot_fields(&mut next, changes),
        UserChange::Unarchive { changes } => {
            apply_snapshot_fields(&mut next, changes);
            next.archived = false;
        }
        UserChange::Archive { .. } => next.archived = true,
    }
    Some(next)
}

fn apply_snapshot_fields(next: &mut SnapshotUser, changes: &[FieldChange]) {
    for change in changes {
        match change {
            FieldChange::Name { after, .. } => next.name = after.clone(),
            FieldChange::Email { after, .. } => next.email = after.clone(),
            FieldChange::Roles { after, .. } => next.roles = after.clone(),
            FieldChange::Language { after, .. } => next.language = Some(*after),
        }
    }
}
