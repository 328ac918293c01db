//! The connection side: our own accept loop, the per-request extensions it inserts (peer,
//! kill switch), per-request bookkeeping, and the small response helpers every endpoint uses.
//!
//! Own accept loop instead of `axum::serve` because a "reset" fault must end the TCP connection
//! without any HTTP response (see [`Kill`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use super::{Shared, lock};
use crate::graphql;

/// The TCP peer of a request; inserted into every request by the accept loop.
#[derive(Clone, Copy, Debug)]
pub(super) struct Peer(pub(super) SocketAddr);

/// Drops the current connection when fired; inserted into every request by the accept loop.
#[derive(Clone, Default)]
pub(super) struct Kill(Arc<Notify>);

/// Per-request bookkeeping: stats, in-flight gauge and the one log line, written on drop so
/// requests whose connection is dropped are logged too.
pub(super) struct Tracker {
    shared: Arc<Shared>,
    counted: bool,
    method: Method,
    path: String,
    start: Instant,
    status: Option<u16>,
    pub(super) fields: Vec<String>,
}

impl Tracker {
    pub(super) fn new(shared: &Arc<Shared>, req: &Request, counted: bool) -> Self {
        if counted {
            let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            let mut stats = lock(&shared.stats);
            stats.requests_total += 1;
            stats.max_in_flight = stats.max_in_flight.max(now);
        }
        Self {
            shared: Arc::clone(shared),
            counted,
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            start: Instant::now(),
            status: None,
            fields: Vec::new(),
        }
    }

    pub(super) fn respond(&mut self, response: Response) -> Response {
        let status = response.status().as_u16();
        self.status = Some(status);
        if self.counted {
            *lock(&self.shared.stats)
                .requests_by_status
                .entry(status)
                .or_default() += 1;
        }
        response
    }

    pub(super) fn fault(&self, kind: &str) {
        *lock(&self.shared.stats)
            .faults
            .entry(kind.to_owned())
            .or_default() += 1;
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if self.counted {
            self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        let status = self
            .status
            .map_or_else(|| "dropped".to_owned(), |s| s.to_string());
        tracing::info!(
            method = %self.method,
            path = %self.path,
            status = %status,
            duration_ms = %format_args!("{:.3}", self.start.elapsed().as_secs_f64() * 1000.0),
            fields = %self.fields.join(","),
            "request"
        );
    }
}

pub(super) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

pub(super) fn error_response(status: StatusCode, message: &str, code: Option<&str>) -> Response {
    json_response(status, graphql::message_body(message, code))
}

pub(super) async fn sleep_ms(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// Ends the connection without a response. The accept loop drops the connection when fired;
/// this future never completes, so it is dropped along with it.
pub(super) async fn drop_connection(req_kill: Option<Kill>) -> Response {
    match req_kill {
        Some(kill) => {
            kill.0.notify_one();
            std::future::pending().await
        }
        // Only reachable if the router is served by something other than our accept loop.
        None => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot drop connection here",
            None,
        ),
    }
}

pub(super) async fn accept_loop(
    listener: TcpListener,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            // A send or a dropped handle both mean stop.
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(serve_connection(stream, router.clone(), stopped.clone()));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) {
    // Small request/response pairs: Nagle would add tens of milliseconds per round trip.
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok().map(Peer);
    let kill = Kill::default();
    let per_request = kill.clone();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(per_request.clone());
            if let Some(peer) = peer {
                req.extensions_mut().insert(peer);
            }
            let mut router = router.clone();
            async move {
                let response = tower_service::Service::call(&mut router, req.map(Body::new)).await;
                Ok::<_, Infallible>(response.unwrap_or_else(|never| match never {}))
            }
        });
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        // Dropping the connection future closes the socket with no response written.
        () = kill.0.notified() => {}
        _ = stopped.changed() => {}
    }
}
