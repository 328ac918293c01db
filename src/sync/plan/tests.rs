//! Table-driven planning cases: each names a situation an HR administrator would recognise.

use rstest::rstest;

use super::*;
use crate::domain::Categories;
use crate::domain::*;
use crate::sync::mapping::DesiredUser;
use crate::sync::snapshot::SnapshotUser;

fn r(raw: &str) -> EmployeeRef {
    EmployeeRef::parse(raw).unwrap()
}

fn g(raw: &str) -> GroupRef {
    GroupRef::parse(raw).unwrap()
}

fn date(raw: &str) -> NaiveDate {
    NaiveDate::parse_from_str(raw, "%Y-%m-%d").unwrap()
}

const TODAY: &str = "2026-11-23";

/// An employee as the source says, with sensible defaults.
fn desired(employee: &str) -> DesiredUser {
    DesiredUser {
        employee_ref: r(employee),
        name: format!("Person {employee}"),
        email: Email::parse(&format!("p{employee}@example.com")).unwrap(),
        roles: Roles::from([Role::Participant]),
        language: Some(Language::Nl),
        categories: Categories::from([(
            CategoryRef::parse("department").unwrap(),
            CategoryValue::String("Sales".into()),
        )]),
        groups: Groups::from([g("all-employees"), g("dept-sales")]),
        start_date: None,
        end_date: None,
    }
}

/// The snapshot row that `desired(employee)` leaves behind once acknowledged.
fn acked(employee: &str) -> SnapshotUser {
    let d = desired(employee);
    SnapshotUser {
        employee_ref: d.employee_ref,
        pluvo_id: Some(format!("id-{employee}")),
        email: d.email,
        name: d.name,
        roles: d.roles,
        language: d.language,
        archived: false,
        categories: d.categories,
        groups: d.groups,
    }
}

fn managed(group: &GroupRef) -> bool {
    group.as_str() == "all-employees" || group.as_str().starts_with("dept-")
}

/// (ref, user action or "-", categories changed, groups added, groups removed)
type Expected = (
    &'static str,
    &'static str,
    usize,
    Vec<&'static str>,
    Vec<&'static str>,
);

struct Case {
    snapshot: Vec<SnapshotUser>,
    desired: Vec<DesiredUser>,
    held: Vec<&'static str>,
    policy: Policy,
    expect: Vec<Expected>,
}

fn run(case: &Case) -> Plan {
    let snapshot: Snapshot = case
        .snapshot
        .iter()
        .map(|u| (u.employee_ref.clone(), u.clone()))
        .collect();
    let mapped = Mapped {
        people: case
            .desired
            .iter()
            .map(|d| (d.employee_ref.clone(), d.clone()))
            .collect(),
        held: case.held.iter().map(|h| r(h)).collect(),
        rejected: Vec::new(),
    };
    plan(&snapshot, &mapped, &managed, &case.policy, date(TODAY))
}

/// The plan for today under the default policy.
fn plan_today(snapshot: &Snapshot, mapped: &Mapped) -> Plan {
    plan(snapshot, mapped, &managed, &Policy::default(), date(TODAY))
}

fn with<T>(mut value: T, change: impl FnOnce(&mut T)) -> T {
    change(&mut value);
    value
}

#[rstest]
#[case::unchanged_people_produce_nothing(Case {
    snapshot: vec![acked("001"), acked("002")],
    desired: vec![desired("001"), desired("002")],
    held: vec![],
    policy: Policy::default(),
    expect: vec![],
})]
#[case::a_new_hire_is_created_with_fields_categories_and_groups(Case {
    snapshot: vec![],
    desired: vec![desired("001")],
    held: vec![],
    policy: Policy::default(),
    expect: vec![(
        "001",
        "create",
        1,
        vec!["all-employees", "dept-sales"],
        vec![],
    )],
})]
#[case::changed_fields_only(Case {
    snapshot: vec![acked("001")],
    desired: vec![with(desired("001"), |d| d.name = "Renamed".into())],
    held: vec![],
    policy: Policy::default(),
    expect: vec![("001", "update", 0, vec![], vec![])],
})]
#[case::a_department_move_swaps_one_managed_group_and_the_custom_field(Case {
    snapshot: vec![acked("001")],
    desired: vec![with(desired("001"), |d| {
        d.groups = Groups::from([g("all-employees"), g("dept-finance")]);
        d.categories.insert(
            CategoryRef::parse("department").unwrap(),
            CategoryValue::String("Finance".into()),
        );
    })],
    held: vec![],
    policy: Policy::default(),
    expect: vec![("001", "-", 1, vec!["dept-finance"], vec!["dept-sales"])],
})]
#[case::an_unmanaged_group_is_never_removed(Case {
    snapshot: vec![with(acked("001"), |s| {
        s.groups.insert(g("mentors"));
    })],
    desired: vec![desired("001")],
    held: vec![],
    policy: Policy::default(),
    expect: vec![],
})]
#[case::an_empty_cell_leaves_the_custom_field_alone(Case {
    snapshot: vec![acked("001")],
    desired: vec![with(desired("001"), |d| d.categories.clear())],
    held: vec![],
    policy: Policy::default(),
    expect: vec![],
})]
#[case::a_leaver_absent_from_the_export_is_archived(Case {
    snapshot: vec![acked("001"), acked("002")],
    desired: vec![desired("001")],
    held: vec![],
    policy: Policy::default(),
    expect: vec![("002", "archive", 0, vec![], vec![])],
})]
#[case::absent_leavers_are_kept_when_the_policy_says_so(Case {
    snapshot: vec![acked("001"), acked("002")],
    desired: vec![desired("001")],
    held: vec![],
    policy: Policy {
        leavers: Leavers::Keep,
        ..Policy::default()
    },
    expect: vec![],
})]
#[case::an_archived_leaver_stays_archived_without_a_call(Case {
    snapshot: vec![acked("001"), with(acked("002"), |s| s.archived = true)],
    desired: vec![desired("001")],
    held: vec![],
    policy: Policy::default(),
    expect: vec![],
})]
#[case::an_end_date_that_passed_yesterday_archives_today(Case {
    snapshot: vec![acked("001")],
    desired: vec![with(desired("001"), |d| {
        d.end_date = Some(date("2026-11-22"))
    })],
    held: vec![],
    policy: Policy::default(),
    expect: vec![("001", "archive", 0, vec![], vec![])],
})]
#[case::on_the_end_date_itself_the_account_stays_by_default(Case {
    snapshot: vec![acked("001")],
    desired: vec![with(desired("001"), |d| d.end_date = Some(date(TODAY)))],
    held: vec![],
    policy: Policy::default(),
    expect: vec![],
})]
#[case::archive_on_the_end_date_itself_when_configured(Case {
    snapshot: vec![acked("001")],
    desired: vec![with(desired("001"), |d| d.end_date = Some(date(TODAY)))],
    held: vec![],
    policy: Policy {
        archive_after_end_days: 0,
        ..Policy::default()
    },
    expect: vec![("001", "archive", 0, vec![], vec![])],
})]
#[case::grace_days_postpone_the_archive(Case {
    snapshot: vec![acked("001")],
    desired: vec![with(desired("001"), |d| {
        d.end_date = Some(date("2026-11-20"))
    })],
    held: vec![],
    policy: Policy {
        archive_after_end_days: 5,
        ..Policy::default()
    },
    expect: vec![],
})]
#[case::a_leaver_by_date_who_was_never_created_is_not_created(Case {
    snapshot: vec![],
    desired: vec![with(desired("001"), |d| {
        d.end_date = Some(date("2026-01-01"))
    })],
    held: vec![],
    policy: Policy::default(),
    expect: vec![],
})]
#[case::a_rehire_is_unarchived_on_the_same_account(Case {
    snapshot: vec![with(acked("001"), |s| s.archived = true)],
    desired: vec![desired("001")],
    held: vec![],
    policy: Policy::default(),
    expect: vec![("001", "unarchive", 0, vec![], vec![])],
})]
#[case::a_held_person_is_neither_changed_nor_archived(Case {
    snapshot: vec![acked("001"), acked("002")],
    desired: vec![with(desired("001"), |d| d.name = "Changed".into())],
    held: vec!["001", "002"],
    policy: Policy::default(),
    expect: vec![],
})]
#[case::pre_boarding_too_early_to_create(Case {
    snapshot: vec![],
    desired: vec![with(desired("001"), |d| {
        d.start_date = Some(date("2026-12-15"))
    })],
    held: vec![],
    policy: Policy {
        preboarding_days: Some(14),
        ..Policy::default()
    },
    expect: vec![],
})]
#[case::pre_boarding_created_exactly_preboarding_days_before_the_start(Case {
    snapshot: vec![],
    desired: vec![with(desired("001"), |d| {
        d.start_date = Some(date("2026-12-07"))
    })],
    held: vec![],
    policy: Policy {
        preboarding_days: Some(14),
        ..Policy::default()
    },
    expect: vec![(
        "001",
        "create",
        1,
        vec!["all-employees", "dept-sales"],
        vec![],
    )],
})]
#[case::without_pre_boarding_a_future_starter_is_created_at_once(Case {
    snapshot: vec![],
    desired: vec![with(desired("001"), |d| {
        d.start_date = Some(date("2027-06-01"))
    })],
    held: vec![],
    policy: Policy::default(),
    expect: vec![(
        "001",
        "create",
        1,
        vec!["all-employees", "dept-sales"],
        vec![],
    )],
})]
fn planning_cases(#[case] case: Case) {
    let plan = run(&case);
    let got: Vec<_> = plan
        .people
        .iter()
        .map(|p| {
            (
                p.employee_ref.as_str().to_owned(),
                p.user
                    .as_ref()
                    .map_or("-", |user| user.kind().as_str())
                    .to_owned(),
                p.categories.len(),
                p.groups_added
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect::<Vec<_>>(),
                p.groups_removed
                    .iter()
                    .map(|g| g.as_str().to_owned())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let want: Vec<_> = case
        .expect
        .iter()
        .map(|(r, kind, cats, add, remove)| {
            (
                (*r).to_owned(),
                (*kind).to_owned(),
                *cats,
                add.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
                remove.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn an_email_change_is_an_update_of_the_same_person() {
    let plan = run(&Case {
        snapshot: vec![acked("001")],
        desired: vec![with(desired("001"), |d| {
            d.email = Email::parse("new.address@example.com").unwrap()
        })],
        held: vec![],
        policy: Policy::default(),
        expect: vec![],
    });
    assert_eq!(
        plan.people[0].user,
        Some(UserChange::Update {
            changes: vec![FieldChange::Email {
                before: Email::parse("p001@example.com").unwrap(),
                after: Email::parse("new.address@example.com").unwrap(),
            }]
        })
    );
}

#[test]
fn memberships_are_batched_per_group() {
    let plan = run(&Case {
        snapshot: vec![],
        desired: vec![desired("001"), desired("002"), desired("003")],
        held: vec![],
        policy: Policy::default(),
        expect: vec![],
    });
    assert_eq!(plan.groups.len(), 2);
    assert_eq!(plan.groups[&g("dept-sales")].add.len(), 3);
    assert_eq!(plan.summary.operations, 3 * (1 + 1 + 2));
}

fn mass_leave(keep: usize, total: usize, policy: Policy) -> Plan {
    let ids: Vec<String> = (0..total).map(|i| format!("{i:05}")).collect();
    let snapshot: Snapshot = ids.iter().map(|id| (r(id), acked(id))).collect();
    let mapped = Mapped {
        people: ids
            .iter()
            .take(keep)
            .map(|id| (r(id), desired(id)))
            .collect(),
        ..Mapped::default()
    };
    plan(&snapshot, &mapped, &managed, &policy, date(TODAY))
}

#[rstest]
#[case::within_max_people(100, 90, Policy::default(), 10, false)]
#[case::one_over_max_people(100, 89, Policy::default(), 0, true)]
#[case::percentage_larger_than_max_people(1000, 950, Policy {
    guard: ArchiveGuard {
        max_people: 10,
        max_percent: 5.0,
    },
    ..Policy::default()
}, 50, false)]
#[case::one_over_the_percentage(1000, 949, Policy::default(), 0, true)]
#[case::truncated_export(1000, 400, Policy::default(), 0, true)]
#[case::empty_export(1000, 0, Policy::default(), 0, true)]
#[case::allowed_by_the_operator(1000, 0, Policy {
    allow_mass_archive: true,
    ..Policy::default()
}, 1000, false)]
fn archive_guard_cases(
    #[case] total: usize,
    #[case] keep: usize,
    #[case] policy: Policy,
    #[case] archives: usize,
    #[case] withheld: bool,
) {
    let plan = mass_leave(keep, total, policy);
    let got = plan
        .people
        .iter()
        .filter(|p| matches!(p.user, Some(UserChange::Archive { .. })))
        .count();
    assert_eq!(got, archives);
    assert_eq!(plan.withheld_archives.is_some(), withheld);
}

#[test]
fn an_empty_export_says_so() {
    let plan = mass_leave(0, 3, Policy::default());
    let withheld = plan.withheld_archives.unwrap();
    assert_eq!(withheld.would_archive, 3);
    assert!(
        withheld.reason.contains("no employees"),
        "{}",
        withheld.reason
    );
}

#[test]
fn guarded_plans_still_create_and_update() {
    let ids: Vec<String> = (0..100).map(|i| format!("{i:03}")).collect();
    let snapshot: Snapshot = ids.iter().map(|id| (r(id), acked(id))).collect();
    let mut people: BTreeMap<_, _> = ids.iter().take(50).map(|id| (r(id), desired(id))).collect();
    people.insert(r("999"), desired("999"));
    people.insert(
        r("000"),
        with(desired("000"), |d| d.name = "New name".into()),
    );
    let mapped = Mapped {
        people,
        ..Mapped::default()
    };
    let plan = plan_today(&snapshot, &mapped);
    assert!(plan.withheld_archives.is_some());
    let kinds: Vec<_> = plan
        .people
        .iter()
        .filter_map(|p| p.user.as_ref().map(UserChange::kind))
        .collect();
    assert_eq!(kinds, vec![OpKind::Update, OpKind::Create]);
}

#[test]
fn upcoming_lifecycle_events_within_seven_days() {
    let plan = run(&Case {
        snapshot: vec![acked("001"), acked("003")],
        desired: vec![
            with(desired("001"), |d| d.end_date = Some(date("2026-11-25"))),
            with(desired("002"), |d| d.start_date = Some(date("2026-12-10"))),
            with(desired("003"), |d| d.end_date = Some(date("2026-12-31"))),
            with(desired("004"), |d| d.start_date = Some(date("2027-03-01"))),
        ],
        held: vec![],
        policy: Policy {
            preboarding_days: Some(14),
            ..Policy::default()
        },
        expect: vec![],
    });
    assert_eq!(
        plan.upcoming,
        vec![
            UpcomingEvent {
                date: date("2026-11-26"),
                employee_ref: r("002"),
                event: Lifecycle::Create {
                    start_date: date("2026-12-10")
                },
            },
            UpcomingEvent {
                date: date("2026-11-26"),
                employee_ref: r("001"),
                event: Lifecycle::Archive {
                    end_date: date("2026-11-25")
                },
            },
        ]
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
    );
    assert_eq!(plan.summary.not_yet_started, 2);
}

#[test]
fn plan_serialises_for_json_output() {
    let plan = run(&Case {
        snapshot: vec![acked("001")],
        desired: vec![with(desired("001"), |d| {
            d.roles.insert(Role::Manager);
        })],
        held: vec![],
        policy: Policy::default(),
        expect: vec![],
    });
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["people"][0]["user"]["action"], "update");
    assert_eq!(json["people"][0]["user"]["changes"][0]["field"], "roles");
    assert_eq!(
        json["people"][0]["user"]["changes"][0]["after"],
        serde_json::json!(["PARTICIPANT", "MANAGER"])
    );
}

/// Rows that could hide people: one without a readable number (it could be anyone), and one
/// with the wrong number of cells (a stray quote may have merged other rows into it).
#[rstest]
#[case::no_employee_number(crate::sync::source::RecordError {
    location: crate::sync::source::Location::Line { line: 3 },
    employee_ref: None,
    field: Some("employee_number".into()),
    reason: "employee number is empty".into(),
    structural: false,
})]
#[case::wrong_number_of_cells_number_readable(crate::sync::source::RecordError {
    location: crate::sync::source::Location::Line { line: 4 },
    employee_ref: Some("004".into()),
    field: None,
    reason: "wrong number of columns: expected 11, found 13".into(),
    structural: true,
})]
fn a_record_that_could_hide_people_withholds_absence_archives_only(
    #[case] suspect: crate::sync::source::RecordError,
) {
    let snapshot: Snapshot = ["001", "002", "003"]
        .into_iter()
        .chain(suspect.employee_ref.as_deref())
        .map(|id| (r(id), acked(id)))
        .collect();
    let mapped = Mapped {
        people: BTreeMap::from([
            (r("001"), desired("001")),
            (
                r("003"),
                with(desired("003"), |d| d.end_date = Some(date("2026-11-01"))),
            ),
        ]),
        held: suspect.employee_ref.iter().map(|h| r(h)).collect(),
        rejected: vec![suspect],
    };
    let plan = plan_today(&snapshot, &mapped);
    let archived: Vec<&str> = plan
        .people
        .iter()
        .map(|p| p.employee_ref.as_str())
        .collect();
    assert_eq!(
        archived,
        vec!["003"],
        "the end-date leaver goes, the absent one is held"
    );
    let withheld = plan.withheld_archives.unwrap();
    assert_eq!(withheld.would_archive, 1);
    assert!(
        withheld
            .reason
            .contains("no readable employee number or the wrong number of cells"),
        "{}",
        withheld.reason
    );
    assert_eq!(plan.summary.archive, 1);
}

/// Numbers written in a new format (`E 000043` for `000043`) with the same addresses: the same
/// people. Archiving the old numbers and creating the new ones would take their accounts away,
/// and the creates would fail on the taken addresses. Both sides are held instead.
#[test]
fn an_absent_person_and_a_new_record_with_their_address_are_held_as_one() {
    let known = ["000043", "000044", "000046", "000050", "000051"];
    let snapshot: Snapshot = known.iter().map(|id| (r(id), acked(id))).collect();
    let renumbered = |new: &str, old: &str, written: &str| {
        let mut d = with(desired(old), |d| d.employee_ref = r(new));
        d.email = Email::parse(written).unwrap();
        assert_eq!(d.email, acked(old).email, "the export writes {written}");
        d
    };
    let people = [
        renumbered("E 000043", "000043", " P000043@EXAMPLE.com "),
        renumbered("00E000044", "000044", "p000044@example.com"),
        renumbered("e000046", "000046", "P000046@Example.Com"),
        desired("000050"),
        desired("000060"),
    ];
    let mapped = Mapped {
        people: people
            .into_iter()
            .map(|d| (d.employee_ref.clone(), d))
            .collect(),
        ..Mapped::default()
    };
    let plan = plan_today(&snapshot, &mapped);

    let actions: Vec<(&str, &str)> = plan
        .people
        .iter()
        .map(|p| {
            (
                p.employee_ref.as_str(),
                p.user.as_ref().map_or("-", |user| user.kind().as_str()),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![("000051", "archive"), ("000060", "create")],
        "only the real leaver and the real new hire change"
    );
    let pairs: Vec<(&str, &str)> = plan
        .suspected_ref_changes
        .iter()
        .map(|c| (c.absent_ref.as_str(), c.new_ref.as_str()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            ("000043", "E 000043"),
            ("000044", "00E000044"),
            ("000046", "e000046")
        ]
    );
    assert_eq!(plan.summary.suspected_ref_changes, 3);
    assert!(plan.needs_attention(), "the run ends partial");
    let advice = plan.suspected_ref_changes[0].advice();
    assert!(
        advice.contains("000043")
            && advice.contains("E 000043")
            && advice.contains("correct it there")
            && advice.contains("change the user's ref in Pluvo"),
        "{advice}"
    );
    assert!(!advice.contains("example.com"), "no address in the advice");
}

/// The breakdown `plan` prints adds up to everyone it looked at, people who left before they
/// were ever synced included, and the guard names whom it withheld and why.
#[test]
fn the_totals_add_up_and_withheld_archives_are_named() {
    let left = |id: &str| with(desired(id), |d| d.end_date = Some(date("2026-10-01")));
    let snapshot: Snapshot = ["001", "002", "003", "004", "005", "006", "007"]
        .iter()
        .map(|id| (r(id), acked(id)))
        .chain([(r("008"), with(acked("008"), |u| u.archived = true))])
        .collect();
    let people = [
        desired("001"),                                      // unchanged
        with(desired("002"), |d| d.name = "Renamed".into()), // update
        with(desired("003"), |d| d.groups = Groups::new()),  // memberships only
        left("004"),                                         // archive by end date
        // 005 and 006 absent: archived; 007 held; 008 absent but archived long ago
        desired("010"),                                                    // create
        left("011"), // left before the first sync
        left("012"), // left before the first sync
        with(desired("013"), |d| d.start_date = Some(date("2027-06-01"))), // not yet started
        with(desired("020"), |d| d.email = acked("006").email), // 006 renumbered
    ];
    let mapped = Mapped {
        people: people
            .into_iter()
            .map(|d| (d.employee_ref.clone(), d))
            .collect(),
        held: [r("007")].into(),
        rejected: Vec::new(),
    };
    let policy = Policy {
        preboarding_days: Some(14),
        ..Policy::default()
    };
    let plan = plan(&snapshot, &mapped, &managed, &policy, date(TODAY));
    let s = plan.summary;
    assert_eq!(
        (
            s.left_before_sync,
            s.not_yet_started,
            s.other_changes,
            s.suspected_ref_changes
        ),
        (2, 1, 1, 1)
    );
    let everyone: BTreeSet<&EmployeeRef> = snapshot
        .keys()
        .chain(mapped.people.keys())
        .chain(&mapped.held)
        .collect();
    assert_eq!(s.people(), everyone.len(), "{s:#?}");
    let archives: Vec<(String, String)> = plan
        .archives()
        .iter()
        .map(|a| (a.employee_ref.to_string(), a.why.to_string()))
        .collect();
    assert_eq!(
        archives,
        vec![
            ("004".into(), "end date 2026-10-01 passed".into()),
            ("005".into(), "absent from the source".into()),
        ]
    );

    // The same with a guard that allows nobody: the archives are withheld, by name.
    let strict = Policy {
        guard: ArchiveGuard {
            max_people: 1,
            max_percent: 0.0,
        },
        ..policy
    };
    let guarded = super::plan(&snapshot, &mapped, &managed, &strict, date(TODAY));
    let withheld = guarded.withheld_archives.as_ref().unwrap();
    let named: Vec<(&str, String)> = withheld
        .people
        .iter()
        .map(|a| (a.employee_ref.as_str(), a.why.to_string()))
        .collect();
    assert_eq!(
        named,
        vec![
            ("004", "end date 2026-10-01 passed".to_owned()),
            ("005", "absent from the source".to_owned()),
        ]
    );
    assert_eq!(guarded.summary.people(), everyone.len());
}
