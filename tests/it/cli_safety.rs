//! The binary with hostile surroundings: a reader that closes the pipe early, a wrong database
//! path, a destructive prune, and the database file's permissions.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;

use crate::helpers::{PATIENCE, TestEnv};

/// Runs `pluvo-sync --config <env's> <args>` with stdout a pipe whose reader has already gone,
/// so the first write fails with EPIPE; returns the exit code and stderr.
async fn into_closed_pipe(env: &TestEnv, args: &[&str]) -> (i32, String) {
    // A socket pair stands in for the pipe: writing to it once the other end is closed fails
    // with EPIPE just the same.
    let (reader, writer) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(reader);
    let writer = std::os::fd::OwnedFd::from(writer);
    let child = env
        .cli()
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .expect("finishes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let code = output
        .status
        .code()
        .unwrap_or_else(|| panic!("{args:?} was killed by a signal: {stderr}"));
    (code, stderr)
}

#[tokio::test]
async fn every_printing_command_ends_quietly_when_its_reader_goes_away() {
    let env = TestEnv::start().await;
    env.run_cli(&["sync"]).await.assert_code(0);
    let runs = env.run_cli(&["journal", "runs", "--json"]).await.json();
    let run_id = runs[0]["id"].as_str().unwrap().to_owned();

    let cases: [(&str, Vec<&str>); 8] = [
        ("plan", vec!["plan"]),
        ("plan --json", vec!["plan", "--json"]),
        ("journal runs", vec!["journal", "runs"]),
        ("journal show", vec!["journal", "show", &run_id]),
        (
            "journal show --json",
            vec!["journal", "show", &run_id, "--json"],
        ),
        ("journal person", vec!["journal", "person", "000123"]),
        ("check", vec!["check"]),
        // Nothing left to change: the run is ok, and its report goes nowhere.
        ("sync", vec!["sync"]),
    ];
    for (name, args) in cases {
        let (code, stderr) = into_closed_pipe(&env, &args).await;
        assert!(
            !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
            "{name}: {stderr}"
        );
        assert_eq!(code, 0, "{name}: the command's own exit code; {stderr}");
    }
}

/// A variant of the env's config with `sync.database` at `database`.
fn with_database(env: &TestEnv, name: &str, database: &std::path::Path) -> std::path::PathBuf {
    env.config_variant(name, |text| {
        text.replace(
            &format!("database = \"{}\"", env.database.display()),
            &format!("database = \"{}\"", database.display()),
        )
    })
}

#[tokio::test]
async fn journal_commands_on_a_wrong_database_path_fail_and_create_nothing() {
    let env = TestEnv::start().await;
    let wrong = env.dir.path().join("typo-dir").join("pluvo-sync.db");
    let config = with_database(&env, "wrong-db", &wrong);
    let cases: [&[&str]; 4] = [
        &["journal", "runs"],
        &["journal", "show", "abc"],
        &["journal", "person", "000123"],
        &["journal", "prune", "--older-than-days", "400"],
    ];
    for args in cases {
        let out = crate::helpers::run(
            crate::helpers::pluvo_sync_command()
                .arg("--config")
                .arg(&config)
                .args(args),
        )
        .await;
        assert_eq!(out.code, 1, "{args:?}: {out:#?}");
        assert!(
            out.stderr.contains("no database at") && out.stderr.contains("sync.database"),
            "{args:?}: {out:#?}"
        );
    }
    assert!(
        !wrong.parent().unwrap().exists(),
        "neither the database nor its directory was created"
    );
}

#[tokio::test]
async fn pruning_recent_runs_needs_yes() {
    let env = TestEnv::start().await;
    env.run_cli(&["sync"]).await.assert_code(0);
    // Timestamps have whole seconds: let the run be strictly older than "now - 0 days".
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let runs = || async { env.run_cli(&["journal", "runs", "--json"]).await.json() };

    let refused = env
        .run_cli(&["journal", "prune", "--older-than-days", "0"])
        .await;
    refused.assert_code(2);
    assert!(
        refused.stderr.contains("would delete 1 run(s)") && refused.stderr.contains("--yes"),
        "{refused:#?}"
    );
    assert_eq!(runs().await.as_array().unwrap().len(), 1, "nothing deleted");

    // At or above the minimum no confirmation is needed (and this young run stays).
    env.run_cli(&["journal", "prune", "--older-than-days", "30"])
        .await
        .assert_code(0);
    assert_eq!(runs().await.as_array().unwrap().len(), 1);

    let confirmed = env
        .run_cli(&["journal", "prune", "--older-than-days", "0", "--yes"])
        .await;
    confirmed.assert_code(0);
    assert!(
        confirmed.stdout.contains("pruned 1 run(s)"),
        "{confirmed:#?}"
    );
    assert_eq!(runs().await.as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn the_database_a_sync_creates_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;

    let env = TestEnv::start().await;
    // TestEnv opened the database already; start from nothing, as a first install does.
    let fresh = env.dir.path().join("new").join("pluvo-sync.db");
    let config = with_database(&env, "fresh-db", &fresh);
    let out = crate::helpers::run(
        crate::helpers::pluvo_sync_command()
            .arg("--config")
            .arg(&config)
            .arg("plan"),
    )
    .await;
    out.assert_code(0);
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
}
