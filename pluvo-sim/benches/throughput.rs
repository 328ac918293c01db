//! Throughput of small mutations: 8 keep-alive clients against an in-process simulator.
//!
//! The sync's integration tests push thousands of mutations through the simulator, so it must
//! not be the bottleneck (target: at least 2,000 mutations/s on a 2-core machine). Run with
//! `cargo bench -p pluvo-sim`; prints mutations per second.

use std::time::Instant;

use anyhow::Context as _;
use pluvo_sim::{Seed, SimConfig};
use serde_json::json;

const CLIENTS: usize = 8;
const MUTATIONS: usize = 20_000;
const QUERY: &str = "mutation($ref: String!, $user: UserInput!) {
  updateOrCreateUser(ref: $ref, sendInvite: false, user: $user) { created user { id } } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sim = pluvo_sim::start(
        "127.0.0.1:0".parse()?,
        SimConfig {
            seed: Seed::example(),
            ..SimConfig::default()
        },
    )
    .await?;
    let base = sim.base_url();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()?;
    let token: serde_json::Value = http
        .post(format!("{base}/oauth/token/"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "pluvo-sync"),
            ("client_secret", "sim-secret"),
        ])
        .send()
        .await?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned();

    let start = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..CLIENTS {
        let (http, url, token) = (http.clone(), format!("{base}/graphql/"), token.clone());
        workers.push(tokio::spawn(async move {
            for i in (worker..MUTATIONS).step_by(CLIENTS) {
                // Half creates, half updates of the same people: both paths are measured.
                let n = i % (MUTATIONS / 2);
                let body = json!({ "query": QUERY, "variables": {
                    "ref": format!("B{n}"),
                    "user": { "name": format!("Bench {i}"), "email": format!("bench{n}@example.com") },
                }});
                let response = http.post(&url).bearer_auth(&token).json(&body).send().await?;
                anyhow::ensure!(response.status() == 200, "status {}", response.status());
                let body: serde_json::Value = response.json().await?;
                anyhow::ensure!(body.get("errors").is_none(), "errors: {body}");
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    let elapsed = start.elapsed();
    let stats = sim.stats();
    anyhow::ensure!(
        stats.fields.get("updateOrCreateUser") == Some(&(MUTATIONS as u64)),
        "not all mutations ran"
    );
    println!(
        "{MUTATIONS} mutations with {CLIENTS} clients in {:.2}s: {:.0} mutations/s (max in flight {})",
        elapsed.as_secs_f64(),
        MUTATIONS as f64 / elapsed.as_secs_f64(),
        stats.max_in_flight
    );
    sim.shutdown().await;
    Ok(())
}
