//! updateOrCreateUser / updateUser rules, and documents with several aliased mutations.

use serde_json::{Value, json};

use crate::{TestSim, UPSERT_BY_REF, only_error};

fn anna() -> Value {
    json!({ "name": "Anna Jansen", "email": "anna.jansen@example.com", "roles": ["PARTICIPANT"], "language": "NL" })
}

#[tokio::test]
async fn create_then_update_by_ref() {
    let t = TestSim::example().await;
    let (_, body) = t.upsert("E1001", anna()).await;
    let created = &body["data"]["updateOrCreateUser"];
    assert_eq!(created["created"], true, "{body}");
    assert_eq!(created["user"]["ref"], "E1001");
    let id = created["user"]["id"].as_str().unwrap().to_owned();

    // Omitted fields stay; given ones change; roles replace.
    let (_, body) = t
        .upsert(
            "E1001",
            json!({ "name": "Anna de Jong", "roles": ["TRAINER", "MANAGER"] }),
        )
        .await;
    let updated = &body["data"]["updateOrCreateUser"];
    assert_eq!(updated["created"], false);
    assert_eq!(updated["user"]["id"], id.as_str());
    let view = t.sim.state();
    let user = view.user("E1001").unwrap();
    assert_eq!(user.name, "Anna de Jong");
    assert_eq!(user.email, "anna.jansen@example.com");
    assert_eq!(user.language.as_deref(), Some("NL"));
    assert_eq!(user.roles, vec!["MANAGER", "TRAINER"]);

    // Archive, then rehire: same account.
    t.upsert("E1001", json!({ "archived": true })).await;
    assert!(t.sim.state().user("E1001").unwrap().archived);
    let (_, body) = t.upsert("E1001", json!({ "archived": false })).await;
    assert_eq!(
        body["data"]["updateOrCreateUser"]["user"]["id"],
        id.as_str()
    );
    assert!(!t.sim.state().user("E1001").unwrap().archived);

    // updateUser updates, never creates.
    let q = "mutation($ref: String, $user: UserInput!) { updateUser(ref: $ref, user: $user) { user { name } } }";
    let data = t
        .data(
            q,
            json!({ "ref": "E1001", "user": { "name": "A. de Jong" } }),
        )
        .await;
    assert_eq!(data["updateUser"]["user"]["name"], "A. de Jong");
    let (_, body) = t
        .gql(q, json!({ "ref": "E404", "user": { "name": "X" } }))
        .await;
    assert_eq!(
        only_error(&body),
        (json!(["updateUser"]), "NOT_FOUND".into())
    );
    assert_eq!(t.sim.state().users.len(), 3);
}

#[tokio::test]
async fn upsert_rule_violations_are_field_errors() {
    let t = TestSim::example().await;
    t.upsert("E1", json!({ "name": "One", "email": "one@example.com" }))
        .await;
    let by_email = "mutation($email: String, $ref: String, $user: UserInput!) {
        updateOrCreateUser(email: $email, ref: $ref, sendInvite: false, user: $user) { created user { ref } } }";
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "no selector",
            json!({ "user": { "name": "X", "email": "x@example.com" } }),
            "BAD_USER_INPUT",
        ),
        (
            "two selectors",
            json!({ "ref": "E2", "email": "x@example.com", "user": { "name": "X" } }),
            "BAD_USER_INPUT",
        ),
        (
            "create without email",
            json!({ "ref": "E2", "user": { "name": "X" } }),
            "BAD_USER_INPUT",
        ),
        (
            "create without name",
            json!({ "ref": "E2", "user": { "email": "x@example.com" } }),
            "BAD_USER_INPUT",
        ),
        (
            "invalid email",
            json!({ "ref": "E2", "user": { "name": "X", "email": "not an email" } }),
            "INVALID_EMAIL",
        ),
        (
            "email taken (any case)",
            json!({ "ref": "E2", "user": { "name": "X", "email": "ONE@example.com" } }),
            "EMAIL_TAKEN",
        ),
        (
            "email taken on update",
            json!({ "ref": "E1", "user": { "email": "lotte.devries@example.com" } }),
            "EMAIL_TAKEN",
        ),
        (
            "ref taken on update",
            json!({ "email": "lotte.devries@example.com", "user": { "ref": "E1" } }),
            "REF_TAKEN",
        ),
    ];
    let before = t.sim.state();
    for (name, variables, code) in cases {
        let (status, body) = t.gql(by_email, variables).await;
        assert_eq!(status, 200, "case {name}");
        assert_eq!(
            body["data"]["updateOrCreateUser"],
            Value::Null,
            "case {name}: {body}"
        );
        assert_eq!(
            only_error(&body),
            (json!(["updateOrCreateUser"]), code.to_owned()),
            "case {name}"
        );
    }
    assert_eq!(t.sim.state(), before, "failed calls write nothing");
}

#[tokio::test]
async fn existing_user_without_ref_is_adopted_by_email() {
    let t = TestSim::example().await;
    let q = "mutation($email: String!, $user: UserInput!) {
        updateOrCreateUser(email: $email, sendInvite: false, user: $user) { created user { ref email } } }";
    let data = t.data(q, json!({ "email": "Lotte.deVries@example.com", "user": { "ref": "E1002", "name": "Lotte de Vries" } })).await;
    assert_eq!(data["updateOrCreateUser"]["created"], false);
    let view = t.sim.state();
    let lotte = view.user("E1002").unwrap();
    assert_eq!(lotte.email, "lotte.devries@example.com");
    assert_eq!(
        lotte.groups,
        vec!["mentors"],
        "adoption keeps existing memberships"
    );
}

#[tokio::test]
async fn invitations_count_only_creates_with_send_invite_true_or_omitted() {
    let t = TestSim::example().await;
    let q = "mutation($ref: String!, $invite: Boolean, $user: UserInput!) {
        updateOrCreateUser(ref: $ref, sendInvite: $invite, user: $user) { created } }";
    let omitted = "mutation($ref: String!, $user: UserInput!) { updateOrCreateUser(ref: $ref, user: $user) { created } }";
    let user = |n: u32| json!({ "name": format!("U{n}"), "email": format!("u{n}@example.com") });
    t.data(q, json!({ "ref": "I1", "invite": true, "user": user(1) }))
        .await;
    t.data(q, json!({ "ref": "I2", "invite": false, "user": user(2) }))
        .await;
    t.data(omitted, json!({ "ref": "I3", "user": user(3) }))
        .await;
    t.data(
        q,
        json!({ "ref": "I1", "invite": true, "user": { "name": "again" } }),
    )
    .await;
    assert_eq!(t.sim.stats().invitations, 2);
    assert_eq!(t.sim.stats().fields["updateOrCreateUser"], 4);
}

#[tokio::test]
async fn aliased_mutations_fail_individually_with_their_paths() {
    let t = TestSim::example().await;
    let q = r#"mutation {
      u1: updateOrCreateUser(ref: "A1", sendInvite: false, user: {name: "A", email: "a@example.com"}) { created }
      u2: updateOrCreateUser(ref: "A2", sendInvite: false, user: {name: "B", email: "a@example.com"}) { created }
      u3: updateOrCreateUser(ref: "A3", sendInvite: false, user: {name: "C", email: "bad"}) { created }
      u4: updateOrCreateUser(ref: "A4", sendInvite: false, user: {name: "D", email: "d@example.com"}) { created }
      g: addUsersToGroup(groupRef: "nope", userRefs: ["A1"]) { addedIds }
    }"#;
    let (status, body) = t.gql(q, json!({})).await;
    assert_eq!(status, 200);
    let data = &body["data"];
    assert_eq!(data["u1"]["created"], true);
    assert_eq!(data["u2"], Value::Null);
    assert_eq!(data["u3"], Value::Null);
    assert_eq!(data["u4"]["created"], true);
    assert_eq!(data["g"], Value::Null);
    assert_eq!(
        body["errors"][1]["message"],
        "`bad` is not a valid email address"
    );
    let errors: Vec<(Value, Value)> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].clone(), e["extensions"]["code"].clone()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (json!(["u2"]), json!("EMAIL_TAKEN")),
            (json!(["u3"]), json!("INVALID_EMAIL")),
            (json!(["g"]), json!("NOT_FOUND")),
        ]
    );
    let refs: Vec<_> = t
        .sim
        .state()
        .users
        .iter()
        .filter_map(|u| u.ref_.clone())
        .collect();
    assert_eq!(refs, vec!["A1", "A4"]);
}

#[tokio::test]
async fn user_query_selectors() {
    let t = TestSim::example().await;
    let (_, body) = t
        .gql(
            UPSERT_BY_REF,
            json!({ "ref": "E5", "user": { "name": "Five", "email": "five@example.com" } }),
        )
        .await;
    let id = body["data"]["updateOrCreateUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let q = "query($id: UUID, $ref: String, $email: String) { user(id: $id, ref: $ref, email: $email) { ref } }";
    for variables in [
        json!({ "id": id }),
        json!({ "ref": "E5" }),
        json!({ "email": "FIVE@example.com" }),
    ] {
        assert_eq!(t.data(q, variables).await["user"]["ref"], "E5");
    }
    assert_eq!(
        t.data(q, json!({ "ref": "nobody" })).await["user"],
        Value::Null,
        "unknown user is null"
    );
    let (_, body) = t.gql(q, json!({})).await;
    assert_eq!(only_error(&body).1, "BAD_USER_INPUT");
    let (_, body) = t.gql(q, json!({ "id": "not-a-uuid" })).await;
    assert_eq!(only_error(&body).1, "BAD_USER_INPUT");
}
