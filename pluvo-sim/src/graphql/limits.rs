//! What one document may ask for before it runs: the introspection nesting depth and an upper
//! bound on the fields it could produce.
//!
//! Its own room because these checks protect the simulator (it holds the tenant lock while it
//! executes) rather than describe Pluvo's data, and new list fields change the bound.

use std::collections::HashMap;

use apollo_compiler::executable::Operation;
use apollo_compiler::response::GraphQLError;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Node};

use super::paging::MAX_PAGE;

/// The most response fields a document may ask for, by [`estimated_nodes`]. The schema has
/// cycles (`User.participantGroups` ↔ `Group.users`), so a small document can ask for an
/// exponential number of nodes; real GraphQL servers refuse those with depth or complexity
/// limits, and the simulator must not compute them while it holds the tenant lock.
pub const MAX_NODES: u64 = 1_000_000;

/// An upper bound on the fields a selection set can produce: every field counts once, and a
/// list-typed field multiplies its sub-selection by [`MAX_PAGE`] (the page size for connection
/// edges, an assumed bound for plain lists). Fragment costs are memoised by name, so fragment
/// "bombs" cost linear time to estimate; validation has already rejected fragment cycles.
pub fn estimated_nodes(
    doc: &ExecutableDocument,
    set: &apollo_compiler::executable::SelectionSet,
    fragments: &mut HashMap<apollo_compiler::Name, u64>,
) -> u64 {
    use apollo_compiler::executable::Selection;
    let per_item = MAX_PAGE.unsigned_abs();
    let mut total: u64 = 0;
    for selection in &set.selections {
        let cost = match selection {
            // Introspection is answered from the schema, not the tenant's data: its size is
            // bounded by the schema, and its nesting by `introspection::check_max_depth`.
            Selection::Field(field) if field.name.starts_with("__") => 1,
            Selection::Field(field) => {
                let below = estimated_nodes(doc, &field.selection_set, fragments);
                let items = if field.definition.ty.is_list() {
                    per_item
                } else {
                    1
                };
                items.saturating_mul(below).saturating_add(1)
            }
            Selection::InlineFragment(inline) => {
                estimated_nodes(doc, &inline.selection_set, fragments)
            }
            Selection::FragmentSpread(spread) => {
                if let Some(&known) = fragments.get(&spread.fragment_name) {
                    known
                } else {
                    let cost = doc
                        .fragments
                        .get(&spread.fragment_name)
                        .map_or(0, |f| estimated_nodes(doc, &f.selection_set, fragments));
                    fragments.insert(spread.fragment_name.clone(), cost);
                    cost
                }
            }
        };
        total = total.saturating_add(cost);
    }
    total
}

/// Refuses `operation` when its introspection nests too deep or it could ask for more than
/// [`MAX_NODES`] fields: a request error, so nothing runs.
pub(super) fn check(
    doc: &Valid<ExecutableDocument>,
    operation: &Node<Operation>,
) -> Result<(), Vec<GraphQLError>> {
    apollo_compiler::introspection::check_max_depth(doc, operation)
        .map_err(|e| vec![e.to_graphql_error(&doc.sources)])?;
    let cost = estimated_nodes(doc, &operation.selection_set, &mut HashMap::new());
    if cost > MAX_NODES {
        return Err(vec![GraphQLError::new(
            format!(
                "query is too complex: it could ask for about {cost} fields (limit {MAX_NODES}); \
                 select less or nest less, and page with `first`/`after`"
            ),
            operation.location(),
            &doc.sources,
        )]);
    }
    Ok(())
}
