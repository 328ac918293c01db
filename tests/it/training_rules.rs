//! Training rules from the operator's side: `check` proves every training and offer event a rule
//! names exists, and `sync`/`run` refuse rules this version cannot apply yet, sending nothing.

#![allow(clippy::unwrap_used)]

use crate::helpers::TestEnv;

const RULES: &str = r#"
[[assign]]
name = "safety-basics"
training = "safety-2024"
when = 'department in ["Engineering", "Sales"]'
remove = "when_unmatched"

[[enrol]]
name = "intro-day"
offer_event = "intro-day-2026-q1"
when = 'days_since_start <= 30'
"#;

fn with_rules(env: &TestEnv, rules: &str) {
    env.edit_config(|toml| format!("{toml}\n{rules}"));
}

#[tokio::test]
async fn check_finds_every_training_and_offer_event_a_rule_names() {
    let env = TestEnv::start().await;
    with_rules(&env, RULES);
    let out = env.run_cli(&["check"]).await;
    out.assert_code(0);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("ok") && l.contains("training rules")),
        "{out:#?}"
    );

    let typos = RULES
        .replace("safety-2024", "safety-2042")
        .replace("intro-day-2026-q1", "intro-day-2062-q1");
    env.edit_config(|toml| toml.replace(RULES, &typos));
    let out = env.run_cli(&["check"]).await;
    out.assert_code(1);
    let failure = out
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL") && l.contains("training rules"))
        .unwrap_or_else(|| panic!("{out:#?}"));
    assert!(
        failure.contains("training 'safety-2042' (rule safety-basics) does not exist"),
        "{failure}"
    );
    assert!(
        failure.contains("offer event 'intro-day-2062-q1' (rule intro-day) does not exist"),
        "{failure}"
    );
}

#[tokio::test]
async fn sync_and_run_refuse_rules_they_cannot_apply_and_send_nothing() {
    let env = TestEnv::start().await;
    with_rules(&env, RULES);
    let before = env.stats().requests_total;
    for command in ["sync", "run"] {
        let out = env.run_cli(&[command]).await;
        out.assert_code(2);
        assert!(
            out.stderr.contains("safety-basics, intro-day")
                && out.stderr.contains("does not apply them yet"),
            "{command}: {out:#?}"
        );
    }
    assert_eq!(env.stats().requests_total, before);
    assert!(env.state().user("000123").is_none());
}

#[tokio::test]
async fn a_bad_expression_stops_every_command_at_load_naming_rule_and_position() {
    let env = TestEnv::start().await;
    with_rules(
        &env,
        &RULES.replace("days_since_start <= 30", "days_since_start <="),
    );
    let out = env.run_cli(&["check"]).await;
    out.assert_code(2);
    assert!(
        out.stderr
            .contains("enrol[0].when (intro-day): syntax error at line 1 column"),
        "{out:#?}"
    );
}

#[tokio::test]
async fn plan_shows_per_rule_who_would_be_added_in_text_and_json() {
    let env = TestEnv::start().await;
    with_rules(&env, RULES);
    let out = env.run_cli(&["plan"]).await;
    out.assert_code(0);
    assert!(
        out.stdout
            .contains("safety-basics → training safety-2024 as PARTICIPANT\n    add 4: 000123, 000124, 000145, 000160"),
        "{out:#?}"
    );

    let json = env.run_cli(&["plan", "--json"]).await.json();
    let rules = json["training_rules"]["rules"].as_array().unwrap();
    assert_eq!(rules[0]["rule"], "safety-basics");
    assert_eq!(
        rules[0]["add"],
        serde_json::json!(["000123", "000124", "000145", "000160"])
    );
    assert_eq!(json["training_rules"]["errors"], serde_json::json!([]));
    // Nothing was sent to Pluvo for it, and nothing is planned for the enrol rule: everyone
    // started in 2019.
    assert_eq!(rules.len(), 1, "{rules:?}");
}
