//! The binary: prints its address first and serves the seed it was given.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Kills the child even when an assertion fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_listening_line_and_serves_the_seed() {
    let seed = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/sim-seed.toml");
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_pluvo-sim"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--seed",
                seed,
                "--rate",
                "100",
                "--membership-delay",
                "1",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with('/'),
        "{base}"
    );

    let state: pluvo_sim::StateView = reqwest::get(format!("{base}/_sim/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state,
        pluvo_sim::StateView {
            users: state.users.clone()
        }
    );
    assert!(state.user_by_email("lotte.devries@example.com").is_some());
    let knobs: pluvo_sim::Faults = reqwest::get(format!("{base}/_sim/faults"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((knobs.rate, knobs.membership_delay), (100.0, 1));
}
