//! The memberships phase: group additions and removals, one batched call per group and
//! direction, removals first. It exists apart because its calls are not per person but per
//! group, and Pluvo answers for the whole call, so each person's fate is read from the answer
//! (`verdict`) rather than from an item result. How many refs go in one root field is the
//! client's to decide ([`crate::pluvo::REFS_PER_MEMBERSHIP_FIELD`]): a group of 101 new members
//! is one call, one document.

use std::collections::BTreeSet;
use std::time::Instant;

use serde_json::json;

use super::adoption::StaleMemberships;
use super::{Applier, ApplyOutcome};
use crate::domain::{EmployeeRef, GroupRef, OpKind, OpStatus};
use crate::sync::journal::OperationRecord;
use crate::sync::plan::Plan;
use crate::sync::snapshot::Snapshot;

impl Applier<'_> {
    pub(super) async fn memberships_phase(
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
                self.skip(
                    held.into_iter().map(|r| (r, kind_of(adding), Some(group))),
                    outcome,
                )
                .await;
                // All of them: the client puts them in fields of at most
                // REFS_PER_MEMBERSHIP_FIELD refs, in one document.
                if !ready.is_empty() {
                    calls.push((group, adding, ready.into_iter().cloned().collect()));
                }
            }
        }
        for (group, refs) in stale {
            calls.push((group, false, refs.clone()));
        }
        calls.sort_by_key(|(_, adding, _)| *adding);

        let calls: Vec<_> = calls
            .into_iter()
            .map(|(group, adding, refs)| async move {
                let started = Instant::now();
                let result = if adding {
                    self.client.add_to_group(group, &refs).await
                } else {
                    self.client.remove_from_group(group, &refs).await
                };
                (group, adding, refs, result, started.elapsed())
            })
            .collect();
        self.send_and_commit(
            calls,
            snapshot,
            outcome,
            |(group, adding, refs, result, elapsed), snapshot, outcome| {
                let mut ops = Vec::with_capacity(refs.len());
                let mut acked = Vec::new();
                for employee_ref in &refs {
                    let mut op = OperationRecord::new(
                        Some(employee_ref.to_string()),
                        kind_of(adding),
                        Some(group.to_string()),
                        membership_change_json(group, adding),
                    )
                    .sent(1, elapsed);
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
                            let status = match op.status {
                                OpStatus::Ok => OpStatus::Failed,
                                status => status,
                            };
                            op = op.ended(status, error);
                        }
                    }
                    ops.push(op);
                }
                (ops, acked)
            },
        )
        .await;
    }
}

/// The `changes` column of one membership: the group before and after, `null` for not in it.
fn membership_change_json(group: &GroupRef, adding: bool) -> serde_json::Value {
    json!([{"field": "group", "before": (!adding).then_some(group), "after": adding.then_some(group)}])
}

fn kind_of(adding: bool) -> OpKind {
    if adding {
        OpKind::GroupAdd
    } else {
        OpKind::GroupRemove
    }
}
