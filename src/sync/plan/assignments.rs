//! Planning training rules: the pure diff between who each rule matches now and the assignment
//! ledger (what rules gave whom, as Pluvo acknowledged it).
//!
//! Words: a *target* is a role in a training, or an offer event; a *grant* is a live ledger row
//! for a person and target, made by one rule. The semantics an admin relies on:
//! - everyone a rule matches now gets its target, unless they hold a grant for it already (a
//!   rehire keeps their grants, so is not re-added to what they still have);
//! - `keep` never removes; `when_unmatched` removes only a grant *this* rule made, only when no
//!   other rule still matches the person for the same target, never for access Pluvo reported
//!   as linked via a group or enrolment, and never for someone not synced now (a leaver's
//!   trainings stay: history is not destroyed);
//! - enrolment is add-only, and a rule never enrols someone twice, even after a cancellation;
//! - a removal guard withholds every removal of a run that would remove more than
//!   `max(max_people, max_percent % of the people synced)`, unless allowed once.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::domain::{EmployeeRef, OfferEventRef, TrainingRef, TrainingRole};
use crate::sync::rules::{Evaluation, RemovePolicy, Rules};

/// What a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    Training {
        training: TrainingRef,
        role: TrainingRole,
    },
    OfferEvent {
        offer_event: OfferEventRef,
    },
}

/// One ledger row as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub rule: String,
    /// Pluvo said the person reaches the target through a group or an enrolment.
    pub linked_via_object: bool,
    /// Ended (removed by a rule); an ended enrolment still counts as "enrolled once".
    pub ended: bool,
}

/// The ledger: every grant by person and target (the live one, or else the latest ended one).
pub type Ledger = BTreeMap<(EmployeeRef, Target), Grant>;

/// The removal guard's limits and the operator's one-off override.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemovalGuard {
    pub max_people: usize,
    pub max_percent: f64,
    pub allow_mass_removal: bool,
}

impl Default for RemovalGuard {
    fn default() -> Self {
        Self {
            max_people: 10,
            max_percent: 5.0,
            allow_mass_removal: false,
        }
    }
}

/// One rule's operations on one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RuleOps {
    pub rule: String,
    pub target: Option<Target>,
    pub add: Vec<EmployeeRef>,
    pub remove: Vec<EmployeeRef>,
    /// Would be removed, but their access comes from a group or enrolment: left alone.
    pub left_linked: Vec<EmployeeRef>,
}

impl RuleOps {
    fn new(rule: &str, target: &Target) -> Self {
        Self {
            rule: rule.to_owned(),
            target: Some(target.clone()),
            ..Self::default()
        }
    }
}

/// The learning side of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AssignmentPlan {
    /// Per rule, in config order (assign rules, then enrol rules); rules with nothing to do
    /// are left out.
    pub rules: Vec<RuleOps>,
    /// Why the removals were withheld, when the guard withheld them (they are then not in
    /// `rules`).
    pub withheld_removals: Option<String>,
}

impl AssignmentPlan {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// Plans every rule against the ledger. `synced` are the people synced now (not leavers, not
/// held): only they can lose a grant.
pub fn plan_assignments(
    rules: &Rules,
    evaluation: &Evaluation,
    ledger: &Ledger,
    synced: &BTreeSet<EmployeeRef>,
    guard: RemovalGuard,
) -> AssignmentPlan {
    let none = BTreeSet::new();
    let matched = |rule: &str| evaluation.matches.get(rule).unwrap_or(&none);
    let mut planned_adds: BTreeSet<(EmployeeRef, Target)> = BTreeSet::new();
    let mut plan = AssignmentPlan::default();
    let mut removals = 0;
    for rule in &rules.assign {
        let target = Target::Training {
            training: rule.training.clone(),
            role: rule.role,
        };
        let mut ops = RuleOps::new(&rule.name, &target);
        for person in matched(&rule.name) {
            let key = (person.clone(), target.clone());
            let held = ledger.get(&key).is_some_and(|g| !g.ended);
            if !held && planned_adds.insert(key) {
                ops.add.push(person.clone());
            }
        }
        if rule.remove == RemovePolicy::WhenUnmatched {
            for ((person, granted), grant) in ledger {
                if granted != &target
                    || grant.ended
                    || grant.rule != rule.name
                    || !synced.contains(person)
                    || matched(&rule.name).contains(person)
                {
                    continue;
                }
                let granted_elsewhere = rules.assign.iter().any(|other| {
                    other.name != rule.name
                        && other.training == rule.training
                        && other.role == rule.role
                        && matched(&other.name).contains(person)
                });
                if granted_elsewhere {
                    continue;
                }
                if grant.linked_via_object {
                    ops.left_linked.push(person.clone());
                } else {
                    ops.remove.push(person.clone());
                    removals += 1;
                }
            }
        }
        if !(ops.add.is_empty() && ops.remove.is_empty() && ops.left_linked.is_empty()) {
            plan.rules.push(ops);
        }
    }
    for rule in &rules.enrol {
        let target = Target::OfferEvent {
            offer_event: rule.offer_event.clone(),
        };
        let mut ops = RuleOps::new(&rule.name, &target);
        for person in matched(&rule.name) {
            let key = (person.clone(), target.clone());
            // Add-only, once: any grant for this event (live or ended) means "enrolled once".
            if !ledger.contains_key(&key) && planned_adds.insert(key) {
                ops.add.push(person.clone());
            }
        }
        if !ops.add.is_empty() {
            plan.rules.push(ops);
        }
    }
    let limit = guard
        .max_people
        .max((guard.max_percent / 100.0 * synced.len() as f64).floor() as usize);
    if removals > limit && !guard.allow_mass_removal {
        plan.withheld_removals = Some(format!(
            "{removals} training removals exceed the removal guard (at most {limit}: \
             max({} people, {}% of {} synced)); none are sent; check the rules and the \
             export, then run once with --allow-mass-removal",
            guard.max_people,
            guard.max_percent,
            synced.len()
        ));
        for ops in &mut plan.rules {
            ops.remove.clear();
        }
        plan.rules
            .retain(|ops| !(ops.add.is_empty() && ops.left_linked.is_empty()));
    }
    plan
}

#[cfg(test)]
#[path = "assignments_tests.rs"]
mod tests;
