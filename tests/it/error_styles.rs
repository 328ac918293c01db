//! The conflict, auth and validation scenarios under every way pluvo-sim can word its errors.

#![allow(clippy::unwrap_used)]

use pluvo_sim::{AuthErrorMode, ErrorStyle, Faults, Seed, SimConfig};
use pluvo_sync::domain::RunStatus;

use crate::helpers::{TestEnv, assert_each_employee_once, staff};

const STYLES: [ErrorStyle; 3] = [ErrorStyle::Sim, ErrorStyle::Graphene, ErrorStyle::Apollo];

async fn env_with(style: ErrorStyle, auth_error: AuthErrorMode) -> TestEnv {
    TestEnv::start_with(SimConfig {
        seed: Seed::example(),
        faults: Faults {
            error_style: style,
            auth_error,
            ..Faults::default()
        },
        ..SimConfig::default()
    })
    .await
}

/// A swap (two people trading addresses) and a rotation (three people passing theirs round) in
/// one run: each needs the taken-address refusal recognised, whatever its wording.
#[tokio::test]
async fn email_swaps_and_rotations_converge_in_every_error_style() {
    for style in STYLES {
        let env = env_with(style, AuthErrorMode::Http401).await;
        assert_eq!(env.sync().await.status, RunStatus::Ok, "{style:?}");

        let mut rows = staff();
        let emails: Vec<String> = rows.iter().map(|e| e.email.clone()).collect();
        // Swap 1 ↔ 4; rotate 0 → 2 → 3 → 0.
        rows[1].email = emails[4].clone();
        rows[4].email = emails[1].clone();
        rows[0].email = emails[2].clone();
        rows[2].email = emails[3].clone();
        rows[3].email = emails[0].clone();
        env.write_export(&rows);

        let report = env.sync().await;
        assert_eq!(
            report.status,
            RunStatus::Ok,
            "{style:?}: {:?}",
            report.errors
        );
        let state = env.state();
        for e in &rows {
            assert_eq!(
                state.user(&e.number).unwrap().email,
                e.email.to_lowercase(),
                "{style:?}: address of {}",
                e.number
            );
        }
        assert_each_employee_once(&state, &rows);
        assert!(
            state.users.iter().all(|u| !u.email.ends_with(".invalid")),
            "{style:?}: nobody is left on a placeholder"
        );
        assert_eq!(
            env.sync().await.summary.unwrap().operations,
            0,
            "{style:?}: converged in one run"
        );
    }
}

/// Tokens expire mid-service; the refusal is recognised and the token renewed in every wording,
/// over HTTP 401 and over HTTP 200.
#[tokio::test]
async fn expired_tokens_are_renewed_in_every_error_style() {
    for style in STYLES {
        for mode in [AuthErrorMode::Http401, AuthErrorMode::Graphql] {
            let env = env_with(style, mode).await;
            assert_eq!(env.sync().await.status, RunStatus::Ok, "{style:?} {mode:?}");
            env.sim.expire_tokens();
            let mut rows = staff();
            rows[0].first = "Charlotte".to_owned();
            env.write_export(&rows);
            let report = env.sync().await;
            assert_eq!(
                report.status,
                RunStatus::Ok,
                "{style:?} {mode:?}: {:?}",
                report.errors
            );
            assert_eq!(
                env.state().user("000123").unwrap().name,
                "Charlotte Devries",
                "{style:?} {mode:?}"
            );
            assert_eq!(env.stats().token_requests, 2, "{style:?} {mode:?}");
        }
    }
}

/// Pluvo refuses a value for everyone (the mapping sends text to a yes/no field) and nothing else
/// needs doing: per-person refusals, whatever their wording, make the run `partial` (exit 3),
/// not `failed`.
#[tokio::test]
async fn refused_values_make_a_run_partial_in_every_error_style() {
    for style in STYLES {
        let mut env = env_with(style, AuthErrorMode::Http401).await;
        assert_eq!(env.sync().await.status, RunStatus::Ok, "{style:?}");
        env.reconfigure(|t| {
            t.replace(
                "column = \"company_car\"\ntype = \"boolean\"",
                "column = \"company_car\"\ntype = \"string\"",
            )
        })
        .await;
        let out = env.run_cli(&["sync", "--json"]).await;
        out.assert_code(3);
        let report = out.json();
        assert_eq!(report["status"], "partial", "{style:?}: {report:#}");
        assert_eq!(report["ops_ok"], 0, "{style:?}: {report:#}");
        assert_eq!(report["ops_failed"], 6, "{style:?}: {report:#}");
    }
}
