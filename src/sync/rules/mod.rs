//! Training rules: who gets which training (in which role) and who is enrolled in which offer
//! event, said in terms HR data can express.
//!
//! Words: an *assign rule* (`[[assign]]`) gives everyone its `when` matches a role in a training;
//! an *enrol rule* (`[[enrol]]`) enrols them in an offer event. A rule's *version* is a hash of
//! its definition, journaled with every operation it causes, so an auditor can tell which
//! definition granted what. Rules are evaluated for everyone who matches *now*, not only for
//! people who changed: a new rule reaches the existing workforce on its first run.
//!
//! This stage sits between `mapping` (it reads [`DesiredUser`]s) and `plan`; it never talks to
//! Pluvo. `condition` compiles and evaluates the CEL `when`.

pub mod condition;

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use condition::Condition;

use crate::domain::{EmployeeRef, OfferEventRef, TrainingRef, TrainingRole};
use crate::sync::mapping::DesiredUser;

/// What happens to an assignment when its person stops matching the rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovePolicy {
    /// They keep the training (the default: removal never happens by accident).
    #[default]
    Keep,
    /// They are removed, from what this rule made only, if no other rule still grants it.
    WhenUnmatched,
}

/// `[[assign]]` as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignSettings {
    pub name: String,
    pub training: String,
    #[serde(default = "participant")]
    pub role: String,
    pub when: Option<String>,
    #[serde(default)]
    pub from_days_after_start: Option<u32>,
    #[serde(default)]
    pub remove: RemovePolicy,
    #[serde(default)]
    pub due_days: Option<u32>,
}

fn participant() -> String {
    "PARTICIPANT".to_owned()
}

/// `[[enrol]]` as written in the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrolSettings {
    pub name: String,
    pub offer_event: String,
    pub when: Option<String>,
}

/// A checked `[[assign]]`.
#[derive(Debug, Clone)]
pub struct AssignRule {
    pub name: String,
    pub training: TrainingRef,
    pub role: TrainingRole,
    pub when: Condition,
    pub from_days_after_start: Option<u32>,
    pub remove: RemovePolicy,
    pub due_days: Option<u32>,
    pub version: String,
}

/// A checked `[[enrol]]`.
#[derive(Debug, Clone)]
pub struct EnrolRule {
    pub name: String,
    pub offer_event: OfferEventRef,
    pub when: Condition,
    pub version: String,
}

/// Every rule of the config, checked; empty when the config has none.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub assign: Vec<AssignRule>,
    pub enrol: Vec<EnrolRule>,
    /// The custom fields an expression may name (the mapping's category refs).
    pub custom_fields: BTreeSet<String>,
}

impl Rules {
    /// Checks every rule, collecting every problem; each names its key (`assign[1]`), the rule
    /// and, for an expression, the position or word at fault.
    pub fn from_settings(
        assign: &[AssignSettings],
        enrol: &[EnrolSettings],
        custom_fields: BTreeSet<String>,
    ) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        let mut rules = Rules {
            custom_fields,
            ..Rules::default()
        };
        let mut check_name = |key: &str, name: &str, problems: &mut Vec<String>| {
            if name.trim().is_empty() {
                problems.push(format!("{key}.name: empty; give every rule a stable name"));
            } else if !names.insert(name.to_owned()) {
                problems.push(format!(
                    "{key}.name: '{name}' is used by another rule; names must be unique, they are journaled with every operation"
                ));
            }
        };
        for (i, raw) in assign.iter().enumerate() {
            let key = format!("assign[{i}]");
            check_name(&key, &raw.name, &mut problems);
            let training = TrainingRef::parse(&raw.training)
                .map_err(|e| problems.push(format!("{key}.training ({}): {e}", raw.name)))
                .ok();
            let role = TrainingRole::parse(&raw.role)
                .map_err(|e| problems.push(format!("{key}.role ({}): {e}", raw.name)))
                .ok();
            let when = when(&key, &raw.name, raw.when.as_deref(), &rules.custom_fields)
                .map_err(|e| problems.push(e))
                .ok();
            if let (Some(training), Some(role), Some(when)) = (training, role, when) {
                let version = version(&[
                    "assign",
                    training.as_str(),
                    role.as_str(),
                    when.source().unwrap_or(""),
                    &format!("{:?}", raw.from_days_after_start),
                    &format!("{:?}", raw.remove),
                    &format!("{:?}", raw.due_days),
                ]);
                rules.assign.push(AssignRule {
                    name: raw.name.clone(),
                    training,
                    role,
                    when,
                    from_days_after_start: raw.from_days_after_start,
                    remove: raw.remove,
                    due_days: raw.due_days,
                    version,
                });
            }
        }
        for (i, raw) in enrol.iter().enumerate() {
            let key = format!("enrol[{i}]");
            check_name(&key, &raw.name, &mut problems);
            let event = OfferEventRef::parse(&raw.offer_event)
                .map_err(|e| problems.push(format!("{key}.offer_event ({}): {e}", raw.name)))
                .ok();
            let when = when(&key, &raw.name, raw.when.as_deref(), &rules.custom_fields)
                .map_err(|e| problems.push(e))
                .ok();
            if let (Some(offer_event), Some(when)) = (event, when) {
                let version =
                    version(&["enrol", offer_event.as_str(), when.source().unwrap_or("")]);
                rules.enrol.push(EnrolRule {
                    name: raw.name.clone(),
                    offer_event,
                    when,
                    version,
                });
            }
        }
        if problems.is_empty() {
            Ok(rules)
        } else {
            Err(problems)
        }
    }

    pub fn is_empty(&self) -> bool {
        self.assign.is_empty() && self.enrol.is_empty()
    }

    /// Every training the rules name, each once, for `check`.
    pub fn trainings(&self) -> BTreeSet<&TrainingRef> {
        self.assign.iter().map(|r| &r.training).collect()
    }

    /// Every offer event the rules name, each once, for `check`.
    pub fn offer_events(&self) -> BTreeSet<&OfferEventRef> {
        self.enrol.iter().map(|r| &r.offer_event).collect()
    }

    /// Who each rule matches on `today`, by rule name, and the people an expression failed for.
    /// An assign rule with `from_days_after_start = N` matches only once the person's start
    /// date is at least N days past (someone without a start date is taken to have started).
    pub fn evaluate<'a>(
        &self,
        people: impl IntoIterator<Item = &'a DesiredUser>,
        today: NaiveDate,
    ) -> Evaluation {
        let scope = condition::root_scope();
        let mut evaluation = Evaluation::default();
        for person in people {
            let mut test = |name: &str, when: &Condition, started: bool| {
                let matched = started
                    && when
                        .matches(&scope, person, &self.custom_fields, today)
                        .map_err(|error| {
                            evaluation.errors.push(RuleError {
                                rule: name.to_owned(),
                                person: person.employee_ref.clone(),
                                message: error,
                            });
                        })
                        .unwrap_or(false);
                if matched {
                    evaluation
                        .matches
                        .entry(name.to_owned())
                        .or_default()
                        .insert(person.employee_ref.clone());
                }
            };
            for rule in &self.assign {
                let started = match (rule.from_days_after_start, person.start_date) {
                    (Some(days), Some(start)) => (today - start).num_days() >= i64::from(days),
                    _ => true,
                };
                test(&rule.name, &rule.when, started);
            }
            for rule in &self.enrol {
                test(&rule.name, &rule.when, true);
            }
        }
        evaluation
    }
}

/// Who matches which rule now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Rule name → the people it matches.
    pub matches: BTreeMap<String, BTreeSet<EmployeeRef>>,
    /// Expressions that failed for a person: that person is not matched by that rule this run.
    pub errors: Vec<RuleError>,
}

/// A rule that could not be evaluated for one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleError {
    pub rule: String,
    pub person: EmployeeRef,
    pub message: String,
}

fn when(
    key: &str,
    name: &str,
    source: Option<&str>,
    custom_fields: &BTreeSet<String>,
) -> Result<Condition, String> {
    match source {
        None => Ok(Condition::always()),
        Some(source) => Condition::compile(source, custom_fields)
            .map_err(|error| format!("{key}.when ({name}): {error}")),
    }
}

/// A stable hash of a rule's definition (FNV-1a, 64 bits, hex): the same text gives the same
/// version on every build and platform, unlike `std`'s hasher.
fn version(parts: &[&str]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain([0x1f]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests;
