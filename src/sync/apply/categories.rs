//! Custom fields: each person's changed category values. They normally go in the same document
//! as the person's upsert (see [`super::users`]); what is here is what they need apart: the one
//! check made before anything is sent (a choice value Pluvo has no option for
//! ([`ChoiceOptions`]) would fail the person's whole custom-field call, so it is held back and
//! journaled on its own, and the person's other fields still go), what a custom-field call
//! journals and acknowledges, and the follow-up phase for the custom fields of people whose
//! upsert went through only after the first document (adopted, or an address that waited).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{Applier, ApplyOutcome, sized_chunks};
use crate::domain::{CategoryRef, CategoryValue, EmployeeRef, OpKind, OpStatus};
use crate::pluvo::CategoryUpdate;
use crate::sync::journal::OperationRecord;
use crate::sync::plan::{CategoryChange, Plan};
use crate::sync::snapshot::{Snapshot, SnapshotUser};

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

impl Applier<'_> {
    /// Custom fields that could not ride with their person's upsert, sent once the users phase
    /// has settled: those of people whose upsert was refused at first and went through later
    /// (an adopted account, an address that had to wait for its holder), by then under their
    /// ref. People whose user call failed for good are skipped, as in every later phase.
    pub(super) async fn categories_phase(
        &self,
        deferred: Vec<Deferred<'_>>,
        snapshot: &mut Snapshot,
        blocked: &BTreeSet<EmployeeRef>,
        outcome: &mut ApplyOutcome,
    ) {
        let (ready, skipped): (Vec<_>, Vec<_>) = deferred
            .into_iter()
            .partition(|(r, _)| !blocked.contains(*r));
        self.skip(
            skipped.iter().map(|(r, _)| (*r, OpKind::Categories, None)),
            // They went in the request of the person's upsert, but a refused upsert leaves
            // their fate unknown: not acknowledged, so the next run sends them again.
            "not judged: the user operation for this person failed, and these values went in \
             the same request; the next run sends them again",
            outcome,
        )
        .await;

        let calls = sized_chunks(&ready, self.client).map(|chunk| async move {
            let items: Vec<CategoryUpdate> = chunk
                .iter()
                .map(|(employee_ref, changes)| CategoryUpdate {
                    user: (*employee_ref).clone(),
                    values: category_values(changes),
                })
                .collect();
            (chunk, self.client.set_category_values(&items).await)
        });
        self.send_and_commit(
            calls,
            snapshot,
            outcome,
            |(chunk, batch), snapshot, outcome| {
                let mut ops = Vec::with_capacity(chunk.len());
                let mut acked = Vec::new();
                for ((employee_ref, changes), result) in chunk.iter().zip(batch.items) {
                    let mut op = categories_operation(employee_ref, changes)
                        .sent(batch.attempts, batch.elapsed)
                        .in_batch(batch.batch_size);
                    match (result, snapshot.get(*employee_ref)) {
                        (Ok(()), Some(before)) => {
                            let mut next = before.clone();
                            acknowledge_categories(&mut next, changes);
                            acked.push(next);
                        }
                        (Ok(()), None) => {}
                        (Err(error), _) => {
                            op = op.ended(outcome.failure(&error), error.to_string());
                        }
                    }
                    ops.push(op);
                }
                (ops, acked)
            },
        )
        .await;
    }

    /// Takes out of each person's custom-field changes the choice values Pluvo has no option
    /// for, journaling each as a failure that names the field and the value; returns the rest
    /// (people left with nothing to send are dropped). Their snapshot keeps the old value, so
    /// the next run tries the value again, and succeeds once the option exists in Pluvo.
    pub(super) async fn hold_unknown_options<'p>(
        &self,
        plan: &'p Plan,
        outcome: &mut ApplyOutcome,
    ) -> BTreeMap<&'p EmployeeRef, Vec<&'p CategoryChange>> {
        let mut held = Vec::new();
        let mut sendable = BTreeMap::new();
        let people = plan.people.iter().filter(|p| !p.categories.is_empty());
        for (employee_ref, changes) in people.map(|p| (&p.employee_ref, &p.categories)) {
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
                held.push(
                    OperationRecord::new(
                        Some(employee_ref.to_string()),
                        OpKind::Categories,
                        Some(change.category.to_string()),
                        json!([category_change_json(change)]),
                    )
                    .ended(
                        OpStatus::Failed,
                        format!(
                            "not sent: Pluvo's custom field '{}' has no option '{value}'; add the \
                             option in Pluvo (or correct the value in the HR system); this \
                             person's other fields were sent",
                            change.category
                        ),
                    ),
                );
            }
            if !good.is_empty() {
                sendable.insert(employee_ref, good);
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
}

/// A person's custom-field changes that wait for the users phase to settle.
pub(super) type Deferred<'p> = (&'p EmployeeRef, Vec<&'p CategoryChange>);

/// The values a person's custom-field call sets.
pub(super) fn category_values(changes: &[&CategoryChange]) -> Vec<(CategoryRef, CategoryValue)> {
    changes
        .iter()
        .map(|c| (c.category.clone(), c.after.clone()))
        .collect()
}

/// The journal row of a person's custom-field changes, before anything is known of how it went.
pub(super) fn categories_operation(
    employee_ref: &EmployeeRef,
    changes: &[&CategoryChange],
) -> OperationRecord {
    OperationRecord::new(
        Some(employee_ref.to_string()),
        OpKind::Categories,
        None,
        Value::Array(changes.iter().copied().map(category_change_json).collect()),
    )
}

/// The snapshot row once Pluvo acknowledged `changes`.
pub(super) fn acknowledge_categories(next: &mut SnapshotUser, changes: &[&CategoryChange]) {
    for change in changes {
        next.categories
            .insert(change.category.clone(), change.after.clone());
    }
}

/// One custom-field change as the journal's `changes` column holds it.
fn category_change_json(change: &CategoryChange) -> Value {
    json!({"field": change.category, "before": change.before, "after": change.after})
}
