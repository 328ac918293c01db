//! Planning throughput: 100k employees against a 100k snapshot.
//!
//! Target (issue): under 1 s and under 200 MB peak RSS on the 2-core CI machine. Prints figures;
//! asserts nothing, so a noisy machine cannot make it flake. Run with `cargo bench --bench plan`.
//!
//! Peak RSS is the whole process's high-water mark (VmHWM), inputs included, as a real run would
//! hold them. It was 326 MB with B-tree collections and a `String` per ref; sorted-Vec
//! collections (`domain::collections`), interned group and category refs and shared employee
//! numbers brought it to 139 MB, and planning from 66 to 27 ms.

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::NaiveDate;
use pluvo_sync::domain::{Categories, CategoryValue};
use pluvo_sync::domain::{
    CategoryRef, Email, EmployeeRef, GroupRef, Groups, Language, Role, Roles,
};
use pluvo_sync::sync::mapping::{DesiredUser, Mapped};
use pluvo_sync::sync::plan::{Policy, plan};
use pluvo_sync::sync::snapshot::{Snapshot, SnapshotUser};

const PEOPLE: usize = 100_000;

fn desired(i: usize) -> DesiredUser {
    let department = ["sales", "finance", "engineering", "hr"][i % 4];
    DesiredUser {
        employee_ref: EmployeeRef::parse(&format!("{i:06}")).expect("valid ref"),
        name: format!("Employee {i}"),
        email: Email::parse(&format!("employee{i}@example.com")).expect("valid email"),
        roles: Roles::from([Role::Participant]),
        language: Some(Language::Nl),
        categories: Categories::from([
            (
                CategoryRef::parse("department").expect("valid ref"),
                CategoryValue::String(department.to_owned()),
            ),
            (
                CategoryRef::parse("contract_type").expect("valid ref"),
                CategoryValue::Choice("Permanent".to_owned()),
            ),
        ]),
        groups: Groups::from([
            GroupRef::parse("all-employees").expect("valid ref"),
            GroupRef::parse(&format!("dept-{department}")).expect("valid ref"),
        ]),
        start_date: None,
        end_date: None,
    }
}

fn acknowledged(d: &DesiredUser) -> SnapshotUser {
    SnapshotUser {
        pluvo_id: Some(format!(
            "00000000-0000-4000-8000-{:012}",
            d.employee_ref.as_str().len()
        )),
        ..SnapshotUser::acknowledged(d)
    }
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let build = Instant::now();
    let mut people = BTreeMap::new();
    let mut snapshot = Snapshot::new();
    for i in 0..PEOPLE {
        let d = desired(i);
        snapshot.insert(d.employee_ref.clone(), acknowledged(&d));
        // Churn typical of a nightly export: 1% renamed, 0.5% moved department.
        let mut d = d;
        if i % 100 == 0 {
            d.name.push_str(" Jr");
        }
        if i % 200 == 1 {
            d.groups = Groups::from([
                GroupRef::parse("all-employees").expect("valid ref"),
                GroupRef::parse("dept-sales").expect("valid ref"),
            ]);
        }
        people.insert(d.employee_ref.clone(), d);
    }
    // 0.2% leavers and 0.2% new hires.
    for i in (0..PEOPLE).step_by(500) {
        people.remove(&EmployeeRef::parse(&format!("{i:06}")).expect("valid ref"));
        let d = desired(PEOPLE + i);
        people.insert(d.employee_ref.clone(), d);
    }
    let mapped = Mapped {
        people,
        ..Mapped::default()
    };
    let built_in = build.elapsed();
    let rss_inputs = peak_rss_mb();

    let managed = |g: &GroupRef| g.as_str() == "all-employees" || g.as_str().starts_with("dept-");
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).expect("valid date");
    let mut timings = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let started = Instant::now();
        let result = plan(&snapshot, &mapped, &managed, &Policy::default(), today);
        timings.push(started.elapsed());
        last = Some(result);
    }
    timings.sort();
    let result = last.expect("planned at least once");

    println!("plan: {PEOPLE} employees against a {PEOPLE}-person snapshot");
    println!(
        "  inputs built in      {:>8.1} ms",
        built_in.as_secs_f64() * 1e3
    );
    println!(
        "  plan (best / median / worst of 5) {:.1} / {:.1} / {:.1} ms",
        timings[0].as_secs_f64() * 1e3,
        timings[2].as_secs_f64() * 1e3,
        timings[4].as_secs_f64() * 1e3
    );
    println!(
        "  planned: {} create, {} update, {} archive, {} group adds, {} group removes, {} operations",
        result.summary.create,
        result.summary.update,
        result.summary.archive,
        result.summary.group_add,
        result.summary.group_remove,
        result.summary.operations
    );
    match (rss_inputs, peak_rss_mb()) {
        (Some(inputs), Some(peak)) => {
            println!("  peak RSS {peak:.0} MB (of which inputs {inputs:.0} MB)")
        }
        _ => println!("  peak RSS unavailable (no /proc)"),
    }
}
