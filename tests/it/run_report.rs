//! `sync --json`: a partial run says why, listing its rejected records.

#![allow(clippy::unwrap_used)]

use serde_json::Value;

use crate::helpers::{TestEnv, employee, staff};

#[tokio::test]
async fn sync_json_lists_rejected_records_with_line_field_and_reason() {
    let env = TestEnv::start().await;
    let mut rows = staff();
    for i in 0..25 {
        let mut bad = employee(
            &format!("{:06}", 500 + i),
            "Bad",
            "Address",
            "Sales",
            "Utrecht",
        );
        bad.email = format!("bad{i}.example.com");
        rows.push(bad);
    }
    env.write_export(&rows);

    let output = env.run_cli(&["sync", "--json"]).await;
    output.assert_code(3);
    let report = output.json();
    assert_eq!(report["status"], "partial");
    assert_eq!(report["rows_rejected"], 25);
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| {
            let e = e.as_str().unwrap();
            e.starts_with("25 record(s) rejected")
                && e.contains("line 8 ('email')")
                && e.contains("and 5 more")
        }),
        "{report:#}"
    );
    let rejected = report["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 20, "the first 20 are listed");
    let first = &rejected[0];
    assert_eq!(
        first["location"],
        serde_json::json!({"kind": "line", "line": 8})
    );
    assert_eq!(first["field"], "email");
    assert_eq!(first["employee_ref"], "000500");
    assert!(
        first["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no '@'")),
        "{first:#}"
    );
    assert!(errors.iter().all(Value::is_string));
}
