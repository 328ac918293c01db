//! Mapping rules against hand-made records: one table per concern.

use rstest::rstest;

use super::*;
use crate::domain::{CategoryRef, CategoryValue, GroupRef, Role};
use crate::sync::source::SourceRecord;

/// The annotated `[mapping]` example from the [`settings`] module docs, so the example an
/// operator copies is the one these tests run.
fn example_toml() -> String {
    let docs = include_str!("settings.rs");
    let mut toml = String::new();
    let mut inside = false;
    for line in docs.lines().filter_map(|line| line.strip_prefix("//!")) {
        match line.trim() {
            "```toml" => inside = true,
            "```" => inside = false,
            _ if inside => {
                toml.push_str(line.strip_prefix(' ').unwrap_or(line));
                toml.push('\n');
            }
            _ => {}
        }
    }
    assert!(
        toml.contains("[mapping]"),
        "the settings docs lost their example"
    );
    toml
}

fn settings_from(toml: &str) -> Result<MappingSettings, config::ConfigError> {
    config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .build()?
        .get("mapping")
}

fn rules_from(toml: &str) -> MappingRules {
    let settings = settings_from(toml).unwrap_or_else(|error| panic!("settings: {error}"));
    MappingRules::from_settings(&settings).unwrap_or_else(|error| panic!("rules: {error}"))
}

fn rules() -> MappingRules {
    rules_from(&example_toml())
}

fn record(line: u64, cells: &[(&str, &str)]) -> SourceRecord {
    SourceRecord {
        location: Location::Line { line },
        fields: cells
            .iter()
            .map(|(column, value)| ((*column).to_owned(), (*value).to_owned()))
            .collect(),
    }
}

/// Cells to set on a test record, as (column, value).
type Changes = &'static [(&'static str, &'static str)];

/// Lotte, complete, with `changes` applied on top.
fn lotte(line: u64, changes: &[(&str, &str)]) -> SourceRecord {
    let mut record = record(
        line,
        &[
            ("employee_number", "000123"),
            ("first_name", "Lotte"),
            ("middle_name", ""),
            ("last_name", "de Vries"),
            ("email", " Lotte.deVries@Example.com "),
            ("department", "Sales"),
            ("location", "Amsterdam"),
            ("contract_type", "Permanent"),
            ("company_car", "ja"),
            ("start_date", "01-03-2019"),
            ("end_date", ""),
            ("language", "nl"),
        ],
    );
    for (column, value) in changes {
        record
            .fields
            .insert((*column).to_owned(), (*value).to_owned());
    }
    record
}

fn data(records: Vec<SourceRecord>) -> SourceData {
    SourceData {
        records,
        ..SourceData::default()
    }
}

fn employee(raw: &str) -> EmployeeRef {
    EmployeeRef::parse(raw).unwrap_or_else(|error| panic!("{error}"))
}

fn group(raw: &str) -> GroupRef {
    GroupRef::parse(raw).unwrap_or_else(|error| panic!("{error}"))
}

fn category(raw: &str) -> CategoryRef {
    CategoryRef::parse(raw).unwrap_or_else(|error| panic!("{error}"))
}

fn date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).unwrap_or_else(|| panic!("bad test date"))
}

#[test]
fn a_complete_record_maps_to_the_whole_user() {
    let mapped = rules().map(data(vec![lotte(2, &[])]));
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    assert!(mapped.held.is_empty());
    let expected = DesiredUser {
        employee_ref: employee("000123"),
        name: "Lotte de Vries".to_owned(),
        email: Email::parse("lotte.devries@example.com").unwrap_or_else(|e| panic!("{e}")),
        roles: Roles::from([Role::Participant]),
        language: Some(Language::Nl),
        categories: Categories::from([
            (
                category("department"),
                CategoryValue::String("Sales".to_owned()),
            ),
            (
                category("contract-type"),
                CategoryValue::Choice("Permanent".to_owned()),
            ),
            (category("company-car"), CategoryValue::Boolean(true)),
            (
                category("employed-since"),
                CategoryValue::Date(date(2019, 3, 1)),
            ),
        ]),
        groups: Groups::from([
            group("all-employees"),
            group("dept-sales"),
            group("loc-amsterdam"),
        ]),
        start_date: Some(date(2019, 3, 1)),
        end_date: None,
    };
    assert_eq!(mapped.people.get(&employee("000123")), Some(&expected));
}

#[test]
fn the_example_rules_require_every_column_they_read_once() {
    assert_eq!(
        rules().required_columns(),
        [
            "employee_number",
            "email",
            "first_name",
            "middle_name",
            "last_name",
            "language",
            "start_date",
            "end_date",
            "department",
            "contract_type",
            "company_car",
            "location",
        ]
    );
    assert_eq!(rules().ref_column(), "employee_number");
    let rules = rules();
    let categories: Vec<(&str, &str)> = rules
        .categories()
        .iter()
        .map(|rule| (rule.category_ref().as_str(), rule.kind().type_name()))
        .collect();
    assert_eq!(
        categories,
        [
            ("department", "string"),
            ("contract-type", "choice"),
            ("company-car", "boolean"),
            ("employed-since", "date"),
        ]
    );
}

/// Settings with only the required keys.
const MINIMAL: &str = "[mapping]\nref = \"nr\"\nname = \"{first}\"\nemail = \"email\"\n";

#[rstest]
#[case::name_without_placeholder(
    "[mapping]\nref = \"nr\"\nname = \"Someone\"\nemail = \"email\"\n",
    "mapping.name"
)]
#[case::name_unclosed(
    "[mapping]\nref = \"nr\"\nname = \"{first\"\nemail = \"email\"\n",
    "mapping.name"
)]
#[case::empty_ref_column(
    "[mapping]\nref = \" \"\nname = \"{first}\"\nemail = \"email\"\n",
    "mapping.ref"
)]
#[case::bad_role(&format!("{MINIMAL}roles = [\"PARTICIPANT\", \"BOSS\"]\n"), "mapping.roles[1]")]
#[case::no_roles(&format!("{MINIMAL}roles = []\n"), "mapping.roles")]
#[case::bad_language_default(&format!("{MINIMAL}language = {{ default = \"fr\" }}\n"), "mapping.language.default")]
#[case::empty_language(&format!("{MINIMAL}language = {{}}\n"), "mapping.language")]
#[case::bad_start_date_format(&format!("{MINIMAL}start_date = {{ column = \"s\", format = \"dd-mm-yy\" }}\n"), "mapping.start_date.format")]
#[case::bad_category_date_format(&format!(
    "{MINIMAL}[[mapping.categories]]\nref = \"a\"\ncolumn = \"a\"\ntype = \"date\"\nformat = \"someday\"\n"
), "mapping.categories[0].format")]
#[case::format_on_a_string_category(&format!(
    "{MINIMAL}[[mapping.categories]]\nref = \"a\"\ncolumn = \"a\"\ntype = \"string\"\nformat = \"iso\"\n"
), "mapping.categories[0].format")]
#[case::category_mapped_twice(&format!(
    "{MINIMAL}[[mapping.categories]]\nref = \"a\"\ncolumn = \"a\"\ntype = \"string\"\n[[mapping.categories]]\nref = \"a\"\ncolumn = \"b\"\ntype = \"choice\"\n"
), "mapping.categories[1].ref")]
#[case::unknown_filter(&format!(
    "{MINIMAL}[mapping.groups]\ntemplates = [\"x-{{a|slug}}\", \"dept-{{department|slugify}}\"]\n"
), "mapping.groups.templates[1]")]
#[case::bare_template(&format!("{MINIMAL}[mapping.groups]\ntemplates = [\"{{department|slug}}\"]\n"), "mapping.groups.templates[0]")]
#[case::bad_static_group(&format!("{MINIMAL}[mapping.groups]\nstatic = [\"ok\", \" \"]\n"), "mapping.groups.static[1]")]
fn bad_settings_are_refused_naming_the_key(#[case] toml: &str, #[case] key: &str) {
    let settings = settings_from(toml).unwrap_or_else(|error| panic!("{error}"));
    match MappingRules::from_settings(&settings) {
        Ok(_) => panic!("accepted"),
        Err(error) => assert_eq!(error.key, key, "{error}"),
    }
}

#[test]
fn minimal_settings_are_accepted() {
    assert!(
        MappingRules::from_settings(&settings_from(MINIMAL).unwrap_or_else(|e| panic!("{e}")))
            .is_ok()
    );
}

#[rstest]
#[case::typo_at_the_top("[mapping]\nref = \"nr\"\nname = \"{a}\"\nemail = \"e\"\nemial = \"e\"\n")]
#[case::typo_in_groups(
    "[mapping]\nref = \"nr\"\nname = \"{a}\"\nemail = \"e\"\n[mapping.groups]\nstatics = [\"x\"]\n"
)]
#[case::unknown_category_type(
    "[mapping]\nref = \"nr\"\nname = \"{a}\"\nemail = \"e\"\n[[mapping.categories]]\nref = \"a\"\ncolumn = \"a\"\ntype = \"number\"\n"
)]
#[case::missing_email("[mapping]\nref = \"nr\"\nname = \"{a}\"\n")]
fn unknown_and_mistyped_keys_are_refused_when_reading(#[case] toml: &str) {
    assert!(settings_from(toml).is_err());
}

#[rstest]
#[case::missing_employee_number(&[("employee_number", "  ")], "employee_number", None, "employee number is empty")]
#[case::invalid_email(&[("email", "lotte.example.com")], "email", Some("000123"), "no '@'")]
#[case::empty_email(&[("email", "")], "email", Some("000123"), "e-mail address is empty")]
#[case::bad_boolean(&[("company_car", "misschien")], "company_car", Some("000123"), "'misschien' is not a yes/no value")]
#[case::bad_category_date(&[("start_date", "2019-03-01")], "start_date", Some("000123"), "not a date in the format dd-mm-yyyy")]
#[case::bad_end_date(&[("end_date", "31-02-2025")], "end_date", Some("000123"), "not a day in the calendar")]
#[case::invalid_language(&[("language", "Frans")], "language", Some("000123"), "not a language Pluvo supports")]
#[case::empty_name(&[("first_name", ""), ("last_name", " ")], "first_name, middle_name, last_name", Some("000123"), "the name is empty")]
#[case::control_character_in_ref(&[("employee_number", "12\u{7}3")], "employee_number", None, "control character")]
fn bad_rows_are_rejected_naming_row_field_and_reason(
    #[case] changes: Changes,
    #[case] field: &str,
    #[case] employee_ref: Option<&str>,
    #[case] reason: &str,
) {
    let mapped = rules().map(data(vec![lotte(7, changes)]));
    assert!(mapped.people.is_empty());
    let [error] = mapped.rejected.as_slice() else {
        panic!("{:?}", mapped.rejected)
    };
    assert_eq!(error.location, Location::Line { line: 7 });
    assert_eq!(error.field.as_deref(), Some(field));
    assert_eq!(error.employee_ref.as_deref(), employee_ref);
    assert!(error.reason.contains(reason), "{}", error.reason);
    let held: Vec<&str> = mapped.held.iter().map(EmployeeRef::as_str).collect();
    assert_eq!(held, employee_ref.into_iter().collect::<Vec<_>>());
}

#[rstest]
#[case::string_kept_trimmed("department", "  Finance ", Some(CategoryValue::String("Finance".to_owned())))]
#[case::choice_kept_as_text("contract_type", " Intern", Some(CategoryValue::Choice("Intern".to_owned())))]
#[case::boolean_nee("company_car", "Nee", Some(CategoryValue::Boolean(false)))]
#[case::boolean_1("company_car", "1", Some(CategoryValue::Boolean(true)))]
#[case::date("start_date", "1-2-2020", Some(CategoryValue::Date(date(2020, 2, 1))))]
#[case::blank_string("department", " ", None)]
#[case::blank_boolean("company_car", "", None)]
#[case::blank_date("start_date", "", None)]
fn categories_are_typed_and_blank_cells_omitted(
    #[case] column: &str,
    #[case] cell: &str,
    #[case] expected: Option<CategoryValue>,
) {
    let category_ref = rules()
        .categories()
        .iter()
        .find(|rule| rule.column() == column)
        .map(|rule| rule.category_ref().clone())
        .unwrap_or_else(|| panic!("no rule reads {column}"));
    let mapped = rules().map(data(vec![lotte(2, &[(column, cell)])]));
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    let user = &mapped.people[&employee("000123")];
    assert_eq!(user.categories.get(&category_ref), expected.as_ref());
}

#[rstest]
#[case::no_middle_name("Lotte", "", "de Vries", "Lotte de Vries")]
#[case::middle_name("Jan", "van", "Dijk", "Jan van Dijk")]
#[case::padded_cells("  Jan ", "  ", " Dijk  ", "Jan Dijk")]
#[case::only_a_last_name("", "", "Dijk", "Dijk")]
#[case::inner_runs("Anne  Marie", "", "Jansen", "Anne Marie Jansen")]
fn names_collapse_blank_parts_and_spaces(
    #[case] first: &str,
    #[case] middle: &str,
    #[case] last: &str,
    #[case] expected: &str,
) {
    let record = lotte(
        2,
        &[
            ("first_name", first),
            ("middle_name", middle),
            ("last_name", last),
        ],
    );
    let mapped = rules().map(data(vec![record]));
    assert_eq!(mapped.people[&employee("000123")].name, expected);
}

/// Rules that take the language from the column `language`, with NL as the default.
fn language_with_column() -> MappingRules {
    rules()
}

/// Rules with only a default language: the cell is not read.
fn language_default_only() -> MappingRules {
    rules_from(
        "[mapping]\nref = \"employee_number\"\nname = \"{first_name}\"\nemail = \"email\"\nlanguage = { default = \"EN\" }\n",
    )
}

/// Rules without a language rule: Pluvo decides.
fn language_absent() -> MappingRules {
    rules_from("[mapping]\nref = \"employee_number\"\nname = \"{first_name}\"\nemail = \"email\"\n")
}

#[rstest]
#[case::column(language_with_column(), "en_GB", Some(Language::En))]
#[case::blank_cell_takes_the_default(language_with_column(), " ", Some(Language::Nl))]
#[case::default_only_ignores_the_cell(language_default_only(), "de", Some(Language::En))]
#[case::no_rule_leaves_it_to_pluvo(language_absent(), "de", None)]
fn language_comes_from_the_column_or_the_default(
    #[case] rules: MappingRules,
    #[case] cell: &str,
    #[case] expected: Option<Language>,
) {
    let mapped = rules.map(data(vec![lotte(2, &[("language", cell)])]));
    assert_eq!(mapped.people[&employee("000123")].language, expected);
}

#[rstest]
#[case::both_templates(&[
    ("department", "Research & Development"),
    ("location", "Den Haag"),
], &["all-employees", "dept-research-development", "loc-den-haag"])]
#[case::accents_folded(&[("location", "Zürich-Oost")], &["all-employees", "dept-sales", "loc-zurich-oost"])]
#[case::blank_cell_no_group(&[("location", "")], &["all-employees", "dept-sales"])]
#[case::nothing_left_after_slug_no_group(&[("department", "—")], &["all-employees", "loc-amsterdam"])]
fn groups_come_from_the_static_list_and_templates(
    #[case] changes: Changes,
    #[case] expected: &[&str],
) {
    let mapped = rules().map(data(vec![lotte(2, changes)]));
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    let groups: Vec<&str> = mapped.people[&employee("000123")]
        .groups
        .iter()
        .map(GroupRef::as_str)
        .collect();
    assert_eq!(groups, expected);
}

#[rstest]
#[case::static_list("all-employees", true)]
#[case::department_template("dept-sales", true)]
#[case::slug_with_dashes("dept-research-development", true)]
#[case::location_template("loc-utrecht", true)]
#[case::prefix_only("dept-", false)]
#[case::not_a_slug("dept-Sales", false)]
#[case::made_by_hand("managers", false)]
#[case::similar_prefix("department-sales", false)]
fn managed_groups_are_exactly_those_the_rules_can_produce(
    #[case] raw: &str,
    #[case] expected: bool,
) {
    let rules = rules();
    assert_eq!(rules.is_managed(&group(raw)), expected);
}

#[test]
fn the_static_groups_are_the_configured_ones() {
    let rules = rules();
    let statics: Vec<&str> = rules.static_groups().iter().map(GroupRef::as_str).collect();
    assert_eq!(statics, ["all-employees"]);
}

#[test]
fn shared_employee_numbers_hold_everyone_involved() {
    let records = vec![
        lotte(2, &[]),
        lotte(
            3,
            &[("employee_number", "000456"), ("email", "jan@example.com")],
        ),
        lotte(5, &[("email", "other@example.com")]),
        lotte(9, &[("company_car", "perhaps")]),
    ];
    let mapped = rules().map(data(records));
    assert_eq!(
        mapped
            .people
            .keys()
            .map(EmployeeRef::as_str)
            .collect::<Vec<_>>(),
        ["000456"]
    );
    assert_eq!(
        mapped
            .held
            .iter()
            .map(EmployeeRef::as_str)
            .collect::<Vec<_>>(),
        ["000123"]
    );
    let reported: Vec<(String, &str)> = mapped
        .rejected
        .iter()
        .map(|error| (error.location.to_string(), error.reason.as_str()))
        .collect();
    assert_eq!(
        reported,
        [
            (
                "line 2".to_owned(),
                "employee number 000123 is also on line 5 and line 9; none of these rows is applied until only one remains"
            ),
            (
                "line 5".to_owned(),
                "employee number 000123 is also on line 2 and line 9; none of these rows is applied until only one remains"
            ),
            (
                "line 9".to_owned(),
                "employee number 000123 is also on line 2 and line 5; none of these rows is applied until only one remains"
            ),
        ]
    );
}

#[test]
fn shared_email_addresses_hold_both_people() {
    let records = vec![
        lotte(2, &[]),
        lotte(
            3,
            &[
                ("employee_number", "000456"),
                ("email", "LOTTE.DEVRIES@example.com"),
            ],
        ),
        lotte(
            4,
            &[("employee_number", "000789"), ("email", "jan@example.com")],
        ),
    ];
    let mapped = rules().map(data(records));
    assert_eq!(
        mapped
            .people
            .keys()
            .map(EmployeeRef::as_str)
            .collect::<Vec<_>>(),
        ["000789"]
    );
    assert_eq!(
        mapped
            .held
            .iter()
            .map(EmployeeRef::as_str)
            .collect::<Vec<_>>(),
        ["000123", "000456"]
    );
    let reported: Vec<(String, Option<&str>, Option<&str>)> = mapped
        .rejected
        .iter()
        .map(|error| {
            (
                error.location.to_string(),
                error.employee_ref.as_deref(),
                error.field.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        reported,
        [
            ("line 2".to_owned(), Some("000123"), Some("email")),
            ("line 3".to_owned(), Some("000456"), Some("email")),
        ]
    );
    assert!(
        mapped.rejected[0]
            .reason
            .contains("employee 000456 (line 3)"),
        "{}",
        mapped.rejected[0].reason
    );
    assert!(
        !mapped.rejected[0].reason.contains("example.com"),
        "no addresses in the journal"
    );
}

#[test]
fn rows_the_source_could_not_read_are_carried_and_held() {
    let unreadable = |line: u64, employee_ref: Option<&str>| RecordError {
        location: Location::Line { line },
        employee_ref: employee_ref.map(str::to_owned),
        field: None,
        reason: "wrong number of columns: expected 12, found 4".to_owned(),
        structural: false,
    };
    let source = SourceData {
        records: vec![
            lotte(2, &[]),
            lotte(
                3,
                &[("employee_number", "000456"), ("email", "jan@example.com")],
            ),
        ],
        rejected: vec![unreadable(6, Some("000456")), unreadable(4, None)],
        fingerprint: "abc".to_owned(),
    };
    let mapped = rules().map(source);
    assert_eq!(
        mapped
            .people
            .keys()
            .map(EmployeeRef::as_str)
            .collect::<Vec<_>>(),
        ["000123"]
    );
    assert_eq!(
        mapped
            .held
            .iter()
            .map(EmployeeRef::as_str)
            .collect::<Vec<_>>(),
        ["000456"]
    );
    let lines: Vec<String> = mapped
        .rejected
        .iter()
        .map(|e| e.location.to_string())
        .collect();
    assert_eq!(lines, ["line 3", "line 4", "line 6"], "sorted by line");
    assert!(
        mapped.rejected[0]
            .reason
            .contains("also on line 6, which could not be read")
    );
}

#[test]
fn roles_default_to_participant_and_can_be_set() {
    let custom = rules_from(
        "[mapping]\nref = \"employee_number\"\nname = \"{first_name}\"\nemail = \"email\"\nroles = [\"participant\", \"TRAINER\"]\n",
    );
    let mapped = custom.map(data(vec![lotte(2, &[])]));
    assert_eq!(
        mapped.people[&employee("000123")].roles,
        Roles::from([Role::Participant, Role::Trainer])
    );
    let mapped = rules().map(data(vec![lotte(2, &[])]));
    assert_eq!(
        mapped.people[&employee("000123")].roles,
        Roles::from([Role::Participant])
    );
}

/// 100k synthetic people, some of them broken on purpose: every person ends up applied or held,
/// never both and never lost, and every broken row is reported once.
#[test]
fn a_large_export_maps_every_person_exactly_once() {
    const PEOPLE: usize = 100_000;
    let departments = ["Sales", "Finance", "Engineering", "HR"];
    let mut records = Vec::with_capacity(PEOPLE + PEOPLE / 1000);
    let mut expected_rejected = 0;
    let mut expected_held = 0;
    for index in 0..PEOPLE {
        let number = format!("{index:07}");
        let email = format!("person{index}@example.com");
        let mut changes = vec![
            ("employee_number", number.as_str()),
            ("email", email.as_str()),
            ("department", departments[index % departments.len()]),
        ];
        // Every 997th row has a bad date; every 1000th number appears twice.
        if index % 997 == 0 {
            changes.push(("start_date", "2020-01-01"));
            expected_rejected += 1;
        }
        let line = u64::try_from(index).unwrap_or(u64::MAX) + 2;
        records.push(lotte(line, &changes));
        if index % 997 == 0 || index % 1000 == 0 {
            expected_held += 1;
        }
        if index % 1000 == 0 {
            let duplicate_email = format!("twin{index}@example.com");
            records.push(lotte(
                line + 1_000_000,
                &[
                    ("employee_number", number.as_str()),
                    ("email", duplicate_email.as_str()),
                ],
            ));
            // Both rows of the pair are reported; a pair that also had a bad date is one
            // report per row all the same.
            expected_rejected += if index % 997 == 0 { 1 } else { 2 };
        }
    }
    let total_records = records.len();
    let mapped = rules().map(data(records));

    assert_eq!(mapped.people.len() + mapped.held.len(), PEOPLE);
    assert!(
        mapped
            .people
            .keys()
            .all(|employee_ref| !mapped.held.contains(employee_ref))
    );
    assert_eq!(mapped.rejected.len(), expected_rejected);
    assert_eq!(mapped.held.len(), expected_held);
    assert!(mapped.rejected.len() < total_records);
    assert!(
        mapped
            .rejected
            .windows(2)
            .all(|pair| pair[0].location <= pair[1].location)
    );
    let groups: BTreeSet<&GroupRef> = mapped
        .people
        .values()
        .flat_map(|user| &user.groups)
        .collect();
    assert_eq!(
        groups.len(),
        1 + departments.len() + 1,
        "all-employees, four departments, one location"
    );
    assert!(groups.iter().all(|group| rules().is_managed(group)));
}

/// `config/example-export.csv`, read by the CSV source as `rules` ask.
async fn read_example_export(rules: &MappingRules) -> SourceData {
    use crate::sync::source::Source;
    use crate::sync::source::csv::{CsvSettings, CsvSource};

    CsvSource::new(CsvSettings {
        path: concat!(env!("CARGO_MANIFEST_DIR"), "/config/example-export.csv").into(),
        delimiter: None,
        encoding: None,
    })
    .with_ref_column(rules.ref_column())
    .read(&rules.required_columns())
    .await
    .unwrap_or_else(|error| panic!("{error}"))
}

/// The shipped example export, read by the CSV source and mapped by the documented example.
#[tokio::test]
async fn the_example_export_maps_cleanly_with_the_example_rules() {
    let rules = rules();
    let data = read_example_export(&rules).await;
    assert!(data.rejected.is_empty(), "{:?}", data.rejected);
    let mapped = rules.map(data);
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    assert_eq!(mapped.people.len(), 12);
    let lotte = &mapped.people[&employee("000123")];
    assert_eq!(lotte.name, "Lotte de Vries");
    assert_eq!(lotte.email.as_str(), "lotte.devries@example.com");
    let zoe = &mapped.people[&employee("000131")];
    assert_eq!(zoe.name, "Zoë Bakker", "UTF-8 with BOM decoded");
    assert!(zoe.groups.contains(&group("loc-rotterdam")));
}

/// The annotated config an operator copies (`config/pluvo-sync.example.toml`) must map the
/// shipped export without renaming anyone: a template without `{middle_name}` turns "Lotte de
/// Vries" into "Lotte Vries" for every Dutch employee with a tussenvoegsel.
#[tokio::test]
async fn the_annotated_example_config_keeps_middle_names() {
    let root = env!("CARGO_MANIFEST_DIR");
    let settings = crate::settings::load(
        Some(&std::path::Path::new(root).join("config/pluvo-sync.example.toml")),
        Some(HashMap::new()),
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let rules =
        MappingRules::from_settings(&settings.mapping).unwrap_or_else(|error| panic!("{error}"));
    let mapped = rules.map(read_example_export(&rules).await);
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
    assert_eq!(mapped.people[&employee("000123")].name, "Lotte de Vries");
    assert_eq!(
        mapped.people[&employee("000124")].name,
        "Thijs van den Berg"
    );
}

/// Values Pluvo's model refuses are rejected while mapping, naming the row and the field, and a
/// huge value is not quoted back (it would land in the journal and the logs).
#[rstest]
#[case::a_10000_character_name(
    "first_name",
    "A".repeat(10_000),
    "first_name, middle_name, last_name",
    "the name is 10009 characters long; Pluvo takes at most 255"
)]
#[case::a_50_mb_string_field(
    "department",
    "x".repeat(50 * 1024 * 1024),
    "department",
    "the value is 52428800 characters long; Pluvo takes at most 255"
)]
#[case::a_long_choice(
    "contract_type",
    "A".repeat(10_000),
    "contract_type",
    "the value is 10000 characters long"
)]
#[case::an_accent_before_the_at(
    "email",
    "jörg.müller@example.com".to_owned(),
    "email",
    "only ASCII letters, digits"
)]
#[case::a_huge_address(
    "email",
    format!("{}@example.com", "a".repeat(5_000)),
    "email",
    "the e-mail address is 5012 characters long; Pluvo takes at most 320"
)]
#[case::a_domain_that_is_no_host_name(
    "email",
    "lotte@ex_ample.com".to_owned(),
    "email",
    "the domain after the '@'"
)]
fn values_pluvo_would_refuse_are_rejected_naming_row_and_field(
    #[case] column: &str,
    #[case] value: String,
    #[case] field: &str,
    #[case] reason: &str,
) {
    let mapped = rules().map(data(vec![lotte(7, &[(column, &value)])]));
    assert!(mapped.people.is_empty());
    let [error] = mapped.rejected.as_slice() else {
        panic!("{} rejected", mapped.rejected.len())
    };
    assert_eq!(error.location, Location::Line { line: 7 });
    assert_eq!(error.field.as_deref(), Some(field));
    assert_eq!(error.employee_ref.as_deref(), Some("000123"));
    assert!(error.reason.contains(reason), "{:.300}", error.reason);
    assert!(error.reason.len() < 400, "the value is not quoted back");
}

#[test]
fn an_internationalised_domain_is_pluvos_to_accept() {
    // One that converts to punycode: Pluvo decides, not the mapping.
    let mapped = rules().map(data(vec![lotte(7, &[("email", "Lotte@Bücher.example")])]));
    assert!(mapped.rejected.is_empty(), "{:?}", mapped.rejected);
}
