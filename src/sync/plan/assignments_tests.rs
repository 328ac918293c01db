//! Named cases of rule planning against the ledger: what an admin expects each to do.

use rstest::rstest;

use super::*;
use crate::sync::rules::{AssignSettings, EnrolSettings};

fn p(raw: &str) -> EmployeeRef {
    EmployeeRef::parse(raw).unwrap()
}

fn training(role: TrainingRole) -> Target {
    Target::Training {
        training: TrainingRef::parse("safety-2024").unwrap(),
        role,
    }
}

fn event() -> Target {
    Target::OfferEvent {
        offer_event: OfferEventRef::parse("intro-day").unwrap(),
    }
}

fn rules(remove: RemovePolicy) -> Rules {
    let assign = |name: &str| AssignSettings {
        name: name.into(),
        training: "safety-2024".into(),
        role: "PARTICIPANT".into(),
        when: None,
        from_days_after_start: None,
        remove,
        due_days: None,
    };
    let enrol = EnrolSettings {
        name: "intro".into(),
        offer_event: "intro-day".into(),
        when: None,
    };
    Rules::from_settings(
        &[assign("ops"), assign("support")],
        &[enrol],
        BTreeSet::new(),
    )
    .unwrap()
}

fn grant(rule: &str, linked: bool, ended: bool) -> Grant {
    Grant {
        rule: rule.into(),
        linked_via_object: linked,
        ended,
    }
}

/// (rule, adds, removes, left linked)
type Expected = Vec<(
    &'static str,
    Vec<&'static str>,
    Vec<&'static str>,
    Vec<&'static str>,
)>;

#[rstest]
#[case::match_adds_the_training(
    RemovePolicy::Keep, vec![("ops", vec!["1"])], &[], &["1"],
    vec![("ops", vec!["1"], vec![], vec![])])]
#[case::already_granted_is_not_added_again(
    RemovePolicy::Keep, vec![("ops", vec!["1"])], &[("1", "ops", false, false)], &["1"],
    vec![])]
#[case::stop_matching_with_keep_removes_nothing(
    RemovePolicy::Keep, vec![], &[("1", "ops", false, false)], &["1"],
    vec![])]
#[case::stop_matching_with_when_unmatched_removes(
    RemovePolicy::WhenUnmatched, vec![], &[("1", "ops", false, false)], &["1"],
    vec![("ops", vec![], vec!["1"], vec![])])]
#[case::two_rules_granting_the_same_training_add_once(
    RemovePolicy::Keep, vec![("ops", vec!["1"]), ("support", vec!["1"])], &[], &["1"],
    vec![("ops", vec!["1"], vec![], vec![])])]
#[case::another_rule_still_granting_blocks_removal(
    RemovePolicy::WhenUnmatched, vec![("support", vec!["1"])], &[("1", "ops", false, false)], &["1"],
    vec![])]
#[case::only_what_this_rule_made_is_removed(
    RemovePolicy::WhenUnmatched, vec![], &[("1", "by-hand-rule-gone", false, false)], &["1"],
    vec![])]
#[case::linked_via_group_is_left_alone(
    RemovePolicy::WhenUnmatched, vec![], &[("1", "ops", true, false)], &["1"],
    vec![("ops", vec![], vec![], vec!["1"])])]
#[case::leaver_keeps_their_trainings(
    RemovePolicy::WhenUnmatched, vec![], &[("1", "ops", false, false)], &[],
    vec![])]
#[case::rehire_is_not_re_added_to_what_they_still_have(
    RemovePolicy::WhenUnmatched, vec![("ops", vec!["1"])], &[("1", "ops", false, false)], &["1"],
    vec![])]
#[case::removed_earlier_and_matching_again_is_added_again(
    RemovePolicy::WhenUnmatched, vec![("ops", vec!["1"])], &[("1", "ops", false, true)], &["1"],
    vec![("ops", vec!["1"], vec![], vec![])])]
fn assignment_cases(
    #[case] remove: RemovePolicy,
    #[case] matches: Vec<(&str, Vec<&str>)>,
    #[case] grants: &[(&str, &str, bool, bool)],
    #[case] synced: &[&str],
    #[case] expected: Expected,
) {
    let evaluation = Evaluation {
        matches: matches
            .iter()
            .map(|(rule, people)| (rule.to_string(), people.iter().map(|x| p(x)).collect()))
            .collect(),
        errors: vec![],
    };
    let ledger: Ledger = grants
        .iter()
        .map(|(person, rule, linked, ended)| {
            (
                (p(person), training(TrainingRole::Participant)),
                grant(rule, *linked, *ended),
            )
        })
        .collect();
    let synced = synced.iter().map(|x| p(x)).collect();
    let plan = plan_assignments(
        &rules(remove),
        &evaluation,
        &ledger,
        &synced,
        RemovalGuard::default(),
    );
    let names = |v: &[EmployeeRef]| v.iter().map(|x| x.as_str().to_owned()).collect::<Vec<_>>();
    let got: Vec<_> = plan
        .rules
        .iter()
        .map(|o| {
            (
                o.rule.clone(),
                names(&o.add),
                names(&o.remove),
                names(&o.left_linked),
            )
        })
        .collect();
    let expected: Vec<_> = expected
        .into_iter()
        .map(|(r, a, rm, l)| {
            let own = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
            (r.to_owned(), own(a), own(rm), own(l))
        })
        .collect();
    assert_eq!(got, expected);
    assert_eq!(plan.withheld_removals, None);
}

#[rstest]
#[case::first_match_enrols(&[], vec!["1"])]
#[case::enrolled_once_is_not_enrolled_again(&[("1", false)], vec![])]
#[case::not_after_a_cancellation_either(&[("1", true)], vec![])]
fn enrolment_is_add_only_and_once(#[case] grants: &[(&str, bool)], #[case] expected: Vec<&str>) {
    let evaluation = Evaluation {
        matches: BTreeMap::from([("intro".to_owned(), BTreeSet::from([p("1")]))]),
        errors: vec![],
    };
    let ledger: Ledger = grants
        .iter()
        .map(|(person, ended)| ((p(person), event()), grant("intro", false, *ended)))
        .collect();
    let plan = plan_assignments(
        &rules(RemovePolicy::Keep),
        &evaluation,
        &ledger,
        &BTreeSet::from([p("1")]),
        RemovalGuard::default(),
    );
    let adds: Vec<&str> = plan
        .rules
        .iter()
        .filter(|o| o.rule == "intro")
        .flat_map(|o| o.add.iter().map(EmployeeRef::as_str))
        .collect();
    assert_eq!(adds, expected);
}

#[rstest]
#[case::within_the_guard(11, false, 11)]
#[case::over_the_guard_withholds_all(12, false, 0)]
#[case::allowed_once(12, true, 12)]
fn the_removal_guard(#[case] leaving_the_rule: usize, #[case] allow: bool, #[case] removed: usize) {
    // 200 synced: the limit is max(11 people, 5% of 200 = 10) = 11.
    let people: Vec<EmployeeRef> = (0..200).map(|i| p(&format!("{i:03}"))).collect();
    let ledger: Ledger = people[..leaving_the_rule]
        .iter()
        .map(|x| {
            (
                (x.clone(), training(TrainingRole::Participant)),
                grant("ops", false, false),
            )
        })
        .collect();
    let plan = plan_assignments(
        &rules(RemovePolicy::WhenUnmatched),
        &Evaluation::default(),
        &ledger,
        &people.iter().cloned().collect(),
        RemovalGuard {
            max_people: 11,
            max_percent: 5.0,
            allow_mass_removal: allow,
        },
    );
    let total: usize = plan.rules.iter().map(|o| o.remove.len()).sum();
    assert_eq!(total, removed);
    assert_eq!(plan.withheld_removals.is_some(), removed == 0);
}
