//! Several mutations in one GraphQL document, as aliased root fields, and their results per alias.
//!
//! cynic builds one operation per type, so it cannot express "n copies of `updateOrCreateUser`".
//! [`AliasedDocument`] writes those documents: `u0: updateOrCreateUser(ref: $u0_ref, …) { … }`,
//! one variable per argument and alias. The selection set is taken from the cynic operation for a
//! single field ([`root_selection`]), variables are serialised from the cynic input types, and
//! [`split`] deserialises each alias's result into the cynic payload type. Pluvo judges each
//! aliased field on its own: an error whose `path` starts with an alias fails only that item; an
//! error without a path means the document as a whole failed, so every item fails.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::PluvoError;
use super::error::{GraphqlError, Refusal, Signals, error_root, from_graphql};

/// One argument of an aliased field.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// Passed as a variable of the given GraphQL type, e.g. `String!`.
    Variable {
        name: &'static str,
        graphql_type: &'static str,
        value: Value,
    },
    /// Written into the document as is, e.g. `false` or `USER`. Only ever a constant of this
    /// crate, never data: that is what variables are for.
    Literal {
        name: &'static str,
        value: &'static str,
    },
}

/// A request body: `{"query", "variables", "operationName"}`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GraphqlRequest {
    pub(crate) query: String,
    pub(crate) variables: Map<String, Value>,
    pub(crate) operation_name: &'static str,
}

/// One kind of root field a document repeats under aliases: `prefix0: field(…) selection`.
#[derive(Debug, Clone)]
pub(crate) struct FieldShape {
    pub(crate) field: &'static str,
    pub(crate) alias_prefix: &'static str,
    /// The selection set, braces included (see [`root_selection`]).
    pub(crate) selection: String,
}

/// Builds one mutation document of aliased root fields: the same field repeated, or several
/// kinds of field ([`AliasedDocument::push_field`]), executed in the order they were pushed.
#[derive(Debug)]
pub(crate) struct AliasedDocument {
    operation_name: &'static str,
    shape: FieldShape,
    definitions: Vec<String>,
    fields: Vec<String>,
    variables: Map<String, Value>,
    aliases: Vec<String>,
}

impl AliasedDocument {
    /// `selection` is the root field's selection set, braces included (see [`root_selection`]).
    pub(crate) fn new(
        operation_name: &'static str,
        field: &'static str,
        alias_prefix: &'static str,
        selection: String,
    ) -> Self {
        Self {
            operation_name,
            shape: FieldShape {
                field,
                alias_prefix,
                selection,
            },
            definitions: Vec::new(),
            fields: Vec::new(),
            variables: Map::new(),
            aliases: Vec::new(),
        }
    }

    /// A document repeating `shape`.
    pub(crate) fn with_shape(operation_name: &'static str, shape: FieldShape) -> Self {
        Self::new(
            operation_name,
            shape.field,
            shape.alias_prefix,
            shape.selection,
        )
    }

    /// Adds one aliased field of the document's own shape and returns its alias.
    pub(crate) fn push(&mut self, args: Vec<Arg>) -> String {
        let shape = self.shape.clone();
        self.push_field(&shape, args)
    }

    /// Adds one aliased field of `shape` and returns its alias. Aliases are numbered in the
    /// order of the document, whatever their prefix, so each is unique.
    pub(crate) fn push_field(&mut self, shape: &FieldShape, args: Vec<Arg>) -> String {
        let alias = format!("{}{}", shape.alias_prefix, self.aliases.len());
        let mut written = Vec::with_capacity(args.len());
        for arg in args {
            match arg {
                Arg::Variable {
                    name,
                    graphql_type,
                    value,
                } => {
                    let variable = format!("{alias}_{name}");
                    self.definitions
                        .push(format!("${variable}: {graphql_type}"));
                    written.push(format!("{name}: ${variable}"));
                    self.variables.insert(variable, value);
                }
                Arg::Literal { name, value } => written.push(format!("{name}: {value}")),
            }
        }
        self.fields.push(format!(
            "  {alias}: {}({}) {}",
            shape.field,
            written.join(", "),
            shape.selection
        ));
        self.aliases.push(alias.clone());
        alias
    }

    pub(crate) fn aliases(&self) -> &[String] {
        &self.aliases
    }

    pub(crate) fn into_request(self) -> GraphqlRequest {
        let definitions = if self.definitions.is_empty() {
            String::new()
        } else {
            format!("({})", self.definitions.join(", "))
        };
        GraphqlRequest {
            query: format!(
                "mutation {}{definitions} {{\n{}\n}}\n",
                self.operation_name,
                self.fields.join("\n")
            ),
            variables: self.variables,
            operation_name: self.operation_name,
        }
    }
}

/// The selection set (`{ … }`) of the first root field of a document cynic built, e.g. of
/// `mutation M($a: T) { field(arg: $a) { x y { z } } }` it returns `{ x y { z } }`.
///
/// A small scanner rather than a parser: it skips string literals and parenthesised argument
/// lists (which may hold input-object literals in braces) and matches braces.
pub(crate) fn root_selection(document: &str) -> Result<String, PluvoError> {
    let broken = || {
        PluvoError::InvalidDocument {
            code: None,
            message: "internal: cannot find the root field's selection set in the document cynic built; this is a bug in pluvo-sync".to_owned(),
        }
    };
    let mut depth_braces = 0usize;
    let mut depth_parens = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut start = None;
    for (index, c) in document.char_indices() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' => depth_parens += 1,
            ')' => depth_parens = depth_parens.checked_sub(1).ok_or_else(broken)?,
            '{' if depth_parens == 0 => {
                depth_braces += 1;
                // Depth 1 is the operation's own selection set; depth 2 the root field's.
                if depth_braces == 2 && start.is_none() {
                    start = Some(index);
                }
            }
            '}' if depth_parens == 0 => {
                depth_braces = depth_braces.checked_sub(1).ok_or_else(broken)?;
                if depth_braces == 1
                    && let Some(start) = start
                {
                    return Ok(document[start..=index].to_owned());
                }
            }
            _ => {}
        }
    }
    Err(broken())
}

/// The response of one document, before it is judged per alias.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub(crate) struct RawResponse {
    #[serde(default)]
    pub(crate) data: Option<Value>,
    #[serde(default)]
    pub(crate) errors: Option<Vec<GraphqlError>>,
}

impl RawResponse {
    pub(crate) fn errors(&self) -> &[GraphqlError] {
        self.errors.as_deref().unwrap_or_default()
    }
}

/// Judges each alias on its own, in the order of `aliases`.
///
/// - An error without a path, or whose path does not start with one of `aliases`, concerns the
///   document: every item fails with it.
/// - Otherwise an item fails with the first error whose path starts with its alias (further
///   errors for the same alias are appended to the message).
/// - An item without an error succeeds when its data deserialises into `T`; null data without an
///   error is a protocol violation and fails that item.
pub(crate) fn split<T: DeserializeOwned>(
    aliases: &[String],
    response: &RawResponse,
) -> Vec<Result<T, PluvoError>> {
    let errors = response.errors();
    let document_error = errors
        .iter()
        .find(|e| error_root(e).is_none_or(|root| !aliases.iter().any(|a| a == root)));
    if let Some(raw) = document_error {
        let error = from_graphql(raw);
        // A path-less error is about the document even when it names a field's problem.
        let error = match error {
            PluvoError::Field { code, message, .. } => {
                PluvoError::InvalidDocument { code, message }
            }
            other => other,
        };
        // Except that a document of one item refused for its taken address (some servers answer
        // a conflict with HTTP 409 and no path) is that item's refusal: it can only be its own.
        let error = match error {
            PluvoError::InvalidDocument { code, message }
                if aliases.len() == 1
                    && Signals::of(raw, None).refusal() == Refusal::EmailTaken =>
            {
                PluvoError::Field {
                    code,
                    message,
                    refusal: Refusal::EmailTaken,
                }
            }
            other => other,
        };
        return aliases.iter().map(|_| Err(error.clone())).collect();
    }
    let data = response.data.as_ref().and_then(Value::as_object);
    aliases
        .iter()
        .map(|alias| {
            let mut mine = errors
                .iter()
                .filter(|e| error_root(e) == Some(alias.as_str()));
            if let Some(first) = mine.next() {
                let mut error = from_graphql(first);
                let more: Vec<&str> = mine.map(|e| e.message.as_str()).collect();
                if let PluvoError::Field { message, .. } = &mut error
                    && !more.is_empty()
                {
                    message.push_str("; ");
                    message.push_str(&more.join("; "));
                }
                return Err(error);
            }
            match data.and_then(|d| d.get(alias)) {
                None | Some(Value::Null) => Err(PluvoError::Decode(format!(
                    "no result and no error for {alias}"
                ))),
                Some(value) => T::deserialize(value)
                    .map_err(|e| PluvoError::Decode(format!("result of {alias}: {e}"))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn root_selection_skips_arguments_strings_and_nested_sets() {
        let document = r#"mutation M($a: String) {
  field(a: $a, obj: {x: "}{", y: [{z: 1}]}, s: "\"(") {
    user {
      id
    }
    created
  }
}
"#;
        assert_eq!(
            root_selection(document).unwrap(),
            "{\n    user {\n      id\n    }\n    created\n  }"
        );
        assert!(root_selection("mutation { field }").is_err());
        assert!(root_selection("mutation { field(a: 1)) { x } }").is_err());
    }

    #[test]
    fn the_builder_numbers_aliases_and_scopes_variables_per_alias() {
        let mut doc = AliasedDocument::new("Op", "doIt", "d", "{ ok }".to_owned());
        for n in 0..2 {
            doc.push(vec![
                Arg::Variable {
                    name: "id",
                    graphql_type: "String!",
                    value: json!(format!("x{n}")),
                },
                Arg::Literal {
                    name: "flag",
                    value: "false",
                },
            ]);
        }
        assert_eq!(doc.aliases(), ["d0", "d1"]);
        let request = doc.into_request();
        assert_eq!(
            request.query,
            "mutation Op($d0_id: String!, $d1_id: String!) {\n  d0: doIt(id: $d0_id, flag: false) { ok }\n  d1: doIt(id: $d1_id, flag: false) { ok }\n}\n"
        );
        assert_eq!(
            json!(request.variables),
            json!({"d0_id": "x0", "d1_id": "x1"})
        );
        assert_eq!(
            serde_json::to_value(&request).unwrap()["operationName"],
            json!("Op")
        );
    }

    fn aliases(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("u{i}")).collect()
    }

    fn response(value: Value) -> RawResponse {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_field_error_fails_only_its_alias() {
        let raw = response(json!({
            "data": {"u0": {"n": 1}, "u1": null, "u2": {"n": 3}},
            "errors": [
                {"message": "taken", "path": ["u1"], "extensions": {"code": "EMAIL_TAKEN"}},
                {"message": "also bad", "path": ["u1", "user"]}
            ]
        }));
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct N {
            n: u32,
        }
        let results = split::<N>(&aliases(3), &raw);
        assert_eq!(results[0], Ok(N { n: 1 }));
        assert_eq!(results[2], Ok(N { n: 3 }));
        match &results[1] {
            Err(PluvoError::Field { code, message, .. }) => {
                assert_eq!(code.as_deref(), Some("EMAIL_TAKEN"));
                assert_eq!(message, "taken; also bad");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn document_errors_fail_every_alias() {
        let cases = [
            (
                "no path",
                json!({"data": null, "errors": [{"message": "Syntax error"}]}),
            ),
            (
                "path to an unknown root",
                json!({"data": {"u0": {}}, "errors": [{"message": "x", "path": ["other"]}]}),
            ),
            (
                "index path",
                json!({"data": null, "errors": [{"message": "x", "path": [0]}]}),
            ),
        ];
        for (name, value) in cases {
            let results = split::<Value>(&aliases(2), &response(value));
            assert_eq!(results.len(), 2, "case {name}");
            for result in results {
                assert!(
                    matches!(result, Err(PluvoError::InvalidDocument { .. })),
                    "case {name}: {result:?}"
                );
            }
        }
    }

    #[test]
    fn missing_or_malformed_data_fails_that_alias_only() {
        let raw = response(json!({"data": {"u0": {"n": "not a number"}, "u2": {"n": 2}}}));
        #[derive(Debug, serde::Deserialize)]
        struct N {
            #[allow(dead_code)]
            n: u32,
        }
        let results = split::<N>(&aliases(3), &raw);
        assert!(matches!(results[0], Err(PluvoError::Decode(_))));
        assert!(matches!(results[1], Err(PluvoError::Decode(_))));
        assert!(results[2].is_ok());
    }
}
