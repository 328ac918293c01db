//! The memberships phase: group additions and removals, one change per group and direction,
//! removals first, several groups' changes in one document (as many as the client's batch
//! size). It exists apart because its changes are not per person but per group, and Pluvo
//! answers for the whole change, so each person's fate is read from the answer (`verdict`)
//! rather than from an item result. How many refs go in one root field is the client's to
//! decide ([`crate::pluvo::REFS_PER_MEMBERSHIP_FIELD`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::adoption::StaleMemberships;
use super::{Applier, ApplyOutcome, sized_chunks};
use crate::domain::{EmployeeRef, GroupRef, OpKind, OpStatus};
use crate::pluvo::MembershipChange;
use crate::sync::journal::OperationRecord;
use crate::sync::plan::Plan;
use crate::sync::snapshot::{Snapshot, SnapshotUser};

impl Applier<'_> {
    pub(super) async fn memberships_phase(
        &self,
        plan: &Plan,
        snapshot: &mut Snapshot,
        blocked: &BTreeSet<EmployeeRef>,
        stale: &StaleMemberships,
        outcome: &mut ApplyOutcome,
    ) {
        // Removals first, so a department move never shows someone in two departments' groups
        // for longer than necessary (a document's root fields run in order).
        let mut changes: Vec<MembershipChange> = Vec::new();
        for (group, planned) in &plan.groups {
            for (adding, refs) in [(false, &planned.remove), (true, &planned.add)] {
                let (ready, held): (Vec<_>, Vec<_>) =
                    refs.iter().partition(|r| !blocked.contains(*r));
                self.skip(
                    held.into_iter().map(|r| (r, kind_of(adding), Some(group))),
                    "not attempted: the user operation for this person failed",
                    outcome,
                )
                .await;
                if !ready.is_empty() {
                    changes.push(MembershipChange {
                        group: group.clone(),
                        adding,
                        users: ready.into_iter().cloned().collect(),
                    });
                }
            }
        }
        for (group, refs) in stale {
            changes.push(MembershipChange {
                group: group.clone(),
                adding: false,
                users: refs.clone(),
            });
        }
        changes.sort_by_key(|change| change.adding);

        let calls = sized_chunks(&changes, self.client)
            .map(|chunk| async move { (chunk, self.client.change_memberships(chunk).await) });
        self.send_and_commit(
            calls,
            snapshot,
            outcome,
            |(chunk, batch), snapshot, outcome| {
                let mut ops = Vec::new();
                // One row per person: a document may carry several of their groups, and each
                // change must build on the ones before it, or the last would undo the others.
                let mut acked: BTreeMap<&EmployeeRef, SnapshotUser> = BTreeMap::new();
                for (change, result) in chunk.iter().zip(batch.items) {
                    let (group, adding) = (&change.group, change.adding);
                    for employee_ref in &change.users {
                        let mut op = OperationRecord::new(
                            Some(employee_ref.to_string()),
                            kind_of(adding),
                            Some(group.to_string()),
                            membership_change_json(group, adding),
                        )
                        .sent(batch.attempts, batch.elapsed);
                        let verdict = match &result {
                            Ok(membership) => membership.verdict(
                                employee_ref.as_str(),
                                snapshot
                                    .get(employee_ref)
                                    .and_then(|s| s.pluvo_id.as_deref()),
                            ),
                            Err(error) => {
                                op.status = outcome.failure(error);
                                Err(error.to_string())
                            }
                        };
                        let before = acked
                            .get(employee_ref)
                            .or_else(|| snapshot.get(employee_ref))
                            .cloned();
                        match (verdict, before) {
                            (Ok(()), Some(mut next)) => {
                                if adding {
                                    next.groups.insert(group.clone());
                                } else {
                                    next.groups.remove(group);
                                }
                                acked.insert(employee_ref, next);
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
                        ops.push(op.in_batch(batch.batch_size));
                    }
                }
                (ops, acked.into_values().collect())
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
