//! The users phase: create, update, archive and unarchive, sent as batches of upserts. It exists
//! apart because it is the phase every later one depends on (a person whose user call failed is
//! `blocked` from the rest), and because it is where a refusal is judged ([`judge`]): the
//! person's own failure, a systemic one, or an address still held by someone else (handed to
//! [`super::addresses`]).
//! Also here: what a user call sends ([`upsert_for`]), what it journals ([`user_changes_json`])
//! and the snapshot row it leaves once acknowledged ([`acknowledge_user`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde_json::{Value, json};

use super::addresses::{EmailConflict, new_email};
use super::adoption::StaleMemberships;
use super::categories::{Deferred, acknowledge_categories, categories_operation, category_values};
use super::{Applier, ApplyOutcome, sized_chunks, status_of};
use crate::domain::{Categories, Email, EmployeeRef, Groups, OpKind, OpStatus};
use crate::pluvo::{
    Batch, PersonWrite, PersonWritten, PluvoError, Selector, UpsertedUser, UserFields, UserUpsert,
};
use crate::sync::journal::OperationRecord;
use crate::sync::plan::{CategoryChange, FieldChange, NewUser, Plan, UserChange};
use crate::sync::snapshot::{Snapshot, SnapshotUser};

/// One person's share of the users phase: their user change, and the custom-field values that
/// go in the same document, after it.
struct Work<'p> {
    employee_ref: &'p EmployeeRef,
    change: Option<&'p UserChange>,
    categories: Option<&'p [&'p CategoryChange]>,
}

/// What became of one person's parts of a document: the user call (after any adoption), and the
/// custom-field call as Pluvo answered it.
type PersonResult = (
    Option<Result<(UpsertedUser, OpKind), UserFailure>>,
    Option<Result<(), PluvoError>>,
);

impl Applier<'_> {
    /// Every person with a user change or custom fields to send, `batch_size` people per
    /// document, each person's upsert followed by their custom fields. Returns the custom fields
    /// that could not be judged with their upsert (it was refused at first), for
    /// [`Applier::categories_phase`].
    pub(super) async fn users_phase<'p>(
        &self,
        plan: &'p Plan,
        categories: &'p BTreeMap<&'p EmployeeRef, Vec<&'p CategoryChange>>,
        snapshot: &mut Snapshot,
        blocked: &mut BTreeSet<EmployeeRef>,
        stale: &mut StaleMemberships,
        outcome: &mut ApplyOutcome,
    ) -> Vec<Deferred<'p>> {
        // Groups an adopted account was already in, by ref, filled in by `adopt` during the calls.
        let adopted: Mutex<BTreeMap<EmployeeRef, Vec<String>>> = Mutex::new(BTreeMap::new());
        let adopted = &adopted;
        let work: Vec<Work<'p>> = plan
            .people
            .iter()
            .map(|p| Work {
                employee_ref: &p.employee_ref,
                change: p.user.as_ref(),
                categories: categories.get(&p.employee_ref).map(Vec::as_slice),
            })
            .filter(|w| w.change.is_some() || w.categories.is_some())
            .collect();
        let calls = sized_chunks(&work, self.client).map(|chunk| async move {
            let items: Vec<PersonWrite> = chunk
                .iter()
                .map(|w| PersonWrite {
                    employee_ref: w.employee_ref.clone(),
                    user: w.change.map(|c| upsert_for(w.employee_ref, c).fields),
                    categories: w.categories.map(category_values).unwrap_or_default(),
                })
                .collect();
            let Batch {
                attempts,
                elapsed,
                items,
                batch_size,
            } = self.client.write_people(&items).await;
            // Adoptions run here, inside the call, and not in the judgement below: while
            // that runs, the other calls in flight are not polled, and one of them may
            // already own the client's token lock (tokio's Mutex hands it to the next waiter
            // on release), so a client call from there can wait forever.
            let mut results: Vec<PersonResult> = Vec::with_capacity(chunk.len());
            for (w, result) in chunk.iter().zip(items) {
                let (user, custom) = match result {
                    Ok(PersonWritten { user, categories }) => (user, categories),
                    Err(error) => (
                        w.change.map(|_| Err(error.clone())),
                        w.categories.map(|_| Err(error)),
                    ),
                };
                let user = match (user, w.change) {
                    (Some(Err(error)), Some(UserChange::Create { user }))
                        if error.is_field_error() =>
                    {
                        Some(self.adopt(w.employee_ref, user, error, adopted).await)
                    }
                    (Some(result), Some(change)) => Some(
                        result
                            .map(|user| (user, change.kind()))
                            .map_err(UserFailure::from),
                    ),
                    _ => None,
                };
                results.push((user, custom));
            }
            (chunk, attempts, elapsed, batch_size, results)
        });

        let mut conflicts: Vec<EmailConflict<'_>> = Vec::new();
        let mut deferred: Vec<Deferred<'p>> = Vec::new();
        self.send_and_commit(
            calls,
            snapshot,
            outcome,
            |(chunk, attempts, elapsed, batch_size, items), snapshot, outcome| {
                let mut ops = Vec::with_capacity(chunk.len());
                let mut acked = Vec::new();
                for (w, (user, custom)) in chunk.iter().zip(items) {
                    let sent =
                        |op: OperationRecord| op.sent(attempts, elapsed).in_batch(batch_size);
                    let employee_ref = w.employee_ref;
                    // The row the person's custom fields build on: the acknowledged user row, or
                    // (no user change) the snapshot's. `None`: their custom fields cannot be
                    // judged with this document.
                    let mut base: Option<SnapshotUser> = None;
                    match (user, w.change) {
                        (Some(result), Some(change)) => {
                            let mut op = sent(user_operation(employee_ref, change));
                            match judge(result, change) {
                                UserVerdict::Acknowledged(remote, kind) => {
                                    op.kind = kind;
                                    let mut next = acknowledge_user(
                                        snapshot.get(employee_ref),
                                        employee_ref,
                                        change,
                                        &remote,
                                    );
                                    let existing = adopted
                                        .lock()
                                        .unwrap_or_else(|p| p.into_inner())
                                        .remove(employee_ref);
                                    if let (Some(next), Some(existing)) = (next.as_mut(), existing)
                                    {
                                        self.note_existing_memberships(
                                            next, &existing, plan, stale,
                                        );
                                    }
                                    // An adoption means the create in the document was refused:
                                    // the custom fields sent after it found no account by that
                                    // ref, and go again now that the account has it.
                                    if kind == OpKind::Adopt {
                                        acked.extend(next);
                                    } else {
                                        base = next;
                                    }
                                }
                                // The address may be one another person gives up later in this run.
                                UserVerdict::EmailTaken(email, error) => {
                                    conflicts.push(EmailConflict {
                                        employee_ref,
                                        change,
                                        email,
                                        op,
                                        error,
                                        systemic: false,
                                    });
                                    deferred
                                        .extend(w.categories.map(|c| (employee_ref, c.to_vec())));
                                    continue;
                                }
                                UserVerdict::Failed(failure) => {
                                    op = op.ended(failure.status, failure.message);
                                    outcome.systemic += u64::from(failure.systemic);
                                    outcome.aborted |= failure.status == OpStatus::Skipped;
                                    blocked.insert(employee_ref.clone());
                                }
                            }
                            ops.push(op);
                        }
                        _ => base = snapshot.get(employee_ref).cloned(),
                    }
                    let (Some(changes), Some(custom)) = (w.categories, custom) else {
                        acked.extend(base);
                        continue;
                    };
                    if base.is_none() && w.change.is_some() {
                        // Not judged with this document: sent again once the user call has
                        // settled, or skipped if it failed.
                        deferred.push((employee_ref, changes.to_vec()));
                        continue;
                    }
                    let mut op = sent(categories_operation(employee_ref, changes));
                    match custom {
                        Ok(()) => {
                            if let Some(next) = base.as_mut() {
                                acknowledge_categories(next, changes);
                            }
                        }
                        Err(error) => op = op.ended(outcome.failure(&error), error.to_string()),
                    }
                    // A person the snapshot does not know has no row to advance.
                    acked.extend(base);
                    ops.push(op);
                }
                (ops, acked)
            },
        )
        .await;
        // Every call has ended, so no other call holds the client: it is safe to call it here.
        self.resolve_email_conflicts(conflicts, snapshot, blocked, outcome)
            .await;
        deferred
    }
}

/// What became of one person's user call.
#[derive(Debug)]
pub(super) enum UserVerdict<'c> {
    /// Pluvo did it, as this kind of operation (a create may have become an adoption).
    Acknowledged(UpsertedUser, OpKind),
    /// Refused because the new address belongs to another account; may be retried once its
    /// holder has moved off it.
    EmailTaken(&'c Email, String),
    /// Refused, not delivered, or stopped: final for this run.
    Failed(UserFailure),
}

/// Judges one item of a user batch. Only an update or unarchive that moves someone to a new
/// address can wait for that address; a create refused for its address was already offered to
/// adoption, so it fails like any other refusal.
pub(super) fn judge(
    result: Result<(UpsertedUser, OpKind), UserFailure>,
    change: &UserChange,
) -> UserVerdict<'_> {
    match result {
        Ok((remote, kind)) => UserVerdict::Acknowledged(remote, kind),
        Err(failure) => match new_email(change) {
            Some(email) if failure.email_taken => UserVerdict::EmailTaken(email, failure.message),
            _ => UserVerdict::Failed(failure),
        },
    }
}

/// Why a user call failed, whether it was because the new address belongs to someone else, and
/// whether the cause is the item's own (a refusal) or systemic.
#[derive(Debug)]
pub(super) struct UserFailure {
    pub(super) message: String,
    pub(super) email_taken: bool,
    pub(super) status: OpStatus,
    pub(super) systemic: bool,
}

impl UserFailure {
    /// Refused for a reason of this person's data, found by pluvo-sync itself.
    pub(super) fn refused(message: String) -> Self {
        Self {
            message,
            email_taken: false,
            status: OpStatus::Failed,
            systemic: false,
        }
    }

    pub(super) fn with_message(self, message: String) -> Self {
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

/// The journal row of `change`, before anything is known of how it went.
pub(super) fn user_operation(employee_ref: &EmployeeRef, change: &UserChange) -> OperationRecord {
    OperationRecord::new(
        Some(employee_ref.to_string()),
        change.kind(),
        None,
        user_changes_json(change),
    )
}

/// Everything a new account gets; also used to adopt an existing account by e-mail.
pub(super) fn new_user_fields(employee_ref: &EmployeeRef, user: &NewUser) -> UserFields {
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
pub(super) fn upsert_for(employee_ref: &EmployeeRef, change: &UserChange) -> UserUpsert {
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
pub(super) fn user_changes_json(change: &UserChange) -> Value {
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
pub(super) fn acknowledge_user(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Language, Role, Roles};
    use crate::pluvo::error::Refusal;
    use crate::sync::apply::fixtures::{e, r};
    use crate::sync::plan::ArchiveReason;

    fn new_user() -> NewUser {
        NewUser {
            name: "Ann Example".into(),
            email: e("ann"),
            roles: Roles::from([Role::Participant]),
            language: Some(Language::Nl),
        }
    }

    fn moving() -> Vec<FieldChange> {
        vec![
            FieldChange::Email {
                before: e("old"),
                after: e("new"),
            },
            FieldChange::Name {
                before: "Ann".into(),
                after: "Ann Example".into(),
            },
        ]
    }

    #[test]
    fn upserts_select_by_ref_and_send_only_what_changed() {
        let cases: &[(&str, UserChange, UserFields)] = &[
            (
                "a create sends every field and the ref, unarchived",
                UserChange::Create { user: new_user() },
                UserFields {
                    r#ref: Some(r("1")),
                    name: Some("Ann Example".into()),
                    email: Some(e("ann")),
                    roles: Some(vec![Role::Participant]),
                    language: Some(Language::Nl),
                    archived: Some(false),
                },
            ),
            (
                "an update sends the changed fields only",
                UserChange::Update { changes: moving() },
                UserFields {
                    email: Some(e("new")),
                    name: Some("Ann Example".into()),
                    ..UserFields::default()
                },
            ),
            (
                "an unarchive sends its changes and unarchives",
                UserChange::Unarchive { changes: moving() },
                UserFields {
                    email: Some(e("new")),
                    name: Some("Ann Example".into()),
                    archived: Some(false),
                    ..UserFields::default()
                },
            ),
            (
                "an archive sends the flag alone",
                UserChange::Archive {
                    why: ArchiveReason::AbsentFromSource,
                },
                UserFields {
                    archived: Some(true),
                    ..UserFields::default()
                },
            ),
        ];
        for (case, change, fields) in cases {
            let upsert = upsert_for(&r("1"), change);
            // By ref always, so a changed address can never create a second account.
            assert_eq!(upsert.selector, Selector::Ref(r("1")), "{case}");
            assert_eq!(&upsert.fields, fields, "{case}");
        }
    }

    #[test]
    fn user_changes_are_journaled_field_by_field() {
        let unarchive = user_changes_json(&UserChange::Unarchive { changes: moving() });
        assert_eq!(
            unarchive,
            json!([
                {"field": "email", "before": "old@example.com", "after": "new@example.com"},
                {"field": "name", "before": "Ann", "after": "Ann Example"},
                {"field": "archived", "before": true, "after": false},
            ])
        );
        let create = user_changes_json(&UserChange::Create { user: new_user() });
        assert_eq!(
            create[1],
            json!({"field": "email", "before": null, "after": "ann@example.com"})
        );
        assert_eq!(create.as_array().map(Vec::len), Some(4));
    }

    fn refused(refusal: Refusal) -> PluvoError {
        PluvoError::Field {
            code: None,
            message: "no".into(),
            refusal,
        }
    }

    /// What a verdict comes to, in a form the cases can name: (kind, status, systemic).
    type Summary = (&'static str, Option<OpStatus>, bool);

    fn summary(verdict: UserVerdict<'_>) -> Summary {
        match verdict {
            UserVerdict::Acknowledged(_, OpKind::Adopt) => ("adopted", None, false),
            UserVerdict::Acknowledged(..) => ("acknowledged", None, false),
            UserVerdict::EmailTaken(email, _) => {
                assert_eq!(email, &e("new"));
                ("email taken", None, false)
            }
            UserVerdict::Failed(failure) => ("failed", Some(failure.status), failure.systemic),
        }
    }

    #[test]
    fn each_item_of_a_user_batch_is_judged_on_its_own() {
        let remote = || UpsertedUser {
            id: "id-1".into(),
            r#ref: Some("1".into()),
            created: false,
        };
        let update = UserChange::Update { changes: moving() };
        let create = UserChange::Create { user: new_user() };
        let rename = UserChange::Update {
            changes: vec![FieldChange::Name {
                before: "A".into(),
                after: "B".into(),
            }],
        };
        type Result = std::result::Result<(UpsertedUser, OpKind), UserFailure>;
        let cases: Vec<(&str, Result, &UserChange, Summary)> = vec![
            (
                "ok",
                Ok((remote(), OpKind::Update)),
                &update,
                ("acknowledged", None, false),
            ),
            (
                "an adoption keeps its kind",
                Ok((remote(), OpKind::Adopt)),
                &create,
                ("adopted", None, false),
            ),
            (
                "refused for the person's data: their failure, not systemic",
                Err(refused(Refusal::Invalid).into()),
                &update,
                ("failed", Some(OpStatus::Failed), false),
            ),
            (
                "refused by pluvo-sync itself (adoption of someone else's account)",
                Err(UserFailure::refused("taken by ref 2".into())),
                &create,
                ("failed", Some(OpStatus::Failed), false),
            ),
            (
                "not delivered: systemic",
                Err(PluvoError::Transport("reset".into()).into()),
                &update,
                ("failed", Some(OpStatus::Failed), true),
            ),
            (
                "credentials refused: systemic",
                Err(PluvoError::Auth("bad secret".into()).into()),
                &update,
                ("failed", Some(OpStatus::Failed), true),
            ),
            (
                "stopped: skipped, neither failed nor systemic",
                Err(PluvoError::Cancelled.into()),
                &update,
                ("failed", Some(OpStatus::Skipped), false),
            ),
            (
                "address taken by an address change: may wait for its holder",
                Err(refused(Refusal::EmailTaken).into()),
                &update,
                ("email taken", None, false),
            ),
            (
                "address taken on a create: adoption already had its chance",
                Err(refused(Refusal::EmailTaken).into()),
                &create,
                ("failed", Some(OpStatus::Failed), false),
            ),
            (
                "address taken while the address does not change: nothing to wait for",
                Err(refused(Refusal::EmailTaken).into()),
                &rename,
                ("failed", Some(OpStatus::Failed), false),
            ),
        ];
        for (case, result, change, expected) in cases {
            assert_eq!(summary(judge(result, change)), expected, "{case}");
        }
    }

    #[test]
    fn acknowledged_changes_advance_the_snapshot_row() {
        let remote = UpsertedUser {
            id: "id-1".into(),
            r#ref: Some("1".into()),
            created: true,
        };
        let created = acknowledge_user(
            None,
            &r("1"),
            &UserChange::Create { user: new_user() },
            &remote,
        )
        .unwrap();
        assert_eq!(
            (
                created.pluvo_id.as_deref(),
                &created.email,
                created.archived
            ),
            (Some("id-1"), &e("ann"), false)
        );
        let archived = acknowledge_user(
            Some(&created),
            &r("1"),
            &UserChange::Archive {
                why: ArchiveReason::AbsentFromSource,
            },
            &remote,
        )
        .unwrap();
        assert!(archived.archived);
        let back = acknowledge_user(
            Some(&archived),
            &r("1"),
            &UserChange::Unarchive { changes: moving() },
            &remote,
        )
        .unwrap();
        assert_eq!(
            (&back.email, back.name.as_str(), back.archived),
            (&e("new"), "Ann Example", false)
        );
        // Only a create may start a row: the plan never updates someone it does not know.
        let update = UserChange::Update { changes: moving() };
        assert!(acknowledge_user(None, &r("1"), &update, &remote).is_none());
    }
}
