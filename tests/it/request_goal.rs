//! The request goal of issue 15, counted by pluvo-sim: a first load and a daily churn send no
//! more documents than `ceil(people / batch_size)` plus what the memberships need.
//!
//! The bounds use the configured starting `batch_size`, pinned here by `max_batch_size`: that is
//! the smallest size a document gets while Pluvo refuses none, so it is the bound's worst case;
//! with growth allowed the batch size only rises and the counts only fall (the last test).

#![allow(clippy::unwrap_used)]

use pluvo_sim::{Faults, Seed, SimConfig};
use pluvo_sync::domain::RunStatus;

use crate::batching::written_documents;
use crate::helpers::{Employee, TestEnv, employee};

const BATCH: usize = 10;
const PEOPLE: usize = 60;
const LOCATIONS: [&str; 3] = ["Amsterdam", "Rotterdam", "Utrecht"];
const DEPARTMENTS: [&str; 4] = ["Sales", "Finance", "Engineering", "HR"];

fn crowd() -> Vec<Employee> {
    (0..PEOPLE)
        .map(|i| {
            employee(
                &format!("{:06}", 400_000 + i),
                "Staff",
                &format!("Member{i}"),
                DEPARTMENTS[i % DEPARTMENTS.len()],
                LOCATIONS[i % LOCATIONS.len()],
            )
        })
        .collect()
}

async fn env(max_batch_size: usize) -> TestEnv {
    let mut env = TestEnv::start_with(SimConfig {
        seed: Seed::example(),
        faults: Faults::default(),
        ..SimConfig::default()
    })
    .await;
    env.reconfigure(|c| {
        c.replace(
            "batch_size = 4",
            &format!("batch_size = {BATCH}\nmax_batch_size = {max_batch_size}"),
        )
    })
    .await;
    env
}

/// Documents written by `run`.
async fn documents_of(env: &TestEnv, rows: &[Employee]) -> u64 {
    env.write_export(rows);
    let before = written_documents(&env.stats());
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    written_documents(&env.stats()) - before
}

/// `ceil(people / batch_size) + ceil(memberships / 100)` for a first load: every person is
/// created with their custom fields in the same document, and each is in 3 groups.
#[tokio::test]
async fn a_first_load_stays_within_people_per_batch_plus_memberships_per_hundred() {
    let env = env(BATCH).await;
    let rows = crowd();
    let sent = documents_of(&env, &rows).await;
    let memberships = PEOPLE * 3;
    let bound = PEOPLE.div_ceil(BATCH) + memberships.div_ceil(100);
    assert!(sent as usize <= bound, "{sent} documents, bound {bound}");
    let state = env.state();
    for row in &rows {
        let user = state.user(&row.number).unwrap();
        assert_eq!(user.categories["has_company_car"], serde_json::json!(false));
        assert_eq!(user.groups.len(), 3, "{}: {:?}", row.number, user.groups);
    }
}

/// A daily churn: renames and custom-field changes (some people both), without memberships,
/// sends `ceil(changed people / batch_size)` documents: a person's upsert and custom fields
/// share one. (Upserts and custom fields in separate documents would take 4 here.) Then moves
/// and a hire add at most one document per group touched.
#[tokio::test]
async fn a_daily_churn_stays_within_changed_people_per_batch_plus_groups_touched() {
    let env = env(BATCH).await;
    let mut rows = crowd();
    documents_of(&env, &rows).await;

    // 15 renamed, 15 given a company car, 10 of them both: 20 people changed.
    for row in &mut rows[0..15] {
        row.last = format!("{}-Renamed", row.last);
    }
    for row in &mut rows[5..20] {
        row.car = "ja".to_owned();
    }
    let sent = documents_of(&env, &rows).await as usize;
    let changed: usize = 20;
    assert!(
        sent <= changed.div_ceil(BATCH),
        "{sent} documents for {changed} changed people"
    );
    let state = env.state();
    assert_eq!(
        state.user(&rows[7].number).unwrap().categories["has_company_car"],
        serde_json::json!(true)
    );
    assert!(
        state
            .user(&rows[7].number)
            .unwrap()
            .name
            .ends_with("-Renamed")
    );

    // Two people trade locations and one is hired: 3 people changed, groups touched are both
    // locations, and the hire's department, location and the static group.
    rows[30].location = "Rotterdam".to_owned();
    rows[31].location = "Amsterdam".to_owned();
    let mut hire = employee("499999", "New", "Hire", "Finance", "Utrecht");
    hire.car = "ja".to_owned();
    rows.push(hire);
    let touched = [
        "loc-amsterdam",
        "loc-rotterdam",
        "loc-utrecht",
        "dept-finance",
        "all-employees",
    ];
    let sent = documents_of(&env, &rows).await as usize;
    let bound = 3usize.div_ceil(BATCH) + touched.len();
    assert!(sent <= bound, "{sent} documents, bound {bound}");
    let state = env.state();
    let user = state.user("499999").unwrap();
    assert_eq!(user.categories["has_company_car"], serde_json::json!(true));
    assert_eq!(user.groups.len(), 3, "{:?}", user.groups);
}

/// With the batch size free to grow (the default maximum of 100), Pluvo's acceptance only
/// lowers the count below the bound at the starting size.
#[tokio::test]
async fn a_growing_batch_size_only_lowers_the_count() {
    let env = env(100).await;
    let rows = crowd();
    let sent = documents_of(&env, &rows).await as usize;
    let bound = PEOPLE.div_ceil(BATCH) + (PEOPLE * 3).div_ceil(100);
    assert!(sent <= bound, "{sent} documents, bound {bound}");
}
