//! The custom-fields phase: each person's changed category values, sent only for people whose
//! user call succeeded. It exists apart because of the one check it makes before sending: a
//! choice value Pluvo has no option for ([`ChoiceOptions`]) would fail the person's whole call,
//! so it is held back and journaled on its own, and the person's other fields still go.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{Applier, ApplyOutcome, sized_chunks};
use crate::domain::{CategoryRef, CategoryValue, EmployeeRef, OpKind, OpStatus};
use crate::pluvo::CategoryUpdate;
use crate::sync::journal::OperationRecord;
use crate::sync::plan::{CategoryChange, Plan};
use crate::sync::snapshot::Snapshot;

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
    pub(super) async fn categories_phase(
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

        let calls = sized_chunks(&ready, self.client).map(|chunk| async move {
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
        });
        self.send_and_commit(
            calls,
            snapshot,
            outcome,
            |(chunk, batch), snapshot, outcome| {
                let mut ops = Vec::with_capacity(chunk.len());
                let mut acked = Vec::new();
                for ((employee_ref, changes), result) in chunk.iter().zip(batch.items) {
                    let mut op = OperationRecord::new(
                        Some(employee_ref.to_string()),
                        OpKind::Categories,
                        None,
                        Value::Array(changes.iter().copied().map(category_change_json).collect()),
                    )
                    .sent(batch.attempts, batch.elapsed)
                    .in_batch(batch.batch_size);
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
}

/// One custom-field change as the journal's `changes` column holds it.
fn category_change_json(change: &CategoryChange) -> Value {
    json!({"field": change.category, "before": change.before, "after": change.after})
}
