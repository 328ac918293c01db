//! `pluvo-sync check` as an operator runs it: a tenant that fits, an unreachable Pluvo, and config
//! problems that name where a value came from.

#![allow(clippy::unwrap_used)]

use pluvo_sim::{Seed, SimConfig};

use crate::helpers::{TestEnv, run, service_tables};

/// The lines of `check`'s report that say FAIL.
fn failures(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("FAIL")).collect()
}

#[tokio::test]
async fn check_passes_against_a_tenant_that_fits_the_mapping() {
    let env = TestEnv::start().await;
    let out = env.run_cli(&["check"]).await;
    out.assert_code(0);
    assert!(failures(&out.stdout).is_empty(), "{out:#?}");
    for check in ["config", "source", "pluvo token", "groups", "custom fields"] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check} not reported ok: {out:#?}"
        );
    }
}

#[tokio::test]
async fn check_against_an_unreachable_pluvo_fails_fast_with_one_line() {
    let env = TestEnv::start().await;
    // A port nothing listens on: connections are refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    env.edit_config(|t| t.replace(&env.sim.base_url(), &url));

    let out = env.run_cli(&["--log-format", "text", "check"]).await;
    out.assert_code(1);
    let failed = failures(&out.stdout);
    assert_eq!(failed.len(), 1, "one line for Pluvo: {out:#?}");
    assert!(
        failed[0].contains("pluvo token")
            && failed[0].contains("could not talk to Pluvo")
            && failed[0].contains(&url),
        "{out:#?}"
    );
    // The test config allows 8 attempts; a check makes one, so nothing is retried or warned.
    assert!(!out.stderr.contains("retrying"), "{out:#?}");
    assert!(!out.stderr.contains("WARN"), "{out:#?}");
    // The source, which needs no Pluvo, is still checked.
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("source")),
        "{out:#?}"
    );
}

#[tokio::test]
async fn a_conflict_with_a_value_from_the_environment_names_the_variable() {
    let env = TestEnv::start().await;
    let token = env.dir.path().join("trigger-token");
    std::fs::write(&token, "from-a-file\n").unwrap();
    env.edit_config(|t| {
        let tables = service_tables();
        format!("{t}\n[schedule]\ncron = \"0 2 * * *\"\n{tables}").replace(
            "trigger_token = ",
            &format!("trigger_token_file = \"{}\"\n# ", token.display()),
        )
    });
    let out = run(env
        .cli()
        .env("PLUVO_SYNC__SERVER__TRIGGER_TOKEN", "from-the-environment")
        .arg("run"))
    .await;
    out.assert_code(2);
    assert!(
        out.stderr.contains("not both") && out.stderr.contains("PLUVO_SYNC__SERVER__TRIGGER_TOKEN"),
        "{out:#?}"
    );
    assert!(
        !out.stderr.contains("from-the-environment"),
        "no secret in errors: {out:#?}"
    );
}

#[tokio::test]
async fn check_schema_passes_against_a_tenant_with_the_vendored_schema() {
    let env = TestEnv::start().await;
    let out = env.run_cli(&["check", "--schema"]).await;
    out.assert_code(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains("schema"))
        .unwrap_or_else(|| panic!("no schema line: {out:#?}"));
    assert!(line.starts_with("ok"), "{out:#?}");
}

#[tokio::test]
async fn check_schema_lists_every_difference_in_what_the_client_uses() {
    let sdl = pluvo_sim::SDL.to_owned();
    let edits = [
        // A field the client selects.
        ("  created: Boolean\n", ""),
        // An argument the client passes, typed differently.
        (
            "sendInvite: Boolean, user: UserInput!",
            "sendInvite: String, user: UserInput!",
        ),
        // A value of an enum the client sends.
        ("  EN\n  DE\n", "  EN\n"),
        // A mutation the client never sends: not a difference that matters.
        (
            "  updateUser(id: UUID, ref: String, user: UserInput!): UpdateUser\n",
            "",
        ),
    ];
    let mut tenant = sdl.clone();
    for (from, to) in edits {
        assert!(tenant.contains(from), "the vendored SDL lacks {from:?}");
        tenant = tenant.replacen(from, to, 1);
    }
    let env = TestEnv::start_with(SimConfig {
        seed: Seed::example(),
        schema_sdl: Some(tenant),
        ..SimConfig::default()
    })
    .await;
    let out = env.run_cli(&["check", "--schema"]).await;
    out.assert_code(1);
    let report = out
        .stdout
        .split_once("FAIL schema")
        .unwrap_or_else(|| panic!("no failed schema check: {out:#?}"))
        .1;
    let differences: Vec<&str> = report
        .lines()
        .skip(1)
        .map(str::trim)
        .take_while(|l| !l.is_empty() && !l.starts_with("ok") && !l.starts_with("FAIL"))
        .collect();
    assert_eq!(
        differences,
        [
            "Mutation.updateOrCreateUser(sendInvite:): the tenant's type is String, schema/pluvo.graphql has Boolean",
            "UpdateOrCreateUser.created: missing in the tenant",
            "enum Language: the tenant has no value DE",
        ],
        "{out:#?}"
    );
}

/// The service's own keys are resolved with the rest of the configuration, so `check` (which
/// never starts the service) still reports a bad schedule and a bad listen address, beside a
/// problem with another key, in one pass.
#[tokio::test]
async fn check_reports_bad_schedule_and_listener_keys_with_the_rest() {
    let env = TestEnv::start().await;
    env.edit_config(|t| {
        format!(
            "{t}\n[schedule]\ncron = \"0 61 * * *\"\n\n[journal]\nretention_days = 0\n\n\
             [server]\nlisten = \"localhost\"\ntrigger_token = \"t\"\n"
        )
    });
    let out = env.run_cli(&["check"]).await;
    out.assert_code(2);
    for key in [
        "schedule.cron: '0 61 * * *' is not a valid cron expression",
        "server.listen: 'localhost' is not an address",
        "journal.retention_days: 0 would delete",
    ] {
        assert!(out.stderr.contains(key), "{key} not reported: {out:#?}");
    }
}
