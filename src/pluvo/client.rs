//! [`PluvoClient`]: the typed calls pluvo-sync makes to Pluvo (user upserts, custom fields,
//! memberships, reads), each building its document and judging the answer. How a request gets
//! there (pacing, retries, token renewal) is [`super::transport`]'s job. A
//! client made with [`PluvoClient::with_cancel`] stops waiting (for the limiter, a pause or a
//! backoff) as soon as its run is stopped, so shutdown never waits out a `Retry-After`. A client
//! made with [`PluvoClient::with_send_fence`] also asks its fence right before every request, so a
//! run whose lease has lapsed sends nothing more, even before anyone has noticed and cancelled it.

use std::collections::VecDeque;
use std::sync::Arc;

use cynic::QueryBuilder;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::PluvoError;
use super::batch::{AliasedDocument, RawResponse, split};
use super::documents;
use super::documents::MembershipField;
use super::error::{Refusal, Signals, error_root, from_graphql};
use super::operations::{
    GroupsPage, GroupsPageVariables, PAGE_SIZE, SetCategoryValuesPayload, UpsertUserPayload,
    UserByEmail, UserByEmailVariables, UserByRef, UserByRefVariables, UserCategories, UserNode,
};
use super::settings::ResolvedPluvo;
use super::sizing::{REFS_PER_MEMBERSHIP_FIELD, graphql_says_too_big, is_too_big};
use super::transport::{Inner, Stop};
use super::types::{
    Batch, CategoryUpdate, Membership, MembershipChange, PersonWrite, PersonWritten,
    RemoteCategory, RemoteGroup, RemoteUser, UpsertedUser, UserUpsert,
};
use crate::domain::{Email, EmployeeRef, GroupRef};
use crate::metrics::Metrics;

pub use super::transport::SendFence;

/// Guards `groups()` against a server that keeps saying "next page" (50 × 10 000 groups).
const MAX_PAGES: usize = 10_000;

/// The Pluvo API client. Cheap to clone; clones share the token, rate limiter and metrics.
#[derive(Clone)]
pub struct PluvoClient {
    pub(super) inner: Arc<Inner>,
    /// Once cancelled, no request is started any more: calls waiting for the rate limiter, a
    /// `Retry-After` pause or a backoff sleep end with [`PluvoError::Cancelled`]. A request
    /// already sent is waited for.
    pub(super) cancel: Stop,
}

impl std::fmt::Debug for PluvoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluvoClient")
            .field("graphql_url", &self.inner.graphql_url.as_str())
            .finish_non_exhaustive()
    }
}

impl PluvoClient {
    pub fn new(settings: ResolvedPluvo, metrics: Arc<Metrics>) -> Result<Self, PluvoError> {
        Ok(Self {
            inner: Arc::new(Inner::new(settings, metrics)?),
            cancel: Stop::default(),
        })
    }

    /// A clone whose calls stop sending once `cancel` fires: a call waiting to be admitted by the
    /// rate limiter, paused by a 429's `Retry-After`, or sleeping before a retry ends at once
    /// with [`PluvoError::Cancelled`] instead of waiting (possibly minutes) to send again. A
    /// request already on the wire is waited for, so its answer can still be recorded. Every
    /// call the sync makes is idempotent, so the next run simply repeats what was left.
    pub fn with_cancel(&self, cancel: CancellationToken) -> Self {
        Self {
            inner: self.inner.clone(),
            cancel: Stop {
                token: cancel,
                fence: self.cancel.fence.clone(),
            },
        }
    }

    /// A clone that asks `fence` right before every request (token requests and retries
    /// included) and sends nothing once it says no; the call ends with
    /// [`PluvoError::Cancelled`], so what was not sent is journaled skipped.
    pub fn with_send_fence(&self, fence: SendFence) -> Self {
        Self {
            inner: self.inner.clone(),
            cancel: Stop {
                token: self.cancel.token.clone(),
                fence: Some(fence),
            },
        }
    }

    /// People per document right now: it starts at `pluvo.batch_size` and finds its level
    /// between 1 and `pluvo.max_batch_size` (see [`super::sizing`]). The apply stage forms each
    /// document's items by it, so the size is decided here only.
    pub fn batch_size(&self) -> usize {
        self.inner.sizer.current()
    }

    /// Requests allowed in flight at once (`pluvo.concurrency`); callers may run this many batches
    /// concurrently, more would only queue.
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    /// Obtains a token (or reuses the cached one): proves the URL, credentials and scope work.
    pub async fn check_token(&self) -> Result<(), PluvoError> {
        self.inner.token(&self.cancel).await.map(drop)
    }

    /// `updateOrCreateUser` for each item, `batch_size` items per document (one document for a
    /// chunk as the caller sized it). Each item succeeds or fails on its own.
    pub async fn upsert_users(&self, items: &[UserUpsert]) -> Batch<UpsertedUser> {
        let started = Instant::now();
        let (results, attempts, batch_size) = self
            .batches(items, documents::upsert_users, |_, aliases, response| {
                split::<UpsertUserPayload>(aliases, response)
                    .into_iter()
                    .map(|r| r.and_then(upserted))
                    .collect()
            })
            .await;
        finished(started, results, attempts, batch_size)
    }

    /// Each person's upsert and then their custom fields, in documents of the current batch size
    /// in people (one document for a chunk as the caller sized it): a daily change of n people
    /// is about n / batch size requests, whatever mix of user and custom-field changes it is.
    /// Every part is judged on its own, by its alias.
    pub async fn write_people(&self, items: &[PersonWrite]) -> Batch<PersonWritten> {
        let started = Instant::now();
        let (results, attempts, batch_size) = self
            .batches(
                items,
                documents::write_people,
                |chunk, aliases, response| {
                    // One person's document refused for a taken address without a path: only
                    // their upsert can have an address, so the refusal is theirs (as for a
                    // one-field document in `split`).
                    let theirs = chunk.len() == 1 && names_no_item_it_refuses(response);
                    let mut parts = split::<serde_json::Value>(aliases, response)
                        .into_iter()
                        .map(move |part| match part {
                            Err(PluvoError::InvalidDocument { code, message }) if theirs => {
                                Err(PluvoError::Field {
                                    code,
                                    message,
                                    refusal: Refusal::EmailTaken,
                                })
                            }
                            other => other,
                        });
                    let mut next = |field: &str| {
                        parts.next().unwrap_or_else(|| {
                            Err(PluvoError::Decode(format!(
                                "internal: no result for a {field} field"
                            )))
                        })
                    };
                    chunk
                        .iter()
                        .map(|item| {
                            let user = item.user.as_ref().map(|_| {
                                next("updateOrCreateUser")
                                    .and_then(decode::<UpsertUserPayload>)
                                    .and_then(upserted)
                            });
                            let categories = (!item.categories.is_empty()).then(|| {
                                next("updateExtraCategoryValues")
                                    .and_then(decode::<SetCategoryValuesPayload>)
                                    .map(drop)
                            });
                            Ok(PersonWritten { user, categories })
                        })
                        .collect()
                },
            )
            .await;
        finished(started, results, attempts, batch_size)
    }

    /// `updateExtraCategoryValues` for each item. Items without values need no request and succeed.
    pub async fn set_category_values(&self, items: &[CategoryUpdate]) -> Batch<()> {
        let started = Instant::now();
        let to_send: Vec<&CategoryUpdate> = items.iter().filter(|i| !i.values.is_empty()).collect();
        let (sent, attempts, batch_size) = self
            .batches(
                &to_send,
                documents::set_category_values,
                |_, aliases, response| {
                    split::<SetCategoryValuesPayload>(aliases, response)
                        .into_iter()
                        .map(|r| r.map(drop))
                        .collect()
                },
            )
            .await;
        let mut sent = sent.into_iter();
        let results = items
            .iter()
            .map(|item| {
                if item.values.is_empty() {
                    Ok(())
                } else {
                    sent.next().unwrap_or_else(|| {
                        Err(PluvoError::Decode(
                            "internal: result missing for an item".into(),
                        ))
                    })
                }
            })
            .collect();
        finished(started, results, attempts, batch_size)
    }

    /// Adds users (by ref) to a group. Pluvo applies this asynchronously.
    pub async fn add_to_group(
        &self,
        group: &GroupRef,
        users: &[EmployeeRef],
    ) -> Result<Membership, PluvoError> {
        self.one_membership_change(group, true, users).await
    }

    /// Removes users (by ref) from a group. Pluvo applies this asynchronously.
    pub async fn remove_from_group(
        &self,
        group: &GroupRef,
        users: &[EmployeeRef],
    ) -> Result<Membership, PluvoError> {
        self.one_membership_change(group, false, users).await
    }

    async fn one_membership_change(
        &self,
        group: &GroupRef,
        adding: bool,
        users: &[EmployeeRef],
    ) -> Result<Membership, PluvoError> {
        let change = MembershipChange {
            group: group.clone(),
            adding,
            users: users.to_vec(),
        };
        let batch = self.change_memberships(std::slice::from_ref(&change)).await;
        let attempts = batch.attempts;
        let mut membership = batch.items.into_iter().next().unwrap_or_else(|| {
            Err(PluvoError::Decode(
                "internal: result missing for a group".into(),
            ))
        })?;
        membership.attempts = attempts;
        Ok(membership)
    }

    /// Membership changes of any number of groups, in documents of root fields of at most
    /// [`REFS_PER_MEMBERSHIP_FIELD`] refs each (a group of 101 new members is two fields of one
    /// document), in the order given. One result per change: a change fails when a field of it
    /// failed (its other fields were applied; both mutations are idempotent, so repeating the
    /// whole change is safe).
    pub async fn change_memberships(&self, changes: &[MembershipChange]) -> Batch<Membership> {
        let started = Instant::now();
        let mut owners = Vec::new();
        let mut fields = Vec::new();
        for (index, change) in changes.iter().enumerate() {
            for users in change.users.chunks(REFS_PER_MEMBERSHIP_FIELD) {
                owners.push(index);
                fields.push(MembershipField {
                    group: &change.group,
                    adding: change.adding,
                    users,
                });
            }
        }
        let (results, attempts, batch_size) = self
            .batches(
                &fields,
                documents::change_memberships,
                |_, aliases, response| split::<MembershipPayload>(aliases, response),
            )
            .await;
        let mut items: Vec<Result<Membership, PluvoError>> = changes
            .iter()
            .map(|_| {
                Ok(Membership {
                    attempts,
                    ..Membership::default()
                })
            })
            .collect();
        for (owner, result) in owners.into_iter().zip(results) {
            let Some(item) = items.get_mut(owner) else {
                continue;
            };
            match (item.as_mut(), result) {
                (Ok(total), Ok(payload)) => payload.add_to(total),
                (Ok(_), Err(error)) => *item = Err(error),
                (Err(_), _) => {}
            }
        }
        finished(started, items, attempts, batch_size)
    }

    pub async fn find_user_by_email(
        &self,
        email: &Email,
    ) -> Result<Option<RemoteUser>, PluvoError> {
        let op = UserByEmail::build(UserByEmailVariables {
            email: email.as_str().to_owned(),
        });
        not_found_as_none(
            self.inner
                .execute(op, &self.cancel)
                .await
                .map(|(data, _)| data.user),
        )
    }

    pub async fn find_user_by_ref(
        &self,
        r: &EmployeeRef,
    ) -> Result<Option<RemoteUser>, PluvoError> {
        let op = UserByRef::build(UserByRefVariables {
            user_ref: r.as_str().to_owned(),
        });
        not_found_as_none(
            self.inner
                .execute(op, &self.cancel)
                .await
                .map(|(data, _)| data.user),
        )
    }

    /// Every group, following `endCursor` 50 at a time.
    pub async fn groups(&self) -> Result<Vec<RemoteGroup>, PluvoError> {
        let mut groups = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let op = GroupsPage::build(GroupsPageVariables {
                first: PAGE_SIZE,
                after: after.clone(),
            });
            let (data, _) = self.inner.execute(op, &self.cancel).await?;
            let Some(page) = data.paginated_groups else {
                return Ok(groups);
            };
            groups.extend(
                page.edges
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e.node)
                    .map(|g| RemoteGroup {
                        id: g.id.to_string(),
                        r#ref: g.group_ref,
                        name: g.name,
                    }),
            );
            if !page.page_info.has_next_page {
                return Ok(groups);
            }
            match page.page_info.end_cursor {
                Some(cursor) if Some(&cursor) != after.as_ref() => after = Some(cursor),
                _ => {
                    return Err(PluvoError::Decode(
                        "paginatedGroups says there is a next page but gives no new endCursor"
                            .into(),
                    ));
                }
            }
        }
        Err(PluvoError::Decode(format!(
            "paginatedGroups did not end after {MAX_PAGES} pages"
        )))
    }

    /// Reads the tenant's schema by introspection and compares it with what every document
    /// of this client uses of `schema/pluvo.graphql` (see [`super::introspection`]).
    pub async fn compare_schema(&self) -> Result<super::introspection::SchemaReport, PluvoError> {
        let request = serde_json::json!({
            "query": super::introspection::QUERY,
            "operationName": "Introspection",
        });
        let (response, _) = self
            .inner
            .graphql("Introspection", &request, &self.cancel)
            .await;
        let response = response?;
        if let Some(error) = response.errors().first() {
            return Err(from_graphql(error));
        }
        let data = response
            .data
            .ok_or_else(|| PluvoError::Decode("Introspection: no data and no errors".to_owned()))?;
        super::introspection::compare(&data, &super::documents::every_document()?)
    }

    /// The custom fields defined for users (`extraCategories(contentType: USER)`).
    pub async fn user_categories(&self) -> Result<Vec<RemoteCategory>, PluvoError> {
        let (data, _) = self
            .inner
            .execute(UserCategories::build(()), &self.cancel)
            .await?;
        Ok(data
            .extra_categories
            .unwrap_or_default()
            .into_iter()
            .map(|c| RemoteCategory {
                id: c.id.to_string(),
                r#ref: c.category_ref,
                title: c.title,
                category_type: c.category_type,
                choices: c
                    .choice_options
                    .unwrap_or_default()
                    .into_iter()
                    .map(|o| o.string_value)
                    .collect(),
            })
            .collect())
    }

    /// Sends `items` in documents of the current batch size (one document when the caller
    /// formed them at [`Self::batch_size`]), one after the other, and judges each alias on its
    /// own. A document Pluvo refuses as too big ([`is_too_big`]) shrinks the batch size and its
    /// items are re-sent in smaller documents; an accepted one lets the size grow. Results are
    /// in input order; the last value is the smallest document size used.
    async fn batches<I, T>(
        &self,
        items: &[I],
        build: impl Fn(&[I]) -> Result<AliasedDocument, PluvoError>,
        judge: impl Fn(&[I], &[String], &RawResponse) -> Vec<Result<T, PluvoError>>,
    ) -> (Vec<Result<T, PluvoError>>, u32, usize) {
        let sizer = &self.inner.sizer;
        let mut results = Vec::with_capacity(items.len());
        let mut attempts = 0;
        let mut smallest = 0;
        let mut queue: VecDeque<&[I]> = items.chunks(sizer.current()).collect();
        while let Some(chunk) = queue.pop_front() {
            let document = match build(chunk) {
                Ok(document) => document,
                Err(error) => {
                    results.extend(chunk.iter().map(|_| Err(error.clone())));
                    continue;
                }
            };
            let aliases = document.aliases().to_vec();
            let request = document.into_request();
            let splittable = chunk.len() > 1;
            let (response, sent) = self
                .inner
                .graphql_document(request.operation_name, &request, &self.cancel, splittable)
                .await;
            attempts += sent;
            let too_big = match &response {
                Ok(response) => response
                    .errors()
                    .iter()
                    .any(|e| error_root(e).is_none() && graphql_says_too_big(e)),
                Err(error) => is_too_big(error),
            };
            if too_big && splittable {
                let size = sizer.refused(chunk.len()).min(chunk.len() - 1).max(1);
                for smaller in chunk.chunks(size).rev() {
                    queue.push_front(smaller);
                }
                continue;
            }
            if !too_big && response.is_ok() {
                sizer.accepted(chunk.len());
            }
            // A taken address refused without a path names no item: sent one by one, each
            // refusal is its own item's (every item is idempotent, so repeating those the
            // document may already have done is harmless).
            if splittable
                && let Ok(response) = &response
                && names_no_item_it_refuses(response)
            {
                for single in chunk.chunks(1).rev() {
                    queue.push_front(single);
                }
                continue;
            }
            smallest = if smallest == 0 {
                chunk.len()
            } else {
                smallest.min(chunk.len())
            };
            let judged: Vec<Result<T, PluvoError>> = match response {
                Ok(response) => judge(chunk, &aliases, &response),
                Err(error) => chunk.iter().map(|_| Err(error.clone())).collect(),
            };
            debug!(
                operation = request.operation_name,
                items = judged.len(),
                failed = judged.iter().filter(|r| r.is_err()).count(),
                attempts = sent,
                "batch sent"
            );
            results.extend(judged);
        }
        (results, attempts, smallest)
    }
}

/// Whether `response` refuses an item of its document for a taken address without saying
/// which (an error without a path, as some servers answer a conflict, with HTTP 200 or 409).
fn names_no_item_it_refuses(response: &RawResponse) -> bool {
    response.errors().iter().any(|error| {
        error_root(error).is_none() && Signals::of(error, None).refusal() == Refusal::EmailTaken
    })
}

/// A batched call's outcome, `started` when it began.
fn finished<T>(
    started: Instant,
    items: Vec<Result<T, PluvoError>>,
    attempts: u32,
    batch_size: usize,
) -> Batch<T> {
    Batch {
        attempts,
        elapsed: started.elapsed(),
        items,
        batch_size,
    }
}

/// One alias's result as the payload type of its field.
fn decode<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, PluvoError> {
    serde_json::from_value(value)
        .map_err(|e| PluvoError::Decode(format!("result of {}: {e}", std::any::type_name::<T>())))
}

/// An upsert's answer in domain words.
fn upserted(payload: UpsertUserPayload) -> Result<UpsertedUser, PluvoError> {
    let user = payload.user.ok_or_else(|| {
        PluvoError::Decode("updateOrCreateUser returned no user and no error".into())
    })?;
    Ok(UpsertedUser {
        id: user.id.to_string(),
        r#ref: user.user_ref,
        // Pluvo documents `created` as always present; if it is not, "updated" is the answer
        // that cannot make the caller record a user twice.
        created: payload.created.unwrap_or(false),
    })
}

/// What `addUsersToGroup` or `removeUsersFromGroup` answered: the same three lists under other
/// names, read as one shape so a document may mix both.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipPayload {
    added_ids: Option<Vec<String>>,
    already_added_ids: Option<Vec<String>>,
    removed_ids: Option<Vec<String>>,
    already_removed_ids: Option<Vec<String>>,
    failed_ids: Option<Vec<String>>,
}

impl MembershipPayload {
    fn add_to(self, total: &mut Membership) {
        let all = |lists: [Option<Vec<String>>; 2]| lists.into_iter().flatten().flatten();
        total.done.extend(all([self.added_ids, self.removed_ids]));
        total
            .already
            .extend(all([self.already_added_ids, self.already_removed_ids]));
        total.failed.extend(self.failed_ids.unwrap_or_default());
    }
}

/// A lookup of a user who does not exist answers `null`, or (some servers) an error saying so:
/// `NOT_FOUND`, `DoesNotExist`, "User matching query does not exist.".
fn not_found_as_none(
    result: Result<Option<UserNode>, PluvoError>,
) -> Result<Option<RemoteUser>, PluvoError> {
    match result {
        Ok(user) => Ok(user.map(|u| RemoteUser {
            id: u.id.to_string(),
            r#ref: u.user_ref,
            email: u.email,
            name: u.name,
            archived: u.archived,
            groups: u
                .participant_groups
                .unwrap_or_default()
                .into_iter()
                .filter_map(|g| g.group_ref)
                .collect(),
        })),
        Err(error) if error.refusal() == Some(Refusal::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The apply stage spawns these calls on tokio tasks, so their futures must be `Send`.
    #[allow(dead_code)]
    fn public_futures_are_send(client: &PluvoClient, group: &GroupRef, r: &EmployeeRef, e: &Email) {
        fn send<T: Send>(_: T) {}
        send(client.check_token());
        send(client.upsert_users(&[]));
        send(client.set_category_values(&[]));
        send(client.add_to_group(group, &[]));
        send(client.remove_from_group(group, &[]));
        send(client.change_memberships(&[]));
        send(client.find_user_by_email(e));
        send(client.find_user_by_ref(r));
        send(client.groups());
        send(client.user_categories());
    }
}
