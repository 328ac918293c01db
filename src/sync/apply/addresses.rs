//! Address changes that wait for each other. When a new address is refused because another
//! person of this plan still holds it and is moving off it (a chain of changes, or a swap), the
//! refusal is only a matter of order. This file retries such changes once their holders have
//! moved, and opens a swap or longer ring by parking one person on a placeholder address. It
//! exists apart because it is the one place the sync changes someone's address to a value the
//! HR system never gave, so its ordering rules ([`email_cycle`]) want their own tests.

use std::collections::{BTreeSet, HashMap};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::users::{acknowledge_user, upsert_for, user_changes_json};
use super::{Applier, ApplyOutcome};
use crate::domain::{Email, EmployeeRef, OpKind, OpStatus};
use crate::pluvo::{PluvoError, Selector, UserFields, UserUpsert};
use crate::sync::journal::OperationRecord;
use crate::sync::plan::{FieldChange, UserChange};
use crate::sync::snapshot::{Snapshot, SnapshotUser};

/// An update whose new address was taken when it was sent; see
/// [`Applier::resolve_email_conflicts`].
pub(super) struct EmailConflict<'p> {
    pub(super) employee_ref: &'p EmployeeRef,
    pub(super) change: &'p UserChange,
    pub(super) email: &'p Email,
    /// The journal row, written once the conflict is settled either way.
    pub(super) op: OperationRecord,
    pub(super) error: String,
    /// Whether the last attempt failed for a systemic reason rather than the conflict.
    pub(super) systemic: bool,
}

impl Applier<'_> {
    /// Updates refused because their new address is taken. When it is taken by another person of
    /// this plan who is moving off it (a chain of address changes, or two people swapping), the
    /// refusal is only a matter of order, and the run would fail the same way every time for a
    /// swap. So: retry them while that makes progress (the holder has moved on meanwhile); when it
    /// stops, and one of them still holds an address another of them wants (a cycle), park that
    /// person on a temporary address (journaled and in the snapshot, like any acknowledged
    /// change, so a crash right after it is repaired by the next run) and go on. An address held
    /// by an account outside the plan is never touched: that stays a failure.
    pub(super) async fn resolve_email_conflicts(
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
            let wants: Vec<(&EmployeeRef, &Email)> =
                pending.iter().map(|c| (c.employee_ref, c.email)).collect();
            let Some(cycle) = email_cycle(&wants, snapshot) else {
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
        for conflict in pending {
            let status = if stopped {
                OpStatus::Skipped
            } else {
                OpStatus::Failed
            };
            outcome.systemic += u64::from(conflict.systemic && !stopped);
            blocked.insert(conflict.employee_ref.clone());
            ops.push(conflict.op.ended(status, conflict.error));
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
        let Some(placeholder) = placeholder_email(employee_ref, self.run_id) else {
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
        let op = OperationRecord::new(
            Some(employee_ref.to_string()),
            OpKind::Update,
            None,
            changes,
        )
        .sent(batch.attempts, batch.elapsed);
        let acked: Vec<SnapshotUser> = acked.into_iter().collect();
        self.commit(std::slice::from_ref(&op), &acked, snapshot, outcome)
            .await;
        true
    }
}

/// The address `employee_ref` is parked on during run `run_id`: unique per person and run, and
/// in a domain nothing is ever delivered to.
fn placeholder_email(employee_ref: &EmployeeRef, run_id: &str) -> Option<Email> {
    let digest = hex::encode(Sha256::digest(employee_ref.as_str().as_bytes()));
    let run = run_id.get(..8).unwrap_or(run_id);
    Email::parse(&format!(
        "pluvo-sync.{}.{run}@address-change.invalid",
        &digest[..16]
    ))
    .ok()
}

/// Indices into `wants` (who wants which address) of people who each want the address the next
/// one holds (per the snapshot), the last wanting the first's: a swap, or a longer ring. A chain
/// that ends at an address nobody in `wants` holds is no cycle: waiting resolves it.
pub(super) fn email_cycle(
    wants: &[(&EmployeeRef, &Email)],
    snapshot: &Snapshot,
) -> Option<Vec<usize>> {
    let holders: HashMap<&Email, usize> = wants
        .iter()
        .enumerate()
        .filter_map(|(index, (who, _))| snapshot.get(*who).map(|s| (&s.email, index)))
        .collect();
    for start in 0..wants.len() {
        let mut path = vec![start];
        let mut at = start;
        while let Some(&next) = holders.get(wants[at].1) {
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
pub(super) fn new_email(change: &UserChange) -> Option<&Email> {
    let (UserChange::Update { changes } | UserChange::Unarchive { changes }) = change else {
        return None;
    };
    changes.iter().find_map(|c| match c {
        FieldChange::Email { after, .. } => Some(after),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Categories, Groups, Roles};
    use crate::sync::apply::fixtures::{e, r};

    /// A snapshot in which each `(ref, local part)` holds that address.
    fn holding(people: &[(&str, &str)]) -> Snapshot {
        let mut snapshot = Snapshot::new();
        for (who, address) in people {
            snapshot.insert(
                r(who),
                SnapshotUser {
                    employee_ref: r(who),
                    pluvo_id: Some(format!("id-{who}")),
                    email: e(address),
                    name: format!("Person {who}"),
                    roles: Roles::new(),
                    language: None,
                    archived: false,
                    categories: Categories::new(),
                    groups: Groups::new(),
                },
            );
        }
        snapshot
    }

    #[test]
    fn email_cycle_finds_swaps_and_rings_but_not_chains() {
        // (case, who holds which address, who wants which address, expected cycle)
        type Case = (
            &'static str,
            &'static [(&'static str, &'static str)],
            &'static [(&'static str, &'static str)],
            Option<&'static [usize]>,
        );
        let cases: &[Case] = &[
            (
                "a swap is a cycle of two",
                &[("1", "ann"), ("2", "bob")],
                &[("1", "bob"), ("2", "ann")],
                Some(&[0, 1]),
            ),
            (
                "a ring of three, in the order each wants the next one's address",
                &[("1", "ann"), ("2", "bob"), ("3", "cat")],
                &[("1", "bob"), ("2", "cat"), ("3", "ann")],
                Some(&[0, 1, 2]),
            ),
            (
                "a chain ending at an address nobody pending holds waits, it is no cycle",
                &[("1", "ann"), ("2", "bob")],
                &[("1", "bob"), ("2", "new")],
                None,
            ),
            (
                "an address held by someone outside the pending changes is no cycle",
                &[("1", "ann")],
                &[("1", "outsider")],
                None,
            ),
            (
                "a chain leading into a swap finds the swap, not the chain",
                &[("1", "ann"), ("2", "bob"), ("3", "cat")],
                &[("3", "ann"), ("1", "bob"), ("2", "ann")],
                Some(&[1, 2]),
            ),
            (
                "a person unknown to the snapshot holds nothing",
                &[("1", "ann")],
                &[("1", "bob"), ("2", "ann")],
                None,
            ),
            ("nothing pending, nothing to open", &[], &[], None),
        ];
        for (case, held, wanted, expected) in cases {
            let snapshot = holding(held);
            let people: Vec<(EmployeeRef, Email)> =
                wanted.iter().map(|(who, a)| (r(who), e(a))).collect();
            let wants: Vec<(&EmployeeRef, &Email)> = people.iter().map(|(w, a)| (w, a)).collect();
            assert_eq!(
                email_cycle(&wants, &snapshot).as_deref(),
                *expected,
                "{case}"
            );
        }
    }

    #[test]
    fn placeholders_are_undeliverable_and_unique_per_person_and_run() {
        let parked = placeholder_email(&r("1"), "0123456789abcdef").unwrap();
        assert!(
            parked.as_str().ends_with("@address-change.invalid"),
            "{parked}"
        );
        assert!(
            parked.as_str().contains(".01234567@"),
            "the run's first 8 characters: {parked}"
        );
        assert_eq!(
            Some(parked.clone()),
            placeholder_email(&r("1"), "0123456789abcdef")
        );
        assert_ne!(
            Some(parked.clone()),
            placeholder_email(&r("2"), "0123456789abcdef")
        );
        assert_ne!(Some(parked), placeholder_email(&r("1"), "fedcba9876543210"));
        // A run id shorter than 8 characters is used whole.
        assert!(
            placeholder_email(&r("1"), "run")
                .unwrap()
                .as_str()
                .contains(".run@")
        );
    }

    #[test]
    fn only_updates_and_unarchives_that_change_the_address_have_a_new_one() {
        let moving = vec![FieldChange::Email {
            before: e("old"),
            after: e("new"),
        }];
        let renaming = vec![FieldChange::Name {
            before: "A".into(),
            after: "B".into(),
        }];
        let cases: &[(&str, UserChange, Option<Email>)] = &[
            (
                "update with an address",
                UserChange::Update {
                    changes: moving.clone(),
                },
                Some(e("new")),
            ),
            (
                "unarchive with an address",
                UserChange::Unarchive { changes: moving },
                Some(e("new")),
            ),
            (
                "update without an address",
                UserChange::Update { changes: renaming },
                None,
            ),
            (
                "archive",
                UserChange::Archive {
                    why: crate::sync::plan::ArchiveReason::AbsentFromSource,
                },
                None,
            ),
        ];
        for (case, change, expected) in cases {
            assert_eq!(new_email(change), expected.as_ref(), "{case}");
        }
    }
}
