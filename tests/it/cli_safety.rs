//! The binary with hostile surroundings: a reader that closes the pipe early, a wrong database
//! path, a destructive prune, and the database file's permissions.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;

use crate::helpers::{PATIENCE, TestEnv};

/// Runs `pluvo-sync --config <env's> <args>` with stdout a pipe whose reader has already gone,
/// so the first write fails with EPIPE; returns the exit code and stderr.
async fn into_closed_pipe(env: &TestEnv, args: &[&str]) -> (i32, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
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
