//! The OpenAPI 3.1 document of the status API, built from [`super::routes::ROUTES`]: every
//! path, its path and query parameters with their types and bounds, what it answers, and the
//! error shape. `docs/openapi.json` is this document (a test holds it equal; the router serves
//! it at `/api/openapi.json`).

use super::routes::{Kind, Route, ROUTES};
use serde_json::{json, Map, Value};

/// The path parameters of `path`: the names in braces.
pub fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn schema(kind: Kind) -> Value {
    match kind {
        Kind::Int { min, max, default } => json!({
            "type": "integer", "minimum": min, "maximum": max, "default": default,
        }),
        Kind::Tier => json!({"type": "string", "pattern": "^[Tt]?[0-4]$"}),
        Kind::Text { max_len } => json!({"type": "string", "minLength": 1, "maxLength": max_len}),
        Kind::Enum { values, default } => {
            let mut s = json!({"type": "string", "enum": values});
            if !default.is_empty() {
                s["default"] = json!(default);
            }
            s
        }
        Kind::Cursor => json!({"type": "string", "maxLength": 512}),
        Kind::Bool => json!({"type": "boolean"}),
    }
}

fn operation(r: &Route) -> Value {
    let mut params: Vec<Value> = path_params(r.path)
        .into_iter()
        .map(|name| {
            json!({
                "name": name, "in": "path", "required": true, "schema": {"type": "string"},
            })
        })
        .collect();
    params.extend(r.query.iter().map(|p| {
        json!({
            "name": p.name, "in": "query", "required": false, "description": p.doc,
            "schema": schema(p.kind),
        })
    }));
    let ok = match r.content_type() {
        "text/event-stream" => {
            json!({"description": "Server-sent events.", "content": {"text/event-stream": {}}})
        }
        "text/html" => json!({"description": "The HTML page.", "content": {"text/html": {}}}),
        _ => {
            json!({"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}})
        }
    };
    let error = |what: &str| json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let mut responses = Map::new();
    responses.insert("200".into(), ok);
    if r.path == "/health/critical" {
        responses.insert(
            "503".into(),
            json!({"description": "Some check fails (the same body as 200), or the store cannot be read.",
                   "content": {"application/json": {"schema": {"type": "object"}}}}),
        );
    } else {
        responses.insert(
            "503".into(),
            error("The store cannot be read (store_unavailable)."),
        );
    }
    responses.insert(
        "400".into(),
        error(if r.body.is_empty() {
            "A parameter the endpoint does not take (unknown_parameter), a bad value (bad_parameter) or cursor (bad_cursor)."
        } else {
            "A parameter the endpoint does not take (unknown_parameter) or a body that is not the object described (bad_body)."
        }),
    );
    if !path_params(r.path).is_empty() || r.local_only {
        let what = match (r.local_only, path_params(r.path).is_empty()) {
            (true, true) => "Not served by the status function (not_available).",
            (true, false) => {
                "No such strategy (not_found); not served by the status function \
                 (not_available)."
            }
            (false, _) => "No such market or table (not_found).",
        };
        responses.insert("404".into(), error(what));
    }
    let mut op = json!({
        "operationId": operation_id(r.method.as_str(), r.path),
        "summary": r.summary,
        "description": r.description,
        "parameters": params,
        "responses": responses,
    });
    if r.local_only {
        op["x-local-only"] = json!(true);
    }
    if !r.body.is_empty() {
        let properties: Map<String, Value> = r
            .body
            .iter()
            .map(|p| {
                let mut s = schema(p.kind);
                s["description"] = json!(p.doc);
                (p.name.to_string(), s)
            })
            .collect();
        let required: Vec<&str> = r.body.iter().map(|p| p.name).collect();
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": false,
            }}},
        });
    }
    op
}

/// `getApiMarketsConditionId` for GET `/api/markets/{condition_id}`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = String::from(method);
    for word in path.split(['/', '-', '_', '{', '}', '.']) {
        let mut c = word.chars();
        if let Some(first) = c.next() {
            id.extend(first.to_uppercase());
            id.push_str(c.as_str());
        }
    }
    if id == method {
        id.push_str("Root");
    }
    id
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let item = paths.entry(r.path).or_insert_with(|| json!({}));
        item[r.method.as_str()] = operation(r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "polytape status API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Monitoring JSON of a polytape collector: served by `polytape run` \
                            (127.0.0.1:8787) and by the status Lambda behind an API Gateway \
                            HTTP API, with the same answers. Generated from \
                            crates/collector/src/status/routes.rs.",
        },
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": [
                        "bad_parameter", "unknown_parameter", "bad_cursor", "bad_body", "not_found",
                        "not_available", "method_not_allowed", "store_unavailable",
                    ]},
                    "message": {"type": "string"},
                },
            }},
        }}},
    })
}
