//! A database belongs to the tenant it first synced: another `pluvo.url` or client is refused.

#![allow(clippy::unwrap_used)]

use pluvo_sim::{Seed, SimConfig};
use pluvo_sync::domain::RunStatus;

use crate::helpers::TestEnv;

#[tokio::test]
async fn the_same_database_pointed_at_another_tenant_is_refused_and_nothing_is_sent() {
    let mut env = TestEnv::start().await;
    let first = env.sync().await;
    assert_eq!(first.status, RunStatus::Ok, "{first:?}");
    let first_url = env.sim.base_url();

    let other = pluvo_sim::start(
        "127.0.0.1:0".parse().unwrap(),
        SimConfig {
            seed: Seed::example(),
            ..SimConfig::default()
        },
    )
    .await
    .unwrap();
    // (case, edit of the config, what the message must name as configured)
    let other_url = other.base_url();
    type Edit<'a> = Box<dyn Fn(String) -> String + 'a>;
    let cases: [(&str, Edit<'_>, String); 2] = [
        (
            "another url",
            Box::new(|text: String| text.replace(&first_url, &other_url)),
            other_url.clone(),
        ),
        (
            "another client",
            Box::new(|text: String| {
                text.replace("client_id = \"pluvo-sync\"", "client_id = \"other-client\"")
            }),
            "client other-client".to_owned(),
        ),
    ];
    let original = std::fs::read_to_string(&env.config).unwrap();
    for (name, edit, configured) in cases {
        env.reconfigure(|_| edit(original.clone())).await;
        let prepared = env.engine().prepare(Default::default()).await;
        let refusal = prepared.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(refusal.contains(&first_url), "{name}: {refusal}");
        assert!(refusal.contains(&configured), "{name}: {refusal}");
        assert!(refusal.contains("sync.database"), "{name}: {refusal}");

        let report = env.sync().await;
        assert_eq!(report.status, RunStatus::Failed, "{name}: {report:?}");
        assert!(
            report.errors[0].contains("belongs to the Pluvo tenant"),
            "{name}: {:?}",
            report.errors
        );
    }
    assert_eq!(
        other.stats().requests_total,
        0,
        "nothing reached the other tenant"
    );

    // Back to the first tenant, the database works as before (spelled with a trailing slash,
    // it is the same tenant).
    let respelled = original.replace(&first_url, &format!("{first_url}/"));
    env.reconfigure(|_| respelled).await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);
}

#[tokio::test]
async fn a_new_database_records_its_tenant_on_the_first_sync_only() {
    let env = TestEnv::start().await;
    // Planning does not bind: it sends nothing, and may be pointed anywhere.
    env.engine().prepare(Default::default()).await.unwrap();
    let recorded = || async {
        sqlx::query_as::<_, (String, String)>("SELECT url, client_id FROM tenant")
            .fetch_all(env.journal().pool())
            .await
            .unwrap()
    };
    assert!(recorded().await.is_empty());
    assert_eq!(env.sync().await.status, RunStatus::Ok);
    assert_eq!(
        recorded().await,
        [(
            format!("{}/graphql/", env.sim.base_url()),
            "pluvo-sync".to_owned()
        )]
    );
}
