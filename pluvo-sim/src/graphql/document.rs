//! The schema and the documents run against it: the vendored SDL, parsing and validation, and
//! the cache of validated documents.
//!
//! Kept apart from execution because it is the part that must match a real server exactly
//! (what is a valid document) and the part that carries the simulator's per-request cost.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use apollo_compiler::executable::OperationType;
use apollo_compiler::response::GraphQLError;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};

/// The vendored SDL, compiled in.
pub const SDL: &str = include_str!("../../../schema/pluvo.graphql");

static SCHEMA: LazyLock<Result<Valid<Schema>, String>> = LazyLock::new(|| {
    Schema::parse_and_validate(SDL, "schema/pluvo.graphql").map_err(|e| e.errors.to_string())
});

/// The validated schema, or why the vendored SDL is not valid.
pub fn schema() -> Result<&'static Valid<Schema>, &'static str> {
    SCHEMA.as_ref().map_err(String::as_str)
}

/// Parsed and validated documents by query text. Clients send the same few documents over and
/// over; skipping parse and validation is most of the simulator's per-request cost.
pub struct DocCache {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (Arc<Valid<ExecutableDocument>>, u64)>,
}

impl DocCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            tick: 0,
            entries: HashMap::new(),
        }
    }

    pub fn get(&mut self, query: &str) -> Option<Arc<Valid<ExecutableDocument>>> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(query).map(|(doc, used)| {
            *used = tick;
            Arc::clone(doc)
        })
    }

    /// Inserts, evicting the least recently used entry when full.
    pub fn insert(&mut self, query: String, doc: Arc<Valid<ExecutableDocument>>) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&query) {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.tick += 1;
        self.entries.insert(query, (doc, self.tick));
    }
}

/// Parses and validates a document (no caching).
pub fn parse(
    schema: &Valid<Schema>,
    query: &str,
) -> Result<Valid<ExecutableDocument>, Vec<GraphQLError>> {
    ExecutableDocument::parse_and_validate(schema, query, "request.graphql")
        .map_err(|e| e.errors.iter().map(|d| d.to_json()).collect())
}

/// Whether the operation `name` selects is a mutation; request errors for an unknown name.
pub fn is_mutation(
    doc: &Valid<ExecutableDocument>,
    name: Option<&str>,
) -> Result<bool, Vec<GraphQLError>> {
    doc.operations
        .get(name)
        .map(|op| op.operation_type == OperationType::Mutation)
        .map_err(|e| vec![e.to_graphql_error(&doc.sources)])
}

/// Root fields of the operation `name` (aliases count apart): what `--max-root-fields` limits.
pub fn root_fields(doc: &Valid<ExecutableDocument>, name: Option<&str>) -> usize {
    doc.operations
        .get(name)
        .map_or(0, |op| op.selection_set.selections.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_schema_is_valid() {
        assert!(schema().is_ok(), "{:?}", schema().err());
    }

    #[test]
    fn doc_cache_evicts_least_recently_used() {
        let schema = schema().expect("schema");
        let doc = |q: &str| Arc::new(parse(schema, q).expect("valid"));
        let mut cache = DocCache::new(2);
        cache.insert("a".into(), doc("{ extraCategories { id } }"));
        cache.insert("b".into(), doc("{ extraCategories { ref } }"));
        assert!(cache.get("a").is_some());
        cache.insert("c".into(), doc("{ extraCategories { title } }"));
        assert!(cache.get("b").is_none(), "b was least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
    }
}
