//! People the plan holds or archives are named, with why, in `plan`, `sync` and the journal.

#![allow(clippy::unwrap_used)]

use pluvo_sync::domain::RunStatus;

use crate::helpers::{TestEnv, staff};

/// Employee numbers rewritten in a new format for existing people: nobody is archived, no
/// account is created twice, the run ends partial, and both numbers are journaled with advice.
#[tokio::test]
async fn a_changed_employee_number_format_archives_nobody_and_says_what_to_do() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);
    let mut rows = staff();
    rows[0].number = "E 000123".to_owned();
    rows[0].email = rows[0].email.to_uppercase();
    rows[1].number = "00E000124".to_owned();
    env.write_export(&rows);

    let plan = env.run_cli(&["plan"]).await;
    plan.assert_code(0);
    assert!(
        plan.stdout.contains("Suspected employee-number changes")
            && plan
                .stdout
                .contains("000123 is missing from the source and new employee E 000123"),
        "{}",
        plan.stdout
    );

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Partial, "{:?}", report.errors);
    let state = env.state();
    for (old, new) in [("000123", "E 000123"), ("000124", "00E000124")] {
        assert!(
            !state.user(old).unwrap().archived,
            "{old} keeps their account"
        );
        assert!(state.user(new).is_none(), "no second account for {new}");
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.contains(old) && e.contains(new) && e.contains("change the user's ref")),
            "{:?}",
            report.errors
        );
    }
    let run = env.journal().latest_run().await.unwrap().unwrap();
    let ops = env.journal().operations_of_person("000123").await.unwrap();
    let op = ops.iter().find(|o| o.run_id == run.id).unwrap();
    assert_eq!(
        (op.kind.as_str(), op.target.as_deref(), op.status.as_str()),
        ("suspected_ref_change", Some("E 000123"), "rejected")
    );
    let ops = env
        .journal()
        .operations_of_person("E 000123")
        .await
        .unwrap();
    assert_eq!(ops[0].target.as_deref(), Some("000123"));
}

/// Who is archived and why, who was withheld, and people who left before their first sync, in
/// the operator's three views: `plan`, `sync` and `journal show`.
#[tokio::test]
async fn plan_sync_and_the_journal_name_archived_and_withheld_people_and_why() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);
    let mut rows = staff();
    rows.remove(1); // 000124: absent
    rows[1].end = "01-11-2026".to_owned(); // 000131: end date passed
    let mut gone = crate::helpers::employee("000999", "Gone", "Early", "Sales", "Utrecht");
    gone.end = "01-10-2026".to_owned(); // left before the sync ever created them
    rows.push(gone);
    env.write_export(&rows);

    let plan = env.run_cli(&["plan"]).await;
    plan.assert_code(0);
    for expected in [
        "000124       archive   absent from the source",
        "000131       archive   end date 2026-11-01 passed",
        "7 people: 2 to archive, 4 unchanged, 1 left before they were ever synced",
    ] {
        assert!(
            plan.stdout.contains(expected),
            "{expected}\n{}",
            plan.stdout
        );
    }

    // A guard that allows one archive: both are withheld, by name.
    env.edit_config(|text| {
        format!("{text}\n[sync.archive_guard]\nmax_people = 1\nmax_percent = 0.0\n")
    });
    let plan = env.run_cli(&["plan"]).await;
    assert!(
        plan.stdout
            .contains("= 000124       withheld  absent from the source")
            && plan
                .stdout
                .contains("= 000131       withheld  end date 2026-11-01 passed")
            && plan.stdout.contains("7 people: 2 archive(s) withheld"),
        "{}",
        plan.stdout
    );
    let sync = env.run_cli(&["sync"]).await;
    sync.assert_code(3);
    assert!(
        sync.stdout
            .contains("= 000124       withheld  absent from the source"),
        "{}",
        sync.stdout
    );
    let show = env
        .run_cli(&["journal", "show", "--", &last_run(&env).await])
        .await;
    assert!(
        show.stdout.contains(
            "000124       archive         skipped  archived: false → true (absent from the source)"
        ),
        "{}",
        show.stdout
    );

    // Without the guard: archived, and `sync` and the journal say why.
    env.edit_config(|text| text.replace("max_people = 1", "max_people = 10"));
    let sync = env.run_cli(&["sync"]).await;
    sync.assert_code(0);
    assert!(
        sync.stdout
            .contains("- 000131       archive   end date 2026-11-01 passed"),
        "{}",
        sync.stdout
    );
    let show = env
        .run_cli(&["journal", "show", &last_run(&env).await])
        .await;
    assert!(
        show.stdout
            .contains("archived: false → true (end date 2026-11-01 passed)")
            && show
                .stdout
                .contains("archived: false → true (absent from the source)"),
        "{}",
        show.stdout
    );
}

async fn last_run(env: &TestEnv) -> String {
    env.journal().latest_run().await.unwrap().unwrap().id
}
