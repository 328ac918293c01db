//! The employee lifecycle through the engine: end dates and pre-boarding around midnight in
//! Amsterdam (injected clock), and an HR REST API that fails mid-read archiving nobody.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use pluvo_sync::domain::RunStatus;
use serde_json::json;

use crate::helpers::{TestEnv, employee, staff};

fn at(instant: &str) -> DateTime<Utc> {
    instant.parse().unwrap()
}

#[tokio::test]
async fn an_end_date_archives_from_midnight_amsterdam_time_not_utc() {
    let env = TestEnv::start().await;
    assert_eq!(env.sync().await.status, RunStatus::Ok);
    let mut rows = staff();
    rows[0].end = "23-11-2026".to_owned(); // last working day: Monday 23 November
    env.write_export(&rows);

    // 23:59:59 in Amsterdam (CET, UTC+1) is still the 23rd: the account stays.
    env.clock.set(at("2026-11-23T22:59:59Z"));
    let report = env.sync().await;
    assert_eq!(report.summary.unwrap().archive, 0);
    assert!(!env.state().user("000123").unwrap().archived);

    // One second later it is the 24th in Amsterdam (still the 23rd in UTC): archived.
    env.clock.set(at("2026-11-23T23:00:00Z"));
    let report = env.sync().await;
    assert_eq!(report.summary.unwrap().archive, 1);
    assert!(env.state().user("000123").unwrap().archived);
}

#[tokio::test]
async fn pre_boarding_creates_a_new_hire_exactly_preboarding_days_ahead() {
    let mut env = TestEnv::start().await;
    env.reconfigure(|c| {
        c.replace(
            "time_zone = \"Europe/Amsterdam\"",
            "time_zone = \"Europe/Amsterdam\"\npreboarding_days = 7",
        )
    })
    .await;
    let mut rows = staff();
    let mut hire = employee("000900", "Nina", "Kok", "HR", "Utrecht");
    hire.start = "01-12-2026".to_owned(); // starts Tuesday 1 December: created on 24 November
    rows.push(hire);
    env.write_export(&rows);

    env.clock.set(at("2026-11-23T22:59:59Z"));
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert!(
        env.state().user("000900").is_none(),
        "not before its pre-boarding day"
    );
    let plan = env.engine().prepare(Default::default()).await.unwrap().plan;
    assert_eq!(
        plan.upcoming.len(),
        1,
        "shown as coming up: {:?}",
        plan.upcoming
    );

    env.clock.set(at("2026-11-23T23:00:00Z"));
    assert_eq!(env.sync().await.summary.unwrap().create, 1);
    assert!(!env.state().user("000900").unwrap().archived);
}

/// A Personio-shaped HR API: 3 pages of 4 employees, offset/limit, total in the metadata.
/// `fail_page_3` makes page 3 answer 503, every time.
#[derive(Clone)]
struct FakeHr {
    fail_page_3: Arc<AtomicBool>,
}

async fn employees(
    State(hr): State<FakeHr>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let offset: usize = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(4);
    if offset >= 8 && hr.fail_page_3.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
    }
    let all: Vec<serde_json::Value> = (0..10)
        .map(|i| {
            json!({"type": "Employee", "attributes": {
                "id": {"label": "ID", "value": format!("{:06}", 800 + i)},
                "first_name": {"label": "First name", "value": "Rest"},
                "last_name": {"label": "Last name", "value": format!("Person{i}")},
                "email": {"label": "Email", "value": format!("rest.person{i}@example.com")},
                "department": {"label": "Department", "value": {"type": "Department", "attributes": {"name": "Sales"}}},
                "hire_date": {"label": "Hire date", "value": "2024-01-15T00:00:00+01:00"},
                "termination_date": {"label": "Termination date", "value": null},
            }})
        })
        .collect();
    let page: Vec<_> = all.iter().skip(offset).take(limit).cloned().collect();
    axum::Json(json!({"success": true, "data": page, "metadata": {"total_elements": all.len()}}))
        .into_response()
}

#[tokio::test]
async fn a_rest_source_failing_on_page_3_fails_the_run_and_archives_nobody() {
    let hr = FakeHr {
        fail_page_3: Arc::new(AtomicBool::new(false)),
    };
    let app = axum::Router::new()
        .route("/v1/company/employees", get(employees))
        .with_state(hr.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hr_url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut env = TestEnv::start().await;
    let source = format!(
        r#"[source.rest]
base_url = "{hr_url}"
path = "/company/employees"
records = "data"
max_attempts = 2
initial_backoff_ms = 10

[source.rest.auth]
kind = "bearer"
token = "hr-token"

[source.rest.pagination]
kind = "offset"
skip_param = "offset"
take_param = "limit"
page_size = 4
total = "metadata.total_elements"

[source.rest.fields]
employee_number = "attributes.id.value"
first_name = "attributes.first_name.value"
last_name = "attributes.last_name.value"
email = "attributes.email.value"
department = "attributes.department.value.attributes.name"
start_date = "attributes.hire_date.value"
end_date = "attributes.termination_date.value"
"#
    );
    env.reconfigure(|config| {
        let start = config.find("[source.csv]").unwrap();
        let end = config.find("[mapping]").unwrap();
        let config = format!("{}{source}\n{}", &config[..start], &config[end..]);
        // The API has no location, contract, car or language columns; it writes ISO dates.
        config
            .replace("language = { column = \"language\", default = \"NL\" }", "language = { default = \"NL\" }")
            .replace("format = \"dd-mm-yyyy\"", "format = \"iso\"")
            .replace(", \"loc-{location|slug}\"", "")
            .replace(
                "[[mapping.categories]]\nref = \"contract_type\"\ncolumn = \"contract_type\"\ntype = \"choice\"\n\n[[mapping.categories]]\nref = \"has_company_car\"\ncolumn = \"company_car\"\ntype = \"boolean\"\n\n",
                "",
            )
    })
    .await;

    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Ok, "{:?}", report.errors);
    assert_eq!(
        env.state()
            .users
            .iter()
            .filter(|u| u.ref_.is_some())
            .count(),
        10
    );

    hr.fail_page_3.store(true, Ordering::SeqCst);
    let before = env.stats().requests_total;
    let report = env.sync().await;
    assert_eq!(report.status, RunStatus::Failed);
    assert!(report.errors[0].contains("page 3"), "{:?}", report.errors);
    assert!(
        env.state().users.iter().all(|u| !u.archived),
        "a partial read archived nobody"
    );
    assert_eq!(
        env.stats().requests_total,
        before,
        "nothing was sent to Pluvo"
    );
    let run = env.journal().latest_run().await.unwrap().unwrap();
    assert_eq!(run.status.as_str(), "failed");
    assert!(run.error_summary.unwrap().contains("page 3"));
}
