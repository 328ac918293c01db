//! The tenant's schema against `schema/pluvo.graphql`, for `pluvo-sync check --schema`.
//!
//! Pluvo publishes no SDL: the vendored one is reconstructed from its documentation, and the
//! client is generated from it. A tenant that lacks a field the client selects, or types an
//! argument differently, fails every run with a schema error. This reads the tenant's schema by
//! standard introspection and lists every difference in what the client's documents use: the
//! types, fields and arguments they select and pass, the input objects their variables carry
//! (with every input field and nested input object), and the enum values they can send or read.
//! Parts of the vendored schema the client never uses are not compared.

use std::collections::{BTreeMap, BTreeSet};

use apollo_compiler::executable::{Selection, SelectionSet};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{ExecutableDocument, Schema};
use serde_json::Value;

use super::PluvoError;

/// The standard introspection query, narrowed to what the comparison reads.
pub(crate) const QUERY: &str = "query Introspection { __schema { types { kind name \
     fields(includeDeprecated: true) { name args { name type { ...TypeRef } } type { ...TypeRef } } \
     inputFields { name type { ...TypeRef } } enumValues(includeDeprecated: true) { name } } } } \
     fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind \
     name ofType { kind name ofType { kind name } } } } } }";

/// The vendored SDL the client is generated from.
const SDL: &str = include_str!("../../schema/pluvo.graphql");

/// One named type of the tenant, as introspection described it.
#[derive(Debug, Default)]
struct TenantType {
    kind: String,
    /// Field (or input field) name → its type, e.g. `[String!]!`.
    fields: BTreeMap<String, String>,
    /// `field` → argument name → its type.
    args: BTreeMap<String, BTreeMap<String, String>>,
    enum_values: BTreeSet<String>,
}

/// What the comparison found.
#[derive(Debug, Default)]
pub struct SchemaReport {
    /// Types, fields, arguments and enum values the client uses, compared one by one.
    pub compared: usize,
    /// Each difference, one line naming the coordinate (`Type.field(arg:)`) and what differs.
    pub differences: Vec<String>,
}

/// Compares the `data` of an introspection response ([`QUERY`]) with what the client's
/// `documents` use of `schema/pluvo.graphql`.
pub(crate) fn compare(
    data: &Value,
    documents: &[(&str, String)],
) -> Result<SchemaReport, PluvoError> {
    let tenant = tenant_types(data)?;
    let ours = Schema::parse_and_validate(SDL, "schema/pluvo.graphql")
        .map_err(|e| internal(format!("schema/pluvo.graphql is invalid: {}", e.errors)))?;
    let mut used = Used::default();
    for (name, query) in documents {
        let document = ExecutableDocument::parse_and_validate(&ours, query, *name)
            .map_err(|e| internal(format!("{name} does not validate: {}", e.errors)))?;
        for operation in document.operations.iter() {
            for variable in &operation.variables {
                used.input(&ours, variable.ty.inner_named_type().as_str());
            }
            used.selection(&ours, &document, &operation.selection_set);
        }
    }

    let mut report = SchemaReport::default();
    let mut differ = |line: String| report.differences.push(line);
    for (type_name, fields) in &used.fields {
        report.compared += 1;
        let Some(theirs) = tenant.get(type_name) else {
            differ(format!("type {type_name}: missing in the tenant"));
            continue;
        };
        for (field, (ty, args)) in fields {
            report.compared += 1;
            let Some(their_ty) = theirs.fields.get(field) else {
                differ(format!("{type_name}.{field}: missing in the tenant"));
                continue;
            };
            if their_ty != ty {
                differ(format!(
                    "{type_name}.{field}: the tenant's type is {their_ty}, schema/pluvo.graphql has {ty}"
                ));
            }
            for (arg, ty) in args {
                report.compared += 1;
                match theirs.args.get(field).and_then(|a| a.get(arg)) {
                    None => differ(format!(
                        "{type_name}.{field}({arg}:): argument missing in the tenant"
                    )),
                    Some(their_ty) if their_ty != ty => differ(format!(
                        "{type_name}.{field}({arg}:): the tenant's type is {their_ty}, schema/pluvo.graphql has {ty}"
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    for (type_name, values) in &used.enums {
        report.compared += 1;
        match tenant.get(type_name) {
            Some(theirs) if theirs.kind == "ENUM" => {
                for value in values.difference(&theirs.enum_values) {
                    differ(format!("enum {type_name}: the tenant has no value {value}"));
                }
            }
            Some(theirs) => differ(format!(
                "{type_name}: an enum in schema/pluvo.graphql, a {} in the tenant",
                theirs.kind
            )),
            None => differ(format!("enum {type_name}: missing in the tenant")),
        }
    }
    Ok(report)
}

fn internal(message: String) -> PluvoError {
    PluvoError::Decode(format!("internal: {message}"))
}

/// The tenant's named types, from `{"__schema": {"types": [...]}}`.
fn tenant_types(data: &Value) -> Result<BTreeMap<String, TenantType>, PluvoError> {
    let types = data["__schema"]["types"].as_array().ok_or_else(|| {
        PluvoError::Decode("the introspection answer has no __schema.types".to_owned())
    })?;
    let mut tenant = BTreeMap::new();
    for ty in types {
        let Some(name) = ty["name"].as_str() else {
            continue;
        };
        let mut entry = TenantType {
            kind: ty["kind"].as_str().unwrap_or_default().to_owned(),
            ..TenantType::default()
        };
        for field in list(&ty["fields"]).chain(list(&ty["inputFields"])) {
            let Some(field_name) = field["name"].as_str() else {
                continue;
            };
            entry
                .fields
                .insert(field_name.to_owned(), type_ref(&field["type"]));
            let args = list(&field["args"])
                .filter_map(|arg| Some((arg["name"].as_str()?.to_owned(), type_ref(&arg["type"]))))
                .collect();
            entry.args.insert(field_name.to_owned(), args);
        }
        entry.enum_values = list(&ty["enumValues"])
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect();
        tenant.insert(name.to_owned(), entry);
    }
    Ok(tenant)
}

fn list(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// An introspection type reference in SDL notation: `{kind: NON_NULL, ofType: {kind: LIST, …}}`
/// is `[…]!`.
fn type_ref(value: &Value) -> String {
    match value["kind"].as_str() {
        Some("NON_NULL") => format!("{}!", type_ref(&value["ofType"])),
        Some("LIST") => format!("[{}]", type_ref(&value["ofType"])),
        _ => value["name"].as_str().unwrap_or("?").to_owned(),
    }
}

/// A field as the client uses it: its type, and the arguments passed with their types.
type UsedField = (String, BTreeMap<String, String>);

/// What the client's documents use of the vendored schema.
#[derive(Debug, Default)]
struct Used {
    /// Type → field → how it is used. Output fields the documents select, arguments they pass,
    /// and every field of the input objects their variables carry.
    fields: BTreeMap<String, BTreeMap<String, UsedField>>,
    /// Enums the client sends or reads, with every value the vendored schema gives them.
    enums: BTreeMap<String, BTreeSet<String>>,
}

impl Used {
    fn selection(&mut self, ours: &Schema, document: &ExecutableDocument, set: &SelectionSet) {
        for selection in &set.selections {
            match selection {
                Selection::Field(field) => {
                    if field.name.starts_with("__") {
                        continue;
                    }
                    let definition = &field.definition;
                    let entry = self
                        .fields
                        .entry(set.ty.to_string())
                        .or_default()
                        .entry(field.name.to_string())
                        .or_insert_with(|| (definition.ty.to_string(), BTreeMap::new()));
                    for argument in &field.arguments {
                        if let Some(arg) = definition.argument_by_name(&argument.name) {
                            entry
                                .1
                                .insert(argument.name.to_string(), arg.ty.to_string());
                        }
                    }
                    let argument_types: Vec<String> = field
                        .arguments
                        .iter()
                        .filter_map(|a| definition.argument_by_name(&a.name))
                        .map(|arg| arg.ty.inner_named_type().to_string())
                        .collect();
                    for ty in argument_types {
                        self.input(ours, &ty);
                    }
                    self.output_enum(ours, definition.ty.inner_named_type().as_str());
                    self.selection(ours, document, &field.selection_set);
                }
                Selection::InlineFragment(fragment) => {
                    self.selection(ours, document, &fragment.selection_set);
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = document.fragments.get(&spread.fragment_name) {
                        self.selection(ours, document, &fragment.selection_set);
                    }
                }
            }
        }
    }

    /// An input type a variable or argument carries: every field of an input object (any of
    /// them may be sent), recursively, and every value of an enum.
    fn input(&mut self, ours: &Schema, type_name: &str) {
        match ours.types.get(type_name) {
            Some(ExtendedType::InputObject(input)) => {
                if self.fields.contains_key(type_name) {
                    return;
                }
                let fields = self.fields.entry(type_name.to_owned()).or_default();
                let mut nested = Vec::new();
                for (name, field) in &input.fields {
                    fields.insert(name.to_string(), (field.ty.to_string(), BTreeMap::new()));
                    nested.push(field.ty.inner_named_type().to_string());
                }
                for ty in nested {
                    self.input(ours, &ty);
                }
            }
            Some(ExtendedType::Enum(_)) => self.output_enum(ours, type_name),
            _ => {}
        }
    }

    fn output_enum(&mut self, ours: &Schema, type_name: &str) {
        if let Some(ExtendedType::Enum(e)) = ours.types.get(type_name) {
            self.enums.insert(
                type_name.to_owned(),
                e.values.keys().map(ToString::to_string).collect(),
            );
        }
    }
}
