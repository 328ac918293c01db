//! Groups and memberships, including delayed ones.
//!
//! Memberships have two faces. The *committed* set is what the last write said and what
//! `/_sim/state` shows; the *visible* set is what queries show, and it trails the committed set
//! by the membership delay, like Pluvo's asynchronous group processing. Both sets and the queue
//! between them are a [`DelayedSet`], shared with training memberships so the delay logic has
//! one home; this room holds the group rules around it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::delayed::DelayedSet;
use super::{ApiError, Selector, State, parse_uuid};

#[derive(Debug, Clone)]
pub struct GroupRec {
    pub id: Uuid,
    pub ref_: Option<String>,
    pub name: String,
    /// Participants: committed at once, visible to reads after the membership delay.
    pub members: DelayedSet<usize>,
    pub managers: BTreeSet<usize>,
}

/// A user named in a bulk call (`addUsersToGroup`, ...), reported back exactly as given; the
/// admin API may also name people without a ref by email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserKey {
    Id(String),
    Ref(String),
    Email(String),
}

impl UserKey {
    pub fn as_given(&self) -> &str {
        match self {
            Self::Id(s) | Self::Ref(s) | Self::Email(s) => s,
        }
    }

    /// A person named in the seed or the admin API: by ref, or by email when it has an `@`
    /// (people created by hand have no ref).
    pub fn admin(text: &str) -> Self {
        if text.contains('@') {
            Self::Email(text.to_owned())
        } else {
            Self::Ref(text.to_owned())
        }
    }
}

/// Result of `addUsersToGroup` / `removeUsersFromGroup`, identifiers as passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipOutcome {
    pub changed: Vec<String>,
    pub unchanged: Vec<String>,
    pub failed: Vec<String>,
}

impl State {
    /// Applies group membership changes whose delay has passed.
    pub(super) fn settle_groups(&mut self, now: Instant) {
        for group in &mut self.groups {
            group.members.settle(now);
        }
    }

    pub fn group_by_selector(&self, selector: &Selector) -> Result<Option<usize>, ApiError> {
        Ok(match selector {
            Selector::Id(text) => self
                .group_by_id
                .get(&parse_uuid(text, "a group id")?)
                .copied(),
            Selector::Ref(r) => self.group_by_ref.get(r).copied(),
        })
    }

    /// The groups a `groupIds`-style filter names, or `None` without the filter; an unknown id
    /// fails the field, as a filter on a group that does not exist is a caller's mistake.
    pub fn groups_by_ids(&self, ids: Option<&Vec<String>>) -> Result<Option<Vec<usize>>, ApiError> {
        ids.map(|ids| {
            ids.iter()
                .map(|id| {
                    self.group_by_selector(&Selector::Id(id.clone()))?
                        .ok_or_else(|| ApiError::not_found(format!("no group with id `{id}`")))
                })
                .collect()
        })
        .transpose()
    }

    /// Groups whose visible members include `user`.
    pub fn visible_groups_of(&self, user: usize) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.groups[g].members.visible().contains(&user))
            .collect()
    }

    pub fn managed_groups_of(&self, user: usize) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| self.groups[g].managers.contains(&user))
            .collect()
    }

    pub fn filter_groups(&self, q: Option<&str>) -> Vec<usize> {
        let q = q.map(str::to_lowercase);
        (0..self.groups.len())
            .filter(|&g| {
                let group = &self.groups[g];
                q.as_ref().is_none_or(|q| {
                    group.name.to_lowercase().contains(q)
                        || group
                            .ref_
                            .as_ref()
                            .is_some_and(|r| r.to_lowercase().contains(q))
                })
            })
            .collect()
    }

    /// `addUsersToGroup` (`add`) or `removeUsersFromGroup`. Unknown users are reported, not
    /// fatal; an unknown group fails the whole field.
    pub fn change_membership(
        &mut self,
        group: &Selector,
        users: &[UserKey],
        add: bool,
        now: Instant,
        delay: Duration,
    ) -> Result<MembershipOutcome, ApiError> {
        let g = self
            .group_by_selector(group)?
            .ok_or_else(|| ApiError::not_found(format!("no group with {}", group.describe())))?;
        let mut outcome = MembershipOutcome::default();
        for key in users {
            let Some(user) = self.user_of_key(key) else {
                outcome.failed.push(key.as_given().to_owned());
                continue;
            };
            if self.groups[g].members.change(user, add, now, delay) {
                outcome.changed.push(key.as_given().to_owned());
            } else {
                outcome.unchanged.push(key.as_given().to_owned());
            }
        }
        Ok(outcome)
    }

    /// Ref of a category, group or user for display; records without a ref show their id.
    pub fn group_key(&self, g: usize) -> String {
        let group = &self.groups[g];
        group.ref_.clone().unwrap_or_else(|| group.id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::tenant;
    use super::*;

    #[test]
    fn membership_becomes_visible_after_the_delay() {
        let mut state = tenant();
        let t0 = Instant::now();
        let delay = Duration::from_secs(60);
        let group = Selector::Ref("g".into());
        let users = [UserKey::Ref("E1".into()), UserKey::Ref("E2".into())];
        state
            .change_membership(&group, &users, true, t0, delay)
            .expect("add");
        state
            .change_membership(
                &group,
                &users[..1],
                false,
                t0 + Duration::from_secs(30),
                delay,
            )
            .expect("remove");
        let cases = [
            ("nothing visible yet", 59, vec![]),
            ("both adds visible", 60, vec![0, 1]),
            ("removal not yet visible", 89, vec![0, 1]),
            ("removal visible", 90, vec![1]),
        ];
        for (name, secs, visible) in cases {
            state.settle(t0 + Duration::from_secs(secs));
            let expected: BTreeSet<usize> = visible.into_iter().collect();
            assert_eq!(state.groups[0].members.visible(), &expected, "case {name}");
        }
        assert_eq!(
            state.groups[0].members.committed(),
            &BTreeSet::from([1]),
            "committed at once"
        );
    }
}
