//! How many items go in one batched document: a size that finds its level.
//!
//! Pluvo documents no limit on a document's size or complexity, and a bigger batch means fewer
//! requests (measured at 10k people: batch 100 is 2.5× faster than 25). So the [`BatchSizer`]
//! starts at `pluvo.batch_size`, grows while Pluvo accepts the documents, up to
//! `pluvo.max_batch_size`, and shrinks at once when Pluvo refuses a document for its size or
//! complexity ([`is_too_big`]: a GraphQL error saying so, HTTP 413, a timeout). A size that was
//! refused is not tried again in the same client, so it does not bounce off the limit every
//! few documents. This is the one place a batch's size is decided: the apply stage asks
//! [`super::PluvoClient::batch_size`] for each document it forms, and the client splits a
//! refused document rather than choosing sizes of its own.
//!
//! The membership cap ([`REFS_PER_MEMBERSHIP_FIELD`]) is the other size, per root field.

use std::sync::Mutex;

use super::PluvoError;
use super::error::{GraphqlError, Signals, any_in};

/// User refs in one `addUsersToGroup` / `removeUsersFromGroup` root field. Pluvo documents no
/// limit; this keeps one field well inside the timeout for large groups. It is a cap per field,
/// not per document: a group of 101 new members is two fields of one document.
pub const REFS_PER_MEMBERSHIP_FIELD: usize = 100;

/// Accepted documents at the current size before it grows. One is enough evidence that the
/// size works; growing by half each time reaches a maximum of 4× the start in four documents.
const ACCEPTED_BEFORE_GROWING: u32 = 1;

/// Accepted documents at a ceiling lowered by a refusal before the ceiling is forgotten and the
/// size may grow again: a refusal may have been a passing overload (a timeout), and a daemon
/// should not be held to it for the rest of its life.
const ACCEPTED_BEFORE_PROBING: u32 = 50;

/// The adaptive batch size, shared by every clone of a client (and so by the concurrent calls of
/// one run).
#[derive(Debug)]
pub(crate) struct BatchSizer {
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    current: usize,
    /// The largest size not known to be refused: the configured maximum until a refusal.
    ceiling: usize,
    /// Documents accepted at `current` since it last changed.
    accepted: u32,
    /// The configured maximum, which `ceiling` returns to after [`ACCEPTED_BEFORE_PROBING`].
    max: usize,
}

impl BatchSizer {
    /// Starts at `start`, never above `max` (both at least 1; settings check that).
    pub(crate) fn new(start: usize, max: usize) -> Self {
        let ceiling = max.max(1);
        Self {
            state: Mutex::new(State {
                current: start.clamp(1, ceiling),
                ceiling,
                accepted: 0,
                max: ceiling,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The size the next document should have.
    pub(crate) fn current(&self) -> usize {
        self.lock().current
    }

    /// Pluvo accepted a document of `size` items (its items may still have failed on their own).
    /// A full-size document is evidence for the current size; after
    /// [`ACCEPTED_BEFORE_GROWING`] of them the size grows by half, up to the ceiling. A smaller
    /// document (the tail of a phase) says nothing about the current size.
    pub(crate) fn accepted(&self, size: usize) {
        let mut state = self.lock();
        if size < state.current {
            return;
        }
        state.accepted += 1;
        if state.current == state.ceiling
            && state.ceiling < state.max
            && state.accepted >= ACCEPTED_BEFORE_PROBING
        {
            state.ceiling = state.max;
        }
        if state.accepted >= ACCEPTED_BEFORE_GROWING && state.current < state.ceiling {
            let grown = state.current + state.current.div_ceil(2);
            state.current = grown.min(state.ceiling);
            state.accepted = 0;
            tracing::debug!(
                batch_size = state.current,
                "Pluvo accepts the batches; growing them"
            );
        }
    }

    /// Pluvo refused a document of `size` items for its size: sizes from `size` up are not tried
    /// again, and the next documents are half as big. Returns the size to re-send its work in.
    pub(crate) fn refused(&self, size: usize) -> usize {
        let mut state = self.lock();
        let size = size.max(1);
        state.ceiling = state.ceiling.min(size.saturating_sub(1)).max(1);
        state.current = state.current.min(size.div_ceil(2)).clamp(1, state.ceiling);
        state.accepted = 0;
        tracing::warn!(
            refused = size,
            batch_size = state.current,
            "Pluvo refused a batch as too big; sending smaller batches"
        );
        state.current
    }
}

/// Words in an error code that say the document was too big or too complex.
const TOO_BIG_CODES: &[&str] = &[
    "too_big",
    "too_large",
    "too_complex",
    "complexity",
    "query_cost",
    "cost_limit",
    "max_cost",
    "depth",
    "payload_too_large",
    "request_entity_too_large",
    "413",
];
/// Phrases in a message that say so (graphql-ruby, Hasura, Apollo, graphene, nginx, …).
const TOO_BIG_PHRASES: &[&str] = &[
    "too complex",
    "too large",
    "too big",
    "too many root fields",
    "too many fields",
    "too many operations",
    "too many aliases",
    "too many mutations",
    "complexity",
    "query cost",
    "max cost",
    "maximum cost",
    "exceeds max",
    "exceeds the max",
    "maximum depth",
    "max depth",
    "entity too large",
    "payload too large",
    "request too large",
    "body too large",
];

/// Whether a GraphQL error (without a path: about the whole document) says the document was
/// too big or too complex, by its code or its message.
pub(crate) fn graphql_says_too_big(error: &GraphqlError) -> bool {
    let signals = Signals::of(error, None);
    any_in(signals.code(), TOO_BIG_CODES) || any_in(signals.message(), TOO_BIG_PHRASES)
}

/// Whether `error`, the fate of a whole document, points to its size or complexity: HTTP 413
/// (or 414/431, the same complaint about the request line or headers), a timeout (ours, or a
/// gateway's 408/504), or a refusal
/// of the document whose code or message says it was too big or too complex.
pub(crate) fn is_too_big(error: &PluvoError) -> bool {
    match error {
        PluvoError::Http { status, body } => {
            matches!(status, 408 | 413 | 414 | 431 | 504)
                || (matches!(status, 400 | 422) && any_in(&body.to_lowercase(), TOO_BIG_PHRASES))
        }
        PluvoError::Timeout => true,
        PluvoError::InvalidDocument { code, message } => {
            code.as_deref()
                .is_some_and(|c| any_in(&c.to_lowercase(), TOO_BIG_CODES))
                || any_in(&message.to_lowercase(), TOO_BIG_PHRASES)
        }
        PluvoError::Exhausted { last, .. } => is_too_big(last),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn grows_while_accepted_up_to_the_maximum() {
        let sizer = BatchSizer::new(25, 100);
        let mut seen = vec![sizer.current()];
        for _ in 0..6 {
            sizer.accepted(sizer.current());
            seen.push(sizer.current());
        }
        assert_eq!(seen, [25, 38, 57, 86, 100, 100, 100]);
        // A short tail document says nothing about the size.
        let sizer = BatchSizer::new(25, 100);
        sizer.accepted(3);
        assert_eq!(sizer.current(), 25);
    }

    #[test]
    fn shrinks_at_once_and_never_returns_to_a_refused_size() {
        let sizer = BatchSizer::new(25, 100);
        sizer.accepted(25);
        assert_eq!(sizer.current(), 38);
        assert_eq!(sizer.refused(38), 19);
        for _ in 0..10 {
            sizer.accepted(sizer.current());
        }
        assert_eq!(
            sizer.current(),
            37,
            "grows back up to just below the refused size"
        );
        assert_eq!(sizer.refused(1), 1, "never below one");
        assert_eq!(sizer.current(), 1);
    }

    #[test]
    fn start_is_clamped_to_the_maximum() {
        assert_eq!(BatchSizer::new(50, 10).current(), 10);
        assert_eq!(BatchSizer::new(0, 10).current(), 1);
    }

    #[test]
    fn too_big_is_recognised_by_every_plausible_signal() {
        let document = |code: Option<&str>, message: &str| PluvoError::InvalidDocument {
            code: code.map(str::to_owned),
            message: message.to_owned(),
        };
        let yes = [
            (
                "HTTP 413",
                PluvoError::http(413, "Request Entity Too Large"),
            ),
            ("HTTP 413, empty body", PluvoError::http(413, "")),
            (
                "HTTP 400 saying so",
                PluvoError::http(400, "Query is too large"),
            ),
            ("timeout", PluvoError::Timeout),
            (
                "timeout after retries",
                PluvoError::Exhausted {
                    attempts: 3,
                    last: Box::new(PluvoError::Timeout),
                },
            ),
            (
                "our sim",
                document(
                    Some("DOCUMENT_TOO_LARGE"),
                    "document has 30 root fields, more than the 10 allowed",
                ),
            ),
            (
                "graphql-ruby",
                document(
                    None,
                    "Query has complexity of 310, which exceeds max complexity of 300",
                ),
            ),
            (
                "Apollo cost limit",
                document(Some("COST_LIMIT_EXCEEDED"), "Operation cost exceeded"),
            ),
            ("depth", document(None, "Query exceeds maximum depth of 10")),
            (
                "aliases",
                document(Some("BAD_REQUEST"), "Too many aliases in one request"),
            ),
        ];
        for (case, error) in yes {
            assert!(is_too_big(&error), "{case}: {error}");
        }
        let no = [
            (
                "schema error",
                document(None, "Cannot query field \"nope\" on type \"Mutation\""),
            ),
            (
                "rate limit code",
                document(Some("RATE_LIMITED"), "slow down"),
            ),
            ("server error", PluvoError::http(500, "oops")),
            ("plain 400", PluvoError::http(400, "bad request")),
            (
                "transport",
                PluvoError::Transport("connection reset".into()),
            ),
            (
                "item refusal",
                PluvoError::Field {
                    code: None,
                    message: "too large a name".into(),
                    refusal: super::super::error::Refusal::Invalid,
                },
            ),
        ];
        for (case, error) in no {
            assert!(!is_too_big(&error), "{case}: {error}");
        }
        let raw: GraphqlError =
            serde_json::from_value(json!({"message": "Query is too complex"})).unwrap();
        assert!(graphql_says_too_big(&raw));
    }
}
