//! docs/openapi.json is the status router's document: the file equals the document the
//! router's endpoint table generates (and serves at /api/openapi.json), and, read back as a
//! client would read it, every path it lists is answered by the router (not its 404 fallback),
//! every query parameter it lists is accepted, and any other parameter is refused.
//!
//! After changing an endpoint: `POLYTAPE_WRITE_OPENAPI=1 cargo test -p polytape-collector
//! --test openapi` rewrites the file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: any failure should fail it loudly

use polytape_collector::status::{self, Status};
use polytape_collector::Config;
use polytape_store::LocalStore;
use serde_json::Value;
use std::path::PathBuf;

fn doc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn docs_openapi_json_is_the_document_of_the_routers_endpoint_table() {
    let want = serde_json::to_string_pretty(&status::openapi::document()).unwrap() + "\n";
    if std::env::var("POLYTAPE_WRITE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(doc_path(), &want).unwrap();
    }
    let have = std::fs::read_to_string(doc_path()).unwrap_or_default();
    assert!(
        have == want,
        "docs/openapi.json differs from the router's endpoint table \
         (crates/collector/src/status/routes.rs): rewrite it with \
         POLYTAPE_WRITE_OPENAPI=1 cargo test -p polytape-collector --test openapi"
    );
}

/// A value the schema accepts.
fn sample(schema: &Value) -> String {
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.as_str().unwrap().to_string();
    }
    match schema["type"].as_str() {
        Some("integer") => schema["minimum"].to_string(),
        _ if schema["pattern"].is_string() => "2".into(),
        _ => "x".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_path_and_parameter_is_served_and_no_other_parameter_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(status::serve(
        listener,
        status::router(Status::new(store, Config::default())),
        std::future::pending(),
    ));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(doc_path()).unwrap()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let operations: usize = paths.values().map(|i| i.as_object().unwrap().len()).sum();
    assert_eq!(operations, status::routes::ROUTES.len());
    let http = reqwest::Client::new();
    // GET, or POST with an empty JSON object (each endpoint refuses a bad query first).
    let call = |method: String, url: String| {
        let http = http.clone();
        async move {
            let r = if method == "post" {
                http.post(&url)
                    .header("content-type", "application/json")
                    .body("{}")
            } else {
                http.get(&url)
            };
            let r = r.send().await.unwrap();
            let code = r.status().as_u16();
            let stream = r
                .headers()
                .get("content-type")
                .is_some_and(|c| c.as_bytes().starts_with(b"text/event-stream"));
            let body: Value = if stream {
                Value::Null
            } else {
                r.json().await.unwrap_or(Value::Null)
            };
            (code, body)
        }
    };
    let fallback = |body: &Value| body["error"]["message"] == "no such endpoint";
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let get = |url: String| call(method.clone(), url);
            let mut concrete = path.clone();
            for p in op["parameters"].as_array().unwrap() {
                if p["in"] == "path" {
                    let value = if p["name"] == "condition_id" {
                        "0xabc"
                    } else {
                        "snapshots"
                    };
                    concrete =
                        concrete.replace(&format!("{{{}}}", p["name"].as_str().unwrap()), value);
                }
            }
            let (code, body) = get(format!("{base}{concrete}")).await;
            assert!(
                !fallback(&body),
                "{path}: answered by the fallback: {code} {body}"
            );
            let documented: Vec<String> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect();
            assert!(
                documented.contains(&code.to_string()),
                "{path}: {code} is not a documented response ({documented:?}): {body}"
            );
            for p in op["parameters"].as_array().unwrap() {
                if p["in"] != "query" {
                    continue;
                }
                let name = p["name"].as_str().unwrap();
                let url = format!("{base}{concrete}?{name}={}", sample(&p["schema"]));
                let (code, body) = get(url).await;
                assert_ne!(
                    body["error"]["code"], "unknown_parameter",
                    "{path}: the documented {name} is refused ({code})"
                );
            }
            let (code, body) = get(format!("{base}{concrete}?undocumented=1")).await;
            assert_eq!(
                (code, body["error"]["code"].as_str()),
                (400, Some("unknown_parameter")),
                "{path}: a parameter the document does not list is taken"
            );
        }
    }
}
