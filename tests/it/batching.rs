//! Fewer requests per change: several groups' membership changes share a document, and the batch
//! size finds its level (grows while accepted; shrinks and re-sends on a root-field limit or 413).

#![allow(clippy::unwrap_used)]

use pluvo_sim::{Faults, Seed, SimConfig};
use pluvo_sync::domain::RunStatus;

use crate::helpers::{Employee, TestEnv, employee};

const DEPARTMENTS: [&str; 4] = ["Sales", "Finance", "Engineering", "HR"];
const LOCATIONS: [&str; 3] = ["Amsterdam", "Rotterdam", "Utrecht"];

/// `n` people spread over the example tenant's departments and locations, with addresses no
/// seeded account holds (no adoption lookups in the counts).
fn crowd(n: usize) -> Vec<Employee> {
    (0..n)
        .map(|i| {
            employee(
                &format!("{:06}", 300_000 + i),
                "Person",
                &format!("Number{i}"),
                DEPARTMENTS[i % DEPARTMENTS.len()],
                LOCATIONS[i % LOCATIONS.len()],
            )
        })
        .collect()
}

async fn env_with(faults: Faults, edit: impl FnOnce(String) -> String) -> TestEnv {
    let mut env = TestEnv::start_with(SimConfig {
        seed: Seed::example(),
        faults,
        ..SimConfig::default()
    })
    .await;
    env.reconfigure(edit).await;
    env
}

/// The journaled batch size of each operation of the latest run of `kind`.
async fn batch_sizes(env: &TestEnv, kind: &str) -> Vec<Option<i64>> {
    sqlx::query_scalar(
        "SELECT batch_size FROM operations WHERE kind = ? AND run_id = \
         (SELECT id FROM runs ORDER BY started_at DESC LIMIT 1) ORDER BY id",
    )
    .bind(kind)
    .fetch_all(env.journal().pool())
    .await
    .unwrap()
}

#[tokio::test]
async fn the_batch_size_shrinks_on_a_root_field_limit_and_grows_while_accepted() {
    // A new hire is two root fields of a document (the create, then their custom fields): at
    // most 3 people per document.
    let env = env_with(
        Faults {
            max_root_fields: 6,
            ..Faults::default()
        },
        |c| {
            c.replace(
                "batch_size = 4",
                "batch_size = 2\nmax_batch_size = 8\nconcurrency = 1",
            )
            .replace("concurrency = 4\n", "")
        },
    )
    .await;
    let rows = crowd(30);
    env.write_export(&rows);
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    let stats = env.stats();
    assert!(stats.too_big >= 1, "the limit was met: {stats:?}");
    let state = env.state();
    for row in &rows {
        let user = state
            .user(&row.number)
            .expect("created despite the refusals");
        assert_eq!(
            user.categories.get("contract_type"),
            Some(&serde_json::json!([row.contract]))
        );
    }
    let sizes: Vec<i64> = batch_sizes(&env, "create")
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(sizes.len(), 30, "every create journals its batch size");
    assert_eq!(sizes.first(), Some(&2), "starts at batch_size: {sizes:?}");
    assert!(sizes.contains(&3), "grew while accepted: {sizes:?}");
    assert!(
        sizes.iter().all(|s| *s <= 3),
        "never above the limit once met: {sizes:?}"
    );
}

#[tokio::test]
async fn a_413_shrinks_the_batch_and_the_work_is_resent() {
    let env = env_with(
        Faults {
            max_root_fields: 3,
            too_big_413: true,
            ..Faults::default()
        },
        |c| c,
    )
    .await;
    let rows = crowd(12);
    env.write_export(&rows);
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    let stats = env.stats();
    assert!(
        stats.requests_by_status.get(&413).is_some_and(|n| *n >= 1),
        "{stats:?}"
    );
    let state = env.state();
    for row in &rows {
        assert!(state.user(&row.number).is_some(), "{}", row.number);
    }
}

/// GraphQL documents that were not reads (each read is a document of one root query field) and
/// not refused.
pub(crate) fn written_documents(stats: &pluvo_sim::Stats) -> u64 {
    let reads: u64 = [
        "paginatedGroups",
        "extraCategories",
        "user",
        "paginatedUsers",
    ]
    .iter()
    .filter_map(|field| stats.fields.get(*field))
    .sum();
    stats.graphql_documents - stats.too_big - reads
}

#[tokio::test]
async fn removals_and_additions_of_several_groups_share_one_document() {
    let env = env_with(Faults::default(), |c| {
        c.replace("batch_size = 4", "batch_size = 4\nmax_batch_size = 4")
    })
    .await;
    let mut rows = crowd(6);
    env.write_export(&rows);
    assert_eq!(env.sync().await.status, RunStatus::Ok);
    let before = env.stats();

    // Two people trade locations: membership changes only (a location is no custom field), of
    // two groups in both directions.
    let (a, b) = (0, 1);
    assert_eq!(
        (rows[a].location.as_str(), rows[b].location.as_str()),
        ("Amsterdam", "Rotterdam")
    );
    rows[a].location = "Rotterdam".to_owned();
    rows[b].location = "Amsterdam".to_owned();
    env.write_export(&rows);
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);

    let after = env.stats();
    let sent = written_documents(&after) - written_documents(&before);
    assert_eq!(
        sent, 1,
        "four changes of two groups in one document: {after:?}"
    );
    let state = env.state();
    let groups = |r: &str| state.user(r).unwrap().groups.clone();
    assert!(groups(&rows[a].number).contains(&"loc-rotterdam".to_owned()));
    assert!(!groups(&rows[a].number).contains(&"loc-amsterdam".to_owned()));
    assert!(groups(&rows[b].number).contains(&"loc-amsterdam".to_owned()));
    assert!(!groups(&rows[b].number).contains(&"loc-rotterdam".to_owned()));
}
