//! Integration tests: the simulator driven over plain HTTP, as the sync will drive it.

// clippy.toml allows unwrap in test functions only; the helpers here are test code too.
#![allow(clippy::unwrap_used)]

mod admin;
mod auth;
mod categories;
mod cli;
mod enrollments;
mod faults;
mod groups;
mod paging;
mod reports;
mod requests;
mod trainings;
mod users;

use pluvo_sim::{Faults, Seed, SimConfig, SimHandle};
use serde_json::{Value, json};

/// A running simulator plus a client that talks to it.
pub struct TestSim {
    pub sim: SimHandle,
    pub http: reqwest::Client,
    pub token: String,
}

impl TestSim {
    /// The example tenant with default knobs.
    pub async fn example() -> Self {
        Self::with(Faults::default()).await
    }

    pub async fn with(faults: Faults) -> Self {
        Self::start(SimConfig {
            seed: Seed::example(),
            ..SimConfig::with_faults(faults)
        })
        .await
    }

    pub async fn start(config: SimConfig) -> Self {
        let sim = pluvo_sim::start("127.0.0.1:0".parse().unwrap(), config)
            .await
            .unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut this = Self {
            sim,
            http,
            token: String::new(),
        };
        this.token = this.fetch_token().await;
        this
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    /// `GET` an admin endpoint and decode its JSON.
    pub async fn admin_get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// `POST` JSON to an admin endpoint.
    pub async fn admin_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn token_response(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url("/oauth/token/"))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    pub async fn fetch_token(&self) -> String {
        let response = self
            .token_response(&[
                ("grant_type", "client_credentials"),
                ("client_id", "pluvo-sync"),
                ("client_secret", "sim-secret"),
                ("scope", "users.read users.write"),
            ])
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Sends a GraphQL request; a transport error is returned as `Err`.
    pub async fn try_gql(
        &self,
        query: &str,
        variables: Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        let response = self
            .http
            .post(self.url("/graphql/"))
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    pub async fn gql(&self, query: &str, variables: Value) -> (u16, Value) {
        self.try_gql(query, variables).await.unwrap()
    }

    /// A request that must succeed without errors; returns `data`.
    pub async fn data(&self, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql(query, variables).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// `updateOrCreateUser` by ref with `sendInvite: false`.
    pub async fn upsert(&self, r: &str, user: Value) -> (u16, Value) {
        self.gql(UPSERT_BY_REF, json!({ "ref": r, "user": user }))
            .await
    }
}

pub const UPSERT_BY_REF: &str = "mutation($ref: String!, $user: UserInput!) {
  updateOrCreateUser(ref: $ref, sendInvite: false, user: $user) { created user { id ref email name archived roles language } }
}";

/// The single error of a response that failed one field, as (path, code).
pub fn only_error(body: &Value) -> (Value, String) {
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {body}"));
    assert_eq!(errors.len(), 1, "{body}");
    (
        errors[0]["path"].clone(),
        errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// Asserts a request-level rejection: errors and no `data` key at all.
pub fn assert_rejected(status: u16, body: &Value, expected_status: u16) {
    assert_eq!(status, expected_status, "{body}");
    assert!(
        body.get("data").is_none(),
        "request errors must not carry data: {body}"
    );
    assert!(!body["errors"].as_array().unwrap().is_empty(), "{body}");
}
