//! The admin API (`/_sim/*`): loopback-only, unauthenticated, not counted in stats. Tests and
//! operators read and steer the tenant through it.

use std::sync::Arc;

use axum::extract::{FromRequest, Request, State as AxState};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::connection::{Peer, Tracker};
use super::{Shared, lock, reset};
use crate::seed::{SeedCertificate, SeedProgress, SeedUser, SetEnrollmentStatus, SetLastLogin};
use crate::state::{ApiError, EnrollmentStatus, Progress, Selector, State, UserKey, parse_date};
use crate::view::StateView;

/// The admin API has no authentication and can rewrite the tenant, so it answers loopback peers
/// only, unless the operator allowed otherwise (`--allow-remote-admin`).
pub(super) async fn loopback_only(
    AxState(shared): AxState<Arc<Shared>>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let peer = request.extensions().get::<Peer>().map(|peer| peer.0.ip());
    if admin_allowed(shared.allow_remote_admin, peer) {
        return next.run(request).await;
    }
    (
        StatusCode::FORBIDDEN,
        axum::Json(serde_json::json!({
            "error": "the admin API answers loopback clients only; start pluvo-sim with --allow-remote-admin to change that"
        })),
    )
        .into_response()
}

/// Whether a peer may use the admin API. A request without a known peer did not come through
/// the accept loop (an in-process router), so it is local by construction. A dual-stack socket
/// bound to `[::]` sees an IPv4 client as an IPv4-mapped address (`::ffff:127.0.0.1`), which
/// `Ipv6Addr::is_loopback` does not count, so the address is canonicalised first.
fn admin_allowed(allow_remote_admin: bool, peer: Option<std::net::IpAddr>) -> bool {
    allow_remote_admin || peer.is_none_or(|ip| ip.to_canonical().is_loopback())
}

// ---- admin ---------------------------------------------------------------------------------

pub(super) async fn admin_state(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let view = StateView::of(&lock(&shared.state));
    track.respond(axum::Json(view).into_response())
}

pub(super) async fn admin_stats(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let stats = lock(&shared.stats).clone();
    track.respond(axum::Json(stats).into_response())
}

pub(super) async fn admin_reset(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let response = match reset(&shared) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    track.respond(response)
}

pub(super) async fn admin_users(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let response = match axum::Json::<Vec<SeedUser>>::from_request(req, &()).await {
        Err(rejection) => rejection.into_response(),
        Ok(axum::Json(users)) => match lock(&shared.state).add_seed_users(&users) {
            Ok(()) => axum::Json(serde_json::json!({ "added": users.len() })).into_response(),
            Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
        },
    };
    track.respond(response)
}

/// Applies a JSON array of admin changes all or nothing: 422 with the first reason and no
/// change if any item is refused, else `{"changed": n}`.
async fn apply_all<T: serde::de::DeserializeOwned>(
    shared: &Shared,
    req: Request,
    apply: impl Fn(&mut State, &T) -> Result<(), ApiError>,
) -> Response {
    match axum::Json::<Vec<T>>::from_request(req, &()).await {
        Err(rejection) => rejection.into_response(),
        Ok(axum::Json(items)) => {
            let mut state = lock(&shared.state);
            let mut next = state.clone();
            for (i, item) in items.iter().enumerate() {
                if let Err(e) = apply(&mut next, item) {
                    let reason = format!("item {i}: {}", e.message);
                    return (StatusCode::UNPROCESSABLE_ENTITY, reason).into_response();
                }
            }
            *state = next;
            axum::Json(serde_json::json!({ "changed": items.len() })).into_response()
        }
    }
}

/// `POST /_sim/progress`: participants' progress, for `portfolioReport`.
pub(super) async fn admin_progress(
    AxState(shared): AxState<Arc<Shared>>,
    req: Request,
) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let response = apply_all(&shared, req, |state, p: &SeedProgress| {
        let progress = Progress {
            progress: p.progress,
            score: p.score,
            completion_date: p.completion_date.as_deref().map(parse_date).transpose()?,
            time_spent_seconds: p.time_spent_seconds,
        };
        state.set_progress(
            &Selector::Ref(p.training.clone()),
            &UserKey::admin(&p.user),
            progress,
        )
    })
    .await;
    track.respond(response)
}

/// `POST /_sim/certificates`: certificates awarded, for `portfolioReport`.
pub(super) async fn admin_certificates(
    AxState(shared): AxState<Arc<Shared>>,
    req: Request,
) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let response = apply_all(&shared, req, |state, c: &SeedCertificate| {
        state.award_certificate(
            &UserKey::admin(&c.user),
            &c.title,
            &c.completion_date,
            c.expiry_date.as_deref(),
            c.score,
        )
    })
    .await;
    track.respond(response)
}

/// `POST /_sim/last-login`: when people last logged in, for the `lastLogin` filters.
pub(super) async fn admin_last_login(
    AxState(shared): AxState<Arc<Shared>>,
    req: Request,
) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let response = apply_all(&shared, req, |state, l: &SetLastLogin| {
        state.set_last_login(&UserKey::admin(&l.user), l.last_login.as_deref())
    })
    .await;
    track.respond(response)
}

/// `POST /_sim/enrollments`: enrollment statuses changed in Pluvo (e.g. cancelled by hand).
pub(super) async fn admin_enrollments(
    AxState(shared): AxState<Arc<Shared>>,
    req: Request,
) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let response = apply_all(&shared, req, |state, e: &SetEnrollmentStatus| {
        state.set_enrollment_status(
            &Selector::Ref(e.offer_event.clone()),
            &UserKey::admin(&e.user),
            EnrollmentStatus::parse(&e.status)?,
        )
    })
    .await;
    track.respond(response)
}

pub(super) async fn admin_faults(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    let response = if req.method() == Method::GET {
        axum::Json(shared.knobs()).into_response()
    } else {
        match axum::Json::<serde_json::Value>::from_request(req, &()).await {
            Err(rejection) => rejection.into_response(),
            Ok(axum::Json(patch)) => {
                let mut knobs = lock(&shared.knobs);
                match knobs.patched(&patch) {
                    Ok(next) => {
                        *knobs = next.clone();
                        axum::Json(next).into_response()
                    }
                    Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
                }
            }
        }
    };
    track.respond(response)
}

pub(super) async fn admin_expire_tokens(
    AxState(shared): AxState<Arc<Shared>>,
    req: Request,
) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    lock(&shared.tokens).expire_all();
    track.respond(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn not_found(AxState(shared): AxState<Arc<Shared>>, req: Request) -> Response {
    let mut track = Tracker::new(&shared, &req, false);
    track.respond(StatusCode::NOT_FOUND.into_response())
}

#[cfg(test)]
mod admin_access_tests {
    use super::admin_allowed;

    #[test]
    fn the_admin_api_answers_loopback_peers_unless_remote_admin_is_allowed() {
        let cases = [
            ("ipv4 loopback", false, Some("127.0.0.1"), true),
            ("ipv6 loopback", false, Some("::1"), true),
            (
                "ipv4 loopback on a dual-stack socket",
                false,
                Some("::ffff:127.0.0.1"),
                true,
            ),
            (
                "ipv4 loopback range",
                false,
                Some("::ffff:127.0.0.53"),
                true,
            ),
            (
                "ipv4-mapped lan peer",
                false,
                Some("::ffff:192.168.1.20"),
                false,
            ),
            ("bridge network peer", false, Some("172.17.0.1"), false),
            ("lan peer", false, Some("192.168.1.20"), false),
            ("lan peer, allowed", true, Some("192.168.1.20"), true),
            ("in-process, no peer", false, None, true),
        ];
        for (name, allow, peer, expected) in cases {
            let peer = peer.map(|ip| ip.parse().unwrap());
            assert_eq!(admin_allowed(allow, peer), expected, "case {name}");
        }
    }
}
