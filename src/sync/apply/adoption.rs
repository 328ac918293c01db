//! Adoption: a new hire whose create was refused because the address already has a Pluvo
//! account may take that account over, when it carries no ref (or ours), never someone else's.
//! It exists apart because it is the one rule that decides whose learning history an employee
//! gets, and because an adopted account brings group memberships the plan did not foresee
//! ([`StaleMemberships`]), which the memberships phase then removes.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::Applier;
use super::users::{UserFailure, new_user_fields};
use crate::domain::{EmployeeRef, GroupRef, Groups, OpKind};
use crate::pluvo::{PluvoError, Selector, UpsertedUser, UserUpsert};
use crate::sync::plan::{NewUser, Plan};
use crate::sync::snapshot::SnapshotUser;

/// Managed-group memberships found on adopted accounts that the mapping does not give them.
pub(super) type StaleMemberships = BTreeMap<GroupRef, Vec<EmployeeRef>>;

impl Applier<'_> {
    /// A new hire whose create was refused, typically because the e-mail address already has a
    /// Pluvo account. Take that account over when it carries no ref (or ours), never when it
    /// carries someone else's: that would hand one employee's learning history to another.
    pub(super) async fn adopt(
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
    pub(super) fn note_existing_memberships(
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
}
