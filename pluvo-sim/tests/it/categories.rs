//! updateExtraCategoryValues: typed values, unknown categories and options, untouched values.

use serde_json::{Value, json};

use crate::{TestSim, only_error};

const SET: &str = "mutation($ref: String, $values: [ExtraCategoryValueInput!]!) {
  updateExtraCategoryValues(contentType: USER, modelRef: $ref, values: $values) {
    extraCategoryValues {
      category { ref }
      ... on ExtraCategoryStringValue { stringValue }
      ... on ExtraCategoryChoiceValue { choiceValue { stringValue } }
      ... on ExtraCategoryBooleanValue { booleanValue }
      ... on ExtraCategoryDatetimeValue { datetimeValue }
    }
  }
}";

async fn with_user() -> TestSim {
    let t = TestSim::example().await;
    t.upsert("E1", json!({ "name": "One", "email": "one@example.com" }))
        .await;
    t
}

#[tokio::test]
async fn each_type_is_stored_and_read_back() {
    let t = with_user().await;
    let values = json!([
        { "categoryRef": "department", "stringValue": "Sales" },
        { "categoryRef": "contract_type", "choiceValues": [{ "stringValue": "Temporary" }] },
        { "categoryRef": "has_company_car", "booleanValue": true },
        { "categoryRef": "hire_date", "datetimeValue": "2021-03-01T00:00:00+00:00" },
    ]);
    let data = t.data(SET, json!({ "ref": "E1", "values": values })).await;
    let written = data["updateExtraCategoryValues"]["extraCategoryValues"]
        .as_array()
        .unwrap();
    assert_eq!(written.len(), 4);
    let view = t.sim.state();
    let categories = &view.user("E1").unwrap().categories;
    let expected: std::collections::BTreeMap<String, Value> = [
        ("department", json!("Sales")),
        ("contract_type", json!(["Temporary"])),
        ("has_company_car", json!(true)),
        ("hire_date", json!("2021-03-01T00:00:00+00:00")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(categories, &expected);

    // By category id too, and a later call leaves unnamed categories alone.
    let ids = t
        .data(
            "{ extraCategories { id ref categoryType choiceOptions { stringValue } } }",
            json!({}),
        )
        .await;
    let cost_center = ids["extraCategories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["ref"] == "cost_center")
        .unwrap();
    let values = json!([{ "categoryId": cost_center["id"], "stringValue": "CC-7" }]);
    t.data(SET, json!({ "ref": "E1", "values": values })).await;
    let view = t.sim.state();
    let categories = &view.user("E1").unwrap().categories;
    assert_eq!(categories["cost_center"], "CC-7");
    assert_eq!(categories["department"], "Sales");
    assert_eq!(categories.len(), 5);

    // Read through the user, as a sync's snapshot query would.
    let q = "{ user(ref: \"E1\") { extraCategoryValues { category { ref } ... on ExtraCategoryBooleanValue { booleanValue } } } }";
    let data = t.data(q, json!({})).await;
    let car = data["user"]["extraCategoryValues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["category"]["ref"] == "has_company_car")
        .cloned();
    assert_eq!(
        car,
        Some(json!({ "category": { "ref": "has_company_car" }, "booleanValue": true }))
    );
}

#[tokio::test]
async fn invalid_values_fail_the_whole_call() {
    let t = with_user().await;
    let good = json!({ "categoryRef": "department", "stringValue": "HR" });
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown category",
            json!({ "categoryRef": "shoe_size", "stringValue": "44" }),
            "NOT_FOUND",
        ),
        (
            "unknown choice",
            json!({ "categoryRef": "contract_type", "choiceValues": [{ "stringValue": "Forever" }] }),
            "NOT_FOUND",
        ),
        (
            "wrong value type",
            json!({ "categoryRef": "has_company_car", "stringValue": "yes" }),
            "BAD_USER_INPUT",
        ),
        (
            "two value fields",
            json!({ "categoryRef": "department", "stringValue": "a", "booleanValue": true }),
            "BAD_USER_INPUT",
        ),
        (
            "no value field",
            json!({ "categoryRef": "department" }),
            "BAD_USER_INPUT",
        ),
        (
            "no category selector",
            json!({ "stringValue": "x" }),
            "BAD_USER_INPUT",
        ),
        (
            "bad datetime",
            json!({ "categoryRef": "hire_date", "datetimeValue": "yesterday" }),
            "BAD_USER_INPUT",
        ),
    ];
    for (name, bad, code) in cases {
        let (_, body) = t
            .gql(SET, json!({ "ref": "E1", "values": [good.clone(), bad] }))
            .await;
        assert_eq!(
            only_error(&body),
            (json!(["updateExtraCategoryValues"]), code.to_owned()),
            "case {name}: {body}"
        );
    }
    let (_, body) = t.gql(SET, json!({ "ref": "E404", "values": [good] })).await;
    assert_eq!(only_error(&body).1, "NOT_FOUND", "unknown user");
    assert!(
        t.sim.state().user("E1").unwrap().categories.is_empty(),
        "no partial writes"
    );
}
