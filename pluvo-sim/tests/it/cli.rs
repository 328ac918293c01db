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
    let (_child, line) = spawn(&[
        "--listen",
        "127.0.0.1:0",
        "--seed",
        seed,
        "--rate",
        "100",
        "--membership-delay",
        "1",
    ])
    .await;
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
    assert!(
        state.training("safety-2024").is_some() && state.offer_event("intro-day-2026-q1").is_some(),
        "the seed's learning side is served too: {state:?}"
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

/// Starts the binary with `args`; returns it and the first line it printed.
async fn spawn(args: &[&str]) -> (Child, String) {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_pluvo-sim"))
            .args(args)
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
    (child, line)
}

/// Starts the binary on `listen` and returns it with the port it printed.
async fn spawn_on(listen: &str) -> (Child, u16) {
    let (child, line) = spawn(&["--listen", listen]).await;
    let port = line
        .trim()
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("first line was {line:?}"));
    (child, port)
}

#[tokio::test]
async fn bound_to_all_ipv6_addresses_it_serves_its_admin_api_to_ipv4_loopback() {
    // A dual-stack socket: IPv4 clients arrive as ::ffff:127.0.0.1.
    let (_child, port) = spawn_on("[::]:0").await;
    for base in [
        format!("http://127.0.0.1:{port}"),
        format!("http://[::1]:{port}"),
    ] {
        let response = reqwest::get(format!("{base}/_sim/state")).await.unwrap();
        assert_eq!(response.status(), 200, "{base}");
    }
}

#[tokio::test]
async fn sigterm_stops_it_gracefully() {
    let (mut child, port) = spawn_on("127.0.0.1:0").await;
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        reqwest::get(format!("{base}/_sim/state"))
            .await
            .unwrap()
            .status(),
        200
    );
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    for _ in 0..100 {
        if let Some(exited) = child.0.try_wait().unwrap() {
            status = Some(exited);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = status.expect("pluvo-sim exits within 5 s of SIGTERM");
    // Handled, so it exits 0 rather than being killed by the signal (or, as PID 1 in a
    // container, ignoring it).
    assert_eq!(status.code(), Some(0), "{status:?}");
}
