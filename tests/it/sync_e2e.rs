//! The whole pipeline against pluvo-sim: convergence, idempotence, churn, bad files and faults.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use pluvo_sim::{Faults, Seed, SimConfig, StateView};
use pluvo_sync::domain::RunStatus;
use pluvo_sync::sync::engine::RunOptions;

use crate::helpers::{Employee, TestEnv, employee, export_csv, staff};

fn slug(text: &str) -> String {
    pluvo_sync::sync::mapping::slug(text)
}

/// Asserts that Pluvo holds exactly what the export says for every employee in it.
fn assert_matches_export(state: &StateView, rows: &[Employee]) {
    for e in rows {
        let user = state
            .user(&e.number)
            .unwrap_or_else(|| panic!("employee {} has no Pluvo account", e.number));
        assert_eq!(
            user.name,
            format!("{} {}", e.first, e.last),
            "name of {}",
            e.number
        );
        assert_eq!(user.email, e.email.to_lowercase(), "email of {}", e.number);
        assert!(!user.archived, "{} is archived", e.number);
        assert_eq!(user.roles, vec!["PARTICIPANT".to_owned()]);
        assert_eq!(user.language.as_deref(), Some("NL"));
        let managed: BTreeSet<&str> = user
            .groups
            .iter()
            .map(String::as_str)
            .filter(|g| *g != "mentors")
            .collect();
        let department = format!("dept-{}", slug(&e.department));
        let location = format!("loc-{}", slug(&e.location));
        let expected: BTreeSet<&str> =
            ["all-employees", department.as_str(), location.as_str()].into();
        assert_eq!(managed, expected, "groups of {}", e.number);
        assert_eq!(
            user.categories["department"],
            serde_json::json!(e.department)
        );
        assert_eq!(
            user.categories["contract_type"],
            serde_json::json!([e.contract])
        );
        assert_eq!(
            user.categories["has_company_car"],
            serde_json::json!(e.car == "ja")
        );
        let hire_date = user.categories["hire_date"].as_str().unwrap();
        let (d, m, y) = (&e.start[0..2], &e.start[3..5], &e.start[6..10]);
        assert!(
            hire_date.starts_with(&format!("{y}-{m}-{d}")),
            "hire date of {}: {hire_date}",
            e.number
        );
    }
}

#[tokio::test]
async fn a_first_load_converges_and_adopts_the_existing_account() {
    let env = TestEnv::start().await;
    let lotte_before = env
        .state()
        .user_by_email("lotte.devries@example.com")
        .unwrap()
        .clone();
    assert_eq!(lotte_before.ref_, None);

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);

    let state = env.state();
    assert_matches_export(&state, &staff());
    let lotte = state.user("000123").unwrap();
    assert_eq!(lotte.id, lotte_before.id, "adopted, not duplicated");
    assert!(
        lotte.groups.contains(&"mentors".to_owned()),
        "a hand-made membership stays"
    );
    assert_eq!(
        state.users.len(),
        staff().len() + 1,
        "the admin account is untouched, nobody doubled"
    );
    assert!(!state.user_by_email("admin@example.com").unwrap().archived);
    assert_eq!(
        env.stats().invitations,
        0,
        "nobody was mailed an invitation"
    );
    let adopt = env.journal().operations_of_person("000123").await.unwrap();
    assert_eq!(adopt[0].kind, "adopt");
}

#[tokio::test]
async fn an_unchanged_second_run_sends_no_request_at_all() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);
    let before = env.stats();
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok);
    assert_eq!(report.summary.unwrap().operations, 0);
    assert_eq!(
        env.stats().requests_total,
        before.requests_total,
        "no request, not even a token"
    );

    // The snapshot still records that everyone was in this run's source.
    let seen: Vec<(String, String)> =
        sqlx::query_as("SELECT first_seen_run, last_seen_run FROM snapshot_users")
            .fetch_all(env.journal().pool())
            .await
            .unwrap();
    assert_eq!(seen.len(), 6);
    assert!(
        seen.iter()
            .all(|(first, last)| first != last && last == &report.run_id)
    );
}

#[tokio::test]
async fn requests_are_batched() {
    let env = TestEnv::start().await;
    env.sync().await;
    let stats = env.stats();
    // 6 people: 2 user documents and 2 custom-field documents at batch_size 4, 1 adoption
    // lookup and retry, 1 token, and one membership call per group (all-employees, 4 dept, 3 loc).
    let graphql = stats.requests_total - stats.token_requests;
    assert!(
        graphql <= 2 + 2 + 3 + 8,
        "{graphql} GraphQL requests: {:?}",
        stats.fields
    );
    assert_eq!(stats.fields["addUsersToGroup"], 8, "one call per group");
}

#[tokio::test]
async fn churn_is_applied_exactly() {
    let mut env = TestEnv::start().await;
    let mut rows = staff();
    assert_eq!(env.sync().await.status, RunStatus::Ok);
    let ids_before: Vec<(String, String)> = env
        .state()
        .users
        .iter()
        .filter_map(|u| u.ref_.clone().map(|r| (r, u.id.clone())))
        .collect();

    // A changed field, an e-mail change, a department move, an absent leaver, an end-date
    // leaver, and a new hire.
    rows[1].contract = "Temporary".to_owned();
    rows[1].last = "van den Berg".to_owned();
    rows[2].email = "zoe.bakker-new@example.com".to_owned();
    rows[3].department = "Finance".to_owned();
    let leaver = rows.remove(4); // 000152
    rows[4].end = "20-11-2026".to_owned(); // 000160, end date passed
    rows.push(employee("000170", "Noah", "Smit", "HR", "Utrecht"));
    env.write_export(&rows);

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    let summary = report.summary.unwrap();
    assert_eq!((summary.create, summary.update, summary.archive), (1, 2, 2));

    let state = env.state();
    let still_employed: Vec<Employee> = rows.iter().filter(|e| e.end.is_empty()).cloned().collect();
    assert_matches_export(&state, &still_employed);
    assert!(state.user(&leaver.number).unwrap().archived);
    assert!(state.user("000160").unwrap().archived);
    assert!(
        state.user_by_email("zoe.bakker@example.com").is_none(),
        "the old address is gone"
    );
    let daan = state.user("000145").unwrap();
    assert!(
        daan.groups.contains(&"dept-finance".to_owned())
            && !daan.groups.contains(&"dept-sales".to_owned())
    );
    for (employee_ref, id) in &ids_before {
        assert_eq!(
            &state.user(employee_ref).unwrap().id,
            id,
            "{employee_ref} kept its account"
        );
    }
    assert_eq!(state.users.len(), 7 + 1, "one hire, no duplicates");

    // The leaver comes back: same account, unarchived.
    rows.push(leaver.clone());
    env.write_export(&rows);
    env.reconfigure(|c| c).await;
    let report = env.sync().await;
    assert_eq!(report.summary.unwrap().unarchive, 1);
    let back = env.state();
    let rehired = back.user(&leaver.number).unwrap();
    assert!(!rehired.archived);
    assert_eq!(
        Some(&rehired.id),
        ids_before
            .iter()
            .find(|(r, _)| *r == leaver.number)
            .map(|(_, id)| id),
        "a rehire keeps the same Pluvo account id"
    );
    assert_eq!(env.stats().invitations, 0);
}

#[tokio::test]
async fn bad_rows_are_skipped_reported_and_never_archive_anyone() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);

    let mut rows = staff();
    rows[0].email = "not-an-address".to_owned(); // 000123: invalid email
    rows[1].number = String::new(); // missing employee number (000124 vanishes with it)
    rows.push(rows[2].clone()); // 000131 twice
    rows[3].first = "Daniel".to_owned(); // a valid change still goes through
    // A short row before the last one (a short *last* row means the file is cut off).
    let text = String::from_utf8(export_csv(&rows)).unwrap();
    let last_row = text.trim_end().rfind("\r\n").unwrap() + 2;
    let text = format!(
        "{}000999;Too;Few;cells\r\n{}",
        &text[..last_row],
        &text[last_row..]
    );
    env.write_raw_export(text.as_bytes());

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(report.counts.rows_rejected, 5, "{:?}", report.errors);
    let state = env.state();
    assert!(
        !state.user("000123").unwrap().archived,
        "a bad e-mail never archives its owner"
    );
    assert!(
        !state.user("000131").unwrap().archived,
        "duplicates are held, not archived"
    );
    assert_eq!(state.user("000145").unwrap().name, "Daniel Jong");
    // The row without a number could be anyone: nobody is archived for being absent.
    assert!(!state.user("000124").unwrap().archived);
    assert_eq!(report.withheld_archives.unwrap().would_archive, 1);

    let run = env.journal().latest_run().await.unwrap().unwrap();
    assert_eq!(
        (run.status.as_str(), run.counts.rows_rejected),
        ("partial", 5)
    );
    let ops = env.journal().operations_of_run(&run.id).await.unwrap();
    let rejected: Vec<_> = ops.iter().filter(|o| o.kind == "rejected_record").collect();
    assert_eq!(rejected.len(), 5);
    assert!(
        rejected
            .iter()
            .any(|o| o.error.as_deref().unwrap().contains("line 2")
                && o.target.as_deref() == Some("email")),
        "{rejected:#?}"
    );
}

#[tokio::test]
async fn an_empty_export_archives_nobody() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);
    env.write_raw_export(format!("\u{feff}{}\r\n", crate::helpers::HEADER).as_bytes());

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Partial);
    let withheld = report.withheld_archives.unwrap();
    assert_eq!(withheld.would_archive, 6);
    assert!(
        env.state().users.iter().all(|u| !u.archived),
        "nobody archived"
    );

    // A zero-byte file is not an export at all: the run fails before planning.
    env.write_raw_export(b"");
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(env.state().users.iter().all(|u| !u.archived));
}

#[tokio::test]
async fn a_truncated_export_fails_or_hits_the_archive_guard_and_an_operator_can_override_it() {
    let env = TestEnv::start().await;
    let mut rows = staff();
    for i in 0..30 {
        rows.push(employee(
            &format!("{:06}", 500 + i),
            "Extra",
            &format!("Person{i}"),
            "Sales",
            "Utrecht",
        ));
    }
    env.write_export(&rows);
    assert_eq!(env.sync().await.status, RunStatus::Ok);

    // Cut off 12 bytes into the 14th data row, as a failed upload leaves it: the file is cut
    // off, so the run fails before planning, whatever the archive guard would allow.
    let bytes = export_csv(&rows);
    let text = String::from_utf8(bytes).unwrap();
    let cut = text.match_indices("\r\n").nth(13).unwrap().0 + 12;
    env.write_raw_export(&text.as_bytes()[..cut]);
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Failed, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("cut off at line 15"),
        "{:?}",
        report.errors
    );
    assert!(env.state().users.iter().all(|u| !u.archived));

    // Cut exactly after the 14th row: a shorter file that reads as whole. The guard holds.
    let cut = text.match_indices("\r\n").nth(14).unwrap().0 + 2;
    env.write_raw_export(&text.as_bytes()[..cut]);
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(
        report.withheld_archives.as_ref().unwrap().would_archive,
        36 - 14
    );
    assert!(env.state().users.iter().all(|u| !u.archived));

    let report = env
        .sync_with(RunOptions {
            allow_mass_archive: true,
            progress: false,
        })
        .await;
    assert!(report.withheld_archives.is_none());
    assert_eq!(
        env.state().users.iter().filter(|u| u.archived).count(),
        36 - 14
    );
}

#[tokio::test]
async fn faults_429_5xx_resets_and_lost_responses_still_converge() {
    let env = TestEnv::start_with(SimConfig {
        seed: Seed::example(),
        faults: Faults {
            rate: 40.0,
            burst: 2,
            // Every kind of fault, often, but not so often that one call meets a fault on all
            // of its 8 attempts (at 0.15/0.1/0.2 that happened in about 1 run in 25).
            fault_5xx: 0.1,
            fault_reset: 0.05,
            fault_after_commit: 0.15,
            ..Faults::default()
        },
        fault_seed: 7,
        ..SimConfig::default()
    })
    .await;
    let mut rows = staff();
    for i in 0..20 {
        rows.push(employee(
            &format!("{:06}", 700 + i),
            "Fault",
            &format!("Tester{i}"),
            "HR",
            "Utrecht",
        ));
    }
    env.write_export(&rows);

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    let stats = env.stats();
    assert!(stats.rate_limited > 0, "the limit was hit: {stats:?}");
    assert!(
        stats.faults.get("5xx").copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
    assert!(
        stats.faults.get("after_commit").copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
    assert_matches_export(&env.state(), &rows);
    assert_eq!(
        env.state().users.len(),
        rows.len() + 1,
        "lost responses created no duplicates"
    );
    assert_eq!(stats.invitations, 0);

    let before = env.stats().requests_total;
    assert_eq!(env.sync().await.summary.unwrap().operations, 0);
    assert_eq!(env.stats().requests_total, before);
}

#[tokio::test]
async fn an_account_with_another_ref_is_never_taken_over() {
    let env = TestEnv::start().await;
    env.add_outside_account_for_thijs();

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Partial);
    assert_eq!(report.counts.ops_failed, 1, "{:?}", report.errors);
    let state = env.state();
    assert_eq!(
        state.user("OTHER-1").unwrap().name,
        "Someone Else",
        "not taken over"
    );
    assert!(state.user("000124").is_none());
    let ops = env.journal().operations_of_person("000124").await.unwrap();
    assert!(
        ops[0].error.as_deref().unwrap().contains("OTHER-1"),
        "{ops:#?}"
    );
    assert!(
        ops.iter().skip(1).all(|o| o.status == "skipped"),
        "{ops:#?}"
    );

    // Everyone else converged, and the next run retries only the conflict.
    let others: Vec<Employee> = staff()
        .into_iter()
        .filter(|e| e.number != "000124")
        .collect();
    assert_matches_export(&state, &others);
    let report = env.sync().await;
    assert_eq!(report.summary.unwrap().create, 1);
}

#[tokio::test]
async fn an_export_cut_off_inside_an_employee_number_archives_nobody() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);

    // The upload stopped three bytes into the last row: "000160" reads as "000".
    let text = String::from_utf8(export_csv(&staff())).unwrap();
    let last_row = text.rfind("000160").unwrap();
    env.write_raw_export(&text.as_bytes()[..last_row + 3]);

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Failed, "{:?}", report.errors);
    assert!(
        report.errors[0].contains("cut off at line 7"),
        "{:?}",
        report.errors
    );
    assert!(
        env.state().users.iter().all(|u| !u.archived),
        "a cut-off row never archives the person it belonged to"
    );
}

#[tokio::test]
async fn two_employees_swapping_addresses_converge() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);

    let mut rows = staff();
    let (a, b) = (rows[1].email.clone(), rows[4].email.clone());
    rows[1].email = b;
    rows[4].email = a;
    env.write_export(&rows);

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    let state = env.state();
    assert_matches_export(&state, &rows);
    crate::helpers::assert_each_employee_once(&state, &rows);

    let before = env.stats().requests_total;
    assert_eq!(env.sync().await.summary.unwrap().operations, 0);
    assert_eq!(env.stats().requests_total, before);
}

#[tokio::test]
async fn an_address_freed_later_in_the_same_run_is_taken_in_that_run() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);

    // 000124 takes the address 000152 gives up; 000124 comes first in every batch.
    let mut rows = staff();
    rows[1].email = rows[4].email.clone();
    rows[4].email = "emma.visser-new@example.com".to_owned();
    env.write_export(&rows);

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_matches_export(&env.state(), &rows);
}

#[tokio::test]
async fn nobody_is_parked_for_an_address_an_outside_account_holds() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);

    // 000124 wants 000152's address, but 000152 wants the admin's, which never frees up.
    let mut rows = staff();
    rows[1].email = rows[4].email.clone();
    rows[4].email = "admin@example.com".to_owned();
    env.write_export(&rows);

    let report = env.sync().await;
    // Both refused for their own data, nothing systemic: partial, not failed.
    assert_eq!(report.status, RunStatus::Partial, "every call was refused");
    assert_eq!(report.counts.ops_failed, 2, "{:?}", report.errors);
    let state = env.state();
    assert!(
        state.users.iter().all(|u| !u.email.ends_with(".invalid")),
        "nobody was moved to a placeholder: {:?}",
        state.users
    );
    assert_eq!(state.user("000152").unwrap().email, staff()[4].email);
    assert_eq!(state.user("000124").unwrap().email, staff()[1].email);
}

#[tokio::test]
async fn an_adopted_account_leaves_managed_groups_hr_does_not_give_it_in_the_same_run() {
    let env = TestEnv::start().await;
    // Thijs (Engineering, Utrecht in HR) already has an account, put in dept-hr and mentors by
    // an administrator before the sync existed.
    env.sim
        .add_users(vec![pluvo_sim::SeedUser {
            email: "thijs.berg@example.com".to_owned(),
            name: "Thijs Berg".to_owned(),
            groups: vec!["dept-hr".to_owned(), "mentors".to_owned()],
            ..Default::default()
        }])
        .unwrap();
    let id_before = env
        .state()
        .user_by_email("thijs.berg@example.com")
        .unwrap()
        .id
        .clone();

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    let state = env.state();
    let thijs = state.user("000124").unwrap();
    assert_eq!(thijs.id, id_before, "adopted");
    assert_eq!(
        thijs.groups,
        vec![
            "all-employees",
            "dept-engineering",
            "loc-utrecht",
            "mentors"
        ],
        "the managed dept-hr is gone, the hand-made mentors stays"
    );
    assert_matches_export(&state, &staff());

    let before = env.stats().requests_total;
    assert_eq!(
        env.sync().await.summary.unwrap().operations,
        0,
        "converged in one run"
    );
    assert_eq!(env.stats().requests_total, before);
}
