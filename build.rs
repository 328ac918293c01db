//! Registers the vendored Pluvo SDL with cynic, so every typed operation in
//! `src/pluvo/` is checked against `schema/pluvo.graphql` at compile time.
fn main() {
    println!("cargo:rerun-if-changed=schema/pluvo.graphql");
    println!("cargo:rerun-if-changed=migrations");
    cynic_codegen::register_schema("pluvo")
        .from_sdl_file("schema/pluvo.graphql")
        .expect("schema/pluvo.graphql must exist")
        .as_default()
        .expect("schema/pluvo.graphql must be valid SDL");
}
