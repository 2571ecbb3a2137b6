//! The OpenAPI document is a contract a generated client is built from: every
//! path parameter is declared, every operation says what it answers on success
//! and how the platform's own layers can refuse it, and errors are
//! problem+json. (The stock fuzzer run in scripts/test.sh checks the answers
//! against it.)

#![allow(clippy::unwrap_used)]

use serde_json::Value;

/// Operations called without a token.
const PUBLIC: &[&str] = &["/api/docs", "/api/payments/acquiring/callback"];

fn document() -> Value {
    serde_json::to_value(platform::app::openapi_document(&portal::services())).unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch"] {
            if let Some(op) = item.get(method) {
                out.push((path.clone(), method.to_string(), op.clone()));
            }
        }
    }
    out
}

#[test]
fn every_path_parameter_is_declared() {
    let doc = document();
    let mut missing = Vec::new();
    for (path, method, op) in operations(&doc) {
        let declared: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            if !declared.contains(&name) {
                missing.push(format!("{method} {path}: {name}"));
            }
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            if param["in"] == "path" {
                let name = param["name"].as_str().unwrap();
                assert!(
                    path.contains(&format!("{{{name}}}")),
                    "{method} {path} declares path parameter {name} it does not have"
                );
                assert_eq!(param["required"], true, "{method} {path}: {name}");
            }
        }
    }
    assert!(missing.is_empty(), "undeclared: {missing:#?}");
}

#[test]
fn every_operation_documents_success_and_the_platforms_refusals() {
    let doc = document();
    let ops = operations(&doc);
    assert!(ops.len() > 60, "{} operations", ops.len());
    for (path, method, op) in ops {
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|k| k.starts_with('2')),
            "{method} {path} documents no success"
        );
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        // The acquiring bank's callback carries no token: a checksum proves it.
        if path.starts_with("/api/") && !PUBLIC.contains(&path.as_str()) {
            assert!(secured, "{method} {path} is not marked as taking a token");
        }
        let mut expected: Vec<&str> = Vec::new();
        if secured {
            expected.extend(["401", "403"]);
        }
        if path.contains('{') {
            expected.push("404");
        }
        if op.get("requestBody").is_some() {
            expected.extend(["400", "413"]);
        }
        for code in expected {
            assert!(
                responses.contains_key(code),
                "{method} {path} does not document {code}"
            );
        }
        for (code, response) in responses {
            if path.starts_with("/api/") && (code.starts_with('4') || code.starts_with('5')) {
                let content = response["content"].as_object();
                assert!(
                    content.is_some_and(|c| c.contains_key("application/problem+json")),
                    "{method} {path} {code} is not application/problem+json: {response}"
                );
            }
        }
    }
}
