//! Token endpoint, token expiry and the two forms of authentication error.

use pluvo_sim::{AuthErrorMode, Faults};
use serde_json::{Value, json};

use crate::TestSim;

const QUERY: &str = "{ extraCategories { ref } }";

#[tokio::test]
async fn token_endpoint_grants_and_refuses() {
    let t = TestSim::example().await;
    let ok = t
        .token_response(&[
            ("grant_type", "client_credentials"),
            ("client_id", "pluvo-sync"),
            ("client_secret", "sim-secret"),
            ("scope", "users.read"),
        ])
        .await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86_400);
    assert_eq!(body["scope"], "users.read");
    assert!(body["access_token"].as_str().unwrap().len() >= 20);

    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);
    let cases: &[Case] = &[
        (
            "wrong secret",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "pluvo-sync"),
                ("client_secret", "nope"),
            ],
            401,
            "invalid_client",
        ),
        (
            "wrong client",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "other"),
                ("client_secret", "sim-secret"),
            ],
            401,
            "invalid_client",
        ),
        (
            "no credentials",
            &[("grant_type", "client_credentials")],
            401,
            "invalid_client",
        ),
        (
            "bad grant",
            &[
                ("grant_type", "password"),
                ("client_id", "pluvo-sync"),
                ("client_secret", "sim-secret"),
            ],
            400,
            "unsupported_grant_type",
        ),
    ];
    for (name, form, status, error) in cases {
        let response = t.token_response(form).await;
        assert_eq!(response.status().as_u16(), *status, "case {name}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], *error, "case {name}");
    }
    assert_eq!(t.sim.stats().token_requests, 6);
}

#[tokio::test]
async fn expired_and_unknown_tokens_get_401_then_a_new_token_works() {
    let mut t = TestSim::with(Faults {
        token_ttl: 1,
        ..Faults::default()
    })
    .await;
    assert_eq!(t.gql(QUERY, json!({})).await.0, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = t.gql(QUERY, json!({})).await;
    assert_eq!(status, 401);
    assert!(
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap()
            .contains("Auth")
    );

    t.token = "made-up".into();
    assert_eq!(t.gql(QUERY, json!({})).await.0, 401);

    t.token = t.fetch_token().await;
    assert_eq!(t.gql(QUERY, json!({})).await.0, 200);
    t.sim.expire_tokens();
    assert_eq!(
        t.gql(QUERY, json!({})).await.0,
        401,
        "expire_tokens revokes live tokens"
    );
}

#[tokio::test]
async fn auth_error_modes() {
    let t = TestSim::with(Faults {
        auth_error: AuthErrorMode::Graphql,
        ..Faults::default()
    })
    .await;
    t.sim.expire_tokens();
    let (status, body) = t.gql(QUERY, json!({})).await;
    assert_eq!(status, 200);
    assert!(body.get("data").is_none(), "{body}");
    assert!(
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap()
            .contains("Auth")
    );

    t.sim.set_faults(Faults {
        auth_error: AuthErrorMode::Mixed,
        ..Faults::default()
    });
    let mut statuses = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (status, body) = t.gql(QUERY, json!({})).await;
        assert!(
            body["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap()
                .contains("Auth")
        );
        statuses.insert(status);
    }
    assert_eq!(
        statuses.into_iter().collect::<Vec<_>>(),
        vec![200, 401],
        "mixed mode uses both forms"
    );
}

#[tokio::test]
async fn paths_without_trailing_slash_redirect_permanently() {
    let t = TestSim::example().await;
    for (path, target) in [("/graphql", "/graphql/"), ("/oauth/token", "/oauth/token/")] {
        let response = t.http.post(t.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 301, "{path}");
        assert_eq!(response.headers()["location"], target);
    }
}
