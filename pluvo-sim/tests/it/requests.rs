//! Documents and bodies the server must reject whole, leaving the tenant untouched.

use serde_json::{Value, json};

use crate::{TestSim, assert_rejected};

#[tokio::test]
async fn schema_invalid_documents_fail_whole() {
    let t = TestSim::example().await;
    let before = t.sim.state();
    let cases: &[(&str, &str, Value)] = &[
        (
            "unknown field",
            "{ user(ref: \"x\") { id shoeSize } }",
            json!({}),
        ),
        (
            "unknown argument",
            "{ user(badge: \"x\") { id } }",
            json!({}),
        ),
        (
            "wrong argument type",
            "{ paginatedUsers(first: \"ten\") { count } }",
            json!({}),
        ),
        (
            "missing required variable",
            "mutation($ref: String!, $user: UserInput!) { updateOrCreateUser(ref: $ref, user: $user) { created } }",
            json!({ "ref": "E1" }),
        ),
        (
            "variable of wrong type",
            "query($n: Int) { paginatedUsers(first: $n) { count } }",
            json!({ "n": "many" }),
        ),
        (
            "enum value not in schema",
            "mutation($user: UserInput!) { updateOrCreateUser(ref: \"E1\", user: $user) { created } }",
            json!({ "user": { "name": "N", "email": "n@example.com", "roles": ["KING"] } }),
        ),
        ("syntax error", "{ user(ref: \"x\") { id ", json!({})),
    ];
    for (name, query, variables) in cases {
        let (status, body) = t.gql(query, variables.clone()).await;
        assert_rejected(status, &body, 400);
        assert!(
            body["errors"][0]["message"].as_str().is_some(),
            "case {name}: {body}"
        );
    }
    assert_eq!(t.sim.state(), before);
    assert!(t.sim.stats().fields.is_empty(), "nothing executed");
}

#[tokio::test]
async fn malformed_requests_are_answered_and_change_nothing() {
    let t = TestSim::example().await;
    let before = t.sim.state();
    let post = || t.http.post(t.url("/graphql/")).bearer_auth(&t.token);
    let huge = json!({ "query": format!("{{ extraCategories {{ ref }} }} #{}", "x".repeat(3 * 1024 * 1024)) }).to_string();
    let mutation = r#"mutation { updateOrCreateUser(ref: "E9", sendInvite: false, user: {name: "N", email: "n@example.com"}) { created } }"#;
    let cases = vec![
        (
            "malformed json",
            post()
                .header("content-type", "application/json")
                .body("{\"query\": "),
            400,
        ),
        ("no query", post().json(&json!({ "variables": {} })), 400),
        (
            "variables not an object",
            post().json(&json!({ "query": "{ extraCategories { ref } }", "variables": [1] })),
            400,
        ),
        (
            "wrong content type",
            post()
                .header("content-type", "text/plain")
                .body(mutation.to_owned()),
            415,
        ),
        (
            "huge body",
            post().header("content-type", "application/json").body(huge),
            413,
        ),
        (
            "unknown operation name",
            post().json(&json!({ "query": format!("{mutation}"), "operationName": "Nope" })),
            400,
        ),
        (
            "get instead of post",
            t.http.get(t.url("/graphql/")).bearer_auth(&t.token),
            405,
        ),
    ];
    for (name, request, expected) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), expected, "case {name}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body.get("data").is_none() && body["errors"].is_array(),
            "case {name}: {body}"
        );
    }
    assert_eq!(t.sim.state(), before);
    // The server is still healthy afterwards.
    let data = t.data("{ extraCategories { ref } }", json!({})).await;
    assert_eq!(data["extraCategories"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn operation_name_selects_among_several() {
    let t = TestSim::example().await;
    let query = "query A { extraCategories { ref } } query B { paginatedGroups { count } }";
    let response = t
        .http
        .post(t.url("/graphql/"))
        .bearer_auth(&t.token)
        .json(&json!({ "query": query, "operationName": "B" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"], json!({ "paginatedGroups": { "count": 9 } }));
    let (status, body) = t.gql(query, json!({})).await;
    assert_rejected(status, &body, 400);
}

/// `User.participantGroups` and `Group.users` form a cycle, so a few hundred bytes of nesting
/// ask for an exponential number of nodes. The simulator must refuse such a document at once
/// (as servers with depth and complexity limits do) instead of computing it while holding the
/// tenant lock, which wedges every other client.
// Multi-threaded, so the timeouts below can fire while a worker is stuck executing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathologically_nested_documents_are_refused_quickly() {
    let t = TestSim::example().await;
    let people: Vec<pluvo_sim::SeedUser> = (0..8)
        .map(|n| {
            serde_json::from_value(json!({
                "ref": format!("N{n}"),
                "email": format!("n{n}@example.com"),
                "name": format!("N {n}"),
                "groups": ["all-employees", "mentors"],
            }))
            .unwrap()
        })
        .collect();
    t.sim.add_users(people).unwrap();
    let mut selection = "id".to_owned();
    for _ in 0..12 {
        selection =
            format!("participantGroups {{ users {{ edges {{ node {{ {selection} }} }} }} }}");
    }
    let query = format!("{{ user(ref: \"N0\") {{ {selection} }} }}");
    let answer =
        tokio::time::timeout(std::time::Duration::from_secs(10), t.gql(&query, json!({}))).await;
    let (status, body) = answer.expect("the simulator wedged on a nested document");
    assert_rejected(status, &body, 400);

    // Aliases multiply too: one level, many copies.
    let wide: String = (0..2000)
        .map(|n| format!("a{n}: paginatedUsers(first: 50) {{ edges {{ node {{ participantGroups {{ users(first: 50) {{ edges {{ node {{ id }} }} }} }} }} }} }}\n"))
        .collect();
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        t.gql(&format!("{{ {wide} }}"), json!({})),
    )
    .await;
    let (status, body) = answer.expect("the simulator wedged on a wide document");
    assert_rejected(status, &body, 400);

    // The sync's own documents and ordinary nesting still work.
    let data = t
        .data(
            "{ group(ref: \"mentors\") { users(first: 50) { edges { node { participantGroups { ref } } } } } }",
            json!({}),
        )
        .await;
    assert!(data["group"]["users"]["edges"].as_array().unwrap().len() >= 8);
}

#[tokio::test]
async fn introspection_answers_with_the_schema_the_tenant_serves() {
    let query = "{ __schema { queryType { name } types { name fields { name } } } \
                 __type(name: \"UpdateOrCreateUser\") { fields { name } } }";
    let field_names = |data: &Value| -> Vec<String> {
        data["__type"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let t = TestSim::example().await;
    let data = t.data(query, json!({})).await;
    assert_eq!(data["__schema"]["queryType"]["name"], "Query");
    assert!(
        field_names(&data).contains(&"created".to_owned()),
        "{data:#}"
    );

    // A tenant on another API version: it answers with its own schema.
    let sdl = pluvo_sim::SDL.replace("  created: Boolean\n", "");
    assert_ne!(
        sdl,
        pluvo_sim::SDL,
        "the vendored SDL has UpdateOrCreateUser.created"
    );
    let other = TestSim::start(pluvo_sim::SimConfig {
        schema_sdl: Some(sdl),
        ..pluvo_sim::SimConfig::default()
    })
    .await;
    let data = other.data(query, json!({})).await;
    assert!(
        !field_names(&data).contains(&"created".to_owned()),
        "{data:#}"
    );
}
