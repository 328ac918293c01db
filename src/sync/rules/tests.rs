//! Rule loading and evaluation, case by case: what an HR administrator writes and who it hits.

use rstest::rstest;

use super::*;
use crate::domain::*;

fn person(employee: &str, department: &str, start: Option<&str>) -> DesiredUser {
    DesiredUser {
        employee_ref: EmployeeRef::parse(employee).unwrap(),
        name: format!("Person {employee}"),
        email: Email::parse(&format!("p{employee}@example.com")).unwrap(),
        roles: Roles::from([Role::Participant]),
        language: Some(Language::Nl),
        categories: Categories::from([(
            CategoryRef::parse("department").unwrap(),
            CategoryValue::String(department.into()),
        )]),
        groups: Groups::from([GroupRef::parse("all-employees").unwrap()]),
        start_date: start.map(date),
        end_date: None,
    }
}

fn date(raw: &str) -> NaiveDate {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap()
}

fn fields() -> BTreeSet<String> {
    BTreeSet::from(["department".to_owned(), "cost-centre".to_owned()])
}

fn assign(name: &str, when: Option<&str>) -> AssignSettings {
    AssignSettings {
        name: name.into(),
        training: "safety-2024".into(),
        role: "PARTICIPANT".into(),
        when: when.map(str::to_owned),
        from_days_after_start: None,
        remove: RemovePolicy::Keep,
        due_days: None,
    }
}

fn matched(rules: &Rules, people: &[DesiredUser], today: &str) -> Vec<String> {
    let evaluation = rules.evaluate(people, date(today));
    assert_eq!(evaluation.errors, vec![]);
    evaluation
        .matches
        .get("r")
        .map(|set| set.iter().map(|p| p.as_str().to_owned()).collect())
        .unwrap_or_default()
}

#[rstest]
#[case::no_when_matches_everyone_synced(None, &["1", "2", "3"])]
#[case::custom_field_in_a_list(Some(r#"department in ["Operations", "Support"]"#), &["1", "2"])]
#[case::custom_field_through_fields_map(Some(r#"fields["department"] == "Sales""#), &["3"])]
#[case::groups_and_roles(Some(r#""all-employees" in groups && "PARTICIPANT" in roles"#), &["1", "2", "3"])]
#[case::days_since_start(Some("days_since_start <= 30"), &["2"])]
#[case::unset_custom_field_is_null(Some(r#"fields["cost-centre"] == null && ref == "1""#), &["1"])]
fn when_selects_by_mapped_hr_fields(#[case] when: Option<&str>, #[case] expected: &[&str]) {
    let rules = Rules::from_settings(&[assign("r", when)], &[], fields()).unwrap();
    let people = [
        person("1", "Operations", Some("2020-01-01")),
        person("2", "Support", Some("2026-11-01")),
        person("3", "Sales", Some("2019-05-01")),
    ];
    assert_eq!(matched(&rules, &people, "2026-11-23"), expected);
}

#[rstest]
#[case::before_the_offset("2026-11-20", &[] as &[&str])]
#[case::on_the_offset_day("2026-11-24", &["1"])]
#[case::without_a_start_date_counts_as_started("2026-11-01", &["2"])]
fn start_date_offset(#[case] today: &str, #[case] expected: &[&str]) {
    let mut rule = assign("r", None);
    rule.from_days_after_start = Some(7);
    let rules = Rules::from_settings(&[rule], &[], fields()).unwrap();
    let people = [
        person("1", "Sales", Some("2026-11-17")),
        person("2", "Sales", None),
    ];
    let people: Vec<_> = if today == "2026-11-01" {
        people[1..].to_vec()
    } else {
        people[..1].to_vec()
    };
    assert_eq!(matched(&rules, &people, today), expected);
}

#[rstest]
#[case::syntax_error_names_rule_and_position(
    Some("department in [\"Ops\""),
    "assign[0].when (r): syntax error at line 1 column"
)]
#[case::unknown_field_is_named(
    Some("departmnt == \"Ops\""),
    "assign[0].when (r): unknown field(s) 'departmnt'"
)]
fn expression_errors_at_load(#[case] when: Option<&str>, #[case] expected: &str) {
    let problems = Rules::from_settings(&[assign("r", when)], &[], fields()).unwrap_err();
    assert!(problems[0].starts_with(expected), "{problems:?}");
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let mut bad_role = assign("a", None);
    bad_role.role = "CEO".into();
    let duplicate = assign("a", None);
    let enrol = EnrolSettings {
        name: "e".into(),
        offer_event: " ".into(),
        when: Some("name ==".into()),
    };
    let problems = Rules::from_settings(&[bad_role, duplicate], &[enrol], fields()).unwrap_err();
    let keys: Vec<&str> = problems
        .iter()
        .map(|p| p.split(':').next().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "assign[0].role (a)",
            "assign[1].name",
            "enrol[0].offer_event (e)",
            "enrol[0].when (e)"
        ],
        "{problems:?}"
    );
}

#[test]
fn a_non_boolean_result_is_an_error_for_that_person_not_a_match() {
    let rules = Rules::from_settings(&[assign("r", Some("department"))], &[], fields()).unwrap();
    let evaluation = rules.evaluate(&[person("1", "Ops", None)], date("2026-11-23"));
    assert!(evaluation.matches.is_empty());
    assert_eq!(evaluation.errors.len(), 1);
    assert_eq!(evaluation.errors[0].rule, "r");
}

#[test]
fn the_version_changes_with_the_definition_only() {
    let one = Rules::from_settings(&[assign("r", Some("true"))], &[], fields()).unwrap();
    let renamed = Rules::from_settings(&[assign("other", Some("true"))], &[], fields()).unwrap();
    let changed = Rules::from_settings(&[assign("r", Some("false"))], &[], fields()).unwrap();
    assert_eq!(one.assign[0].version, renamed.assign[0].version);
    assert_ne!(one.assign[0].version, changed.assign[0].version);
    assert_eq!(one.assign[0].version.len(), 16);
}
