//! Every record the client rejects is logged exactly once, by the client, with the URL it came
//! from (callers only count): markets, books, book levels, book values and trades; and each kind
//! of drifted field is logged once per client lifetime and counted every time — against a small
//! server on 127.0.0.1.

// Test helpers unwrap too: a panic with the value is the failure report.
#![allow(clippy::unwrap_used)]

use axum::routing::{get, post};
use axum::{Json, Router};
use polytape_polymarket::{ClientConfig, Endpoints, PolymarketClient};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// Log output, shared between the subscriber and the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// The `fields` of every event whose message starts with `message`.
    fn events(&self, message: &str) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|e| {
                e["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(message))
            })
            .map(|e| e["fields"].clone())
            .collect()
    }

    /// The `fields` of every "rejected input" event.
    fn rejections(&self) -> Vec<Value> {
        self.events("rejected input")
    }
}

const GOOD_MARKET: &str = "0x01";
const BAD_MARKET: &str = "0x02";
const DRIFTED_MARKET: &str = "0x03";

async fn server() -> String {
    let app = Router::new()
        .route(
            "/markets/keyset",
            get(|| async {
                Json(json!({
                    "markets": [
                        {"conditionId": GOOD_MARKET, "outcomes": ["Yes", "No"],
                         "updatedAt": "yesterday"},
                        {"id": "2", "conditionId": {"oops": 1}},
                        {"conditionId": DRIFTED_MARKET, "updatedAt": "yesterday",
                         "endDate": {"oops": 1}},
                    ],
                    "next_cursor": null
                }))
            }),
        )
        .route(
            "/books",
            post(|| async {
                Json(json!([
                    {"asset_id": "1", "bids": [{"price": "0.4", "size": "1"},
                                               {"price": true, "size": "1"}],
                     "tick_size": "0", "timestamp": {"ms": 1}},
                    {"market": "0x2", "bids": []},
                ]))
            }),
        )
        .route(
            "/book",
            get(|| async {
                Json(
                    json!({"asset_id": "9", "asks": [{"price": "0.5", "size": "-1"}],
                            "last_trade_price": "2"}),
                )
            }),
        )
        .route(
            "/trades",
            get(|| async {
                Json(json!([
                    {"asset": "1", "side": "BUY", "price": 0.5, "size": 1,
                     "timestamp": 1729000120, "transactionHash": "0xa"},
                    {"asset": "1", "side": "HOLD", "price": 0.5, "size": 1,
                     "timestamp": 1729000120, "transactionHash": "0xb"},
                    {"asset": "1", "price": {"oops": 1}, "transactionHash": "0xc"},
                ]))
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn given_rejections_on_every_path_when_fetched_then_each_is_logged_once_with_its_url() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let base = server().await;
    let c = PolymarketClient::new(ClientConfig {
        endpoints: Endpoints {
            gamma: base.clone(),
            clob: base.clone(),
            data: base.clone(),
            ws: base.clone(),
        },
        backoff_base: Duration::from_millis(1),
        ..ClientConfig::default()
    })
    .unwrap();

    let mut rejected = Vec::new();
    let mut drifts = Vec::new();
    let ids: Vec<String> = [GOOD_MARKET, BAD_MARKET, DRIFTED_MARKET]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let by_id = c.markets_by_condition_ids(&ids).await;
    assert_eq!(by_id.items.len(), 2, "the drifted markets are kept");
    rejected.extend(by_id.rejected);
    drifts.extend(by_id.drifts);
    let books = c.books(&["1".into(), "2".into()]).await;
    rejected.extend(books.rejected);
    drifts.extend(books.drifts);
    let book = c.book("9").await.unwrap();
    rejected.extend(book.rejected);
    let trades = c.trades(&["0x1".into()], 10).await.unwrap();
    assert_eq!(trades.items.len(), 1);
    rejected.extend(trades.rejected);

    let whats: Vec<&str> = rejected.iter().map(|r| r.what).collect();
    assert_eq!(
        whats,
        [
            "gamma market",
            "book level",
            "book value",
            "book",
            "book level",
            "book value",
            "trade",
            "trade"
        ]
    );
    assert_eq!(rejected[0].key.as_deref(), Some("2"));
    let logged = captured.rejections();
    assert_eq!(logged.len(), rejected.len(), "once each: {logged:#?}");
    assert_eq!(c.stats().rejected, rejected.len() as u64);
    for (r, log) in rejected.iter().zip(&logged) {
        assert_eq!(log["what"], r.what);
        assert_eq!(log["key"], r.key.clone().unwrap_or_default());
        assert_eq!(log["reason"], r.reason);
        let url = log["url"].as_str().unwrap_or_default();
        assert!(url.starts_with(&base), "{log}");
    }
    let urls: Vec<&str> = logged
        .iter()
        .map(|l| {
            let u = l["url"].as_str().unwrap();
            let path = &u[base.len()..];
            path.split('?').next().unwrap()
        })
        .collect();
    assert_eq!(
        urls,
        [
            "/markets/keyset",
            "/books",
            "/books",
            "/books",
            "/book",
            "/book",
            "/trades",
            "/trades"
        ]
    );

    // Drifts: counted every time, logged once per (record kind, field).
    let mut keys: Vec<String> = drifts.iter().map(|d| d.stat_key()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "book.timestamp",
            "gamma market.endDate",
            "gamma market.updatedAt",
            "gamma market.updatedAt"
        ]
    );
    let counted =
        |c: &PolymarketClient| -> Vec<(String, u64)> { c.stats().drifts.into_iter().collect() };
    assert_eq!(
        counted(&c),
        [
            ("book.timestamp".to_string(), 1),
            ("gamma market.endDate".to_string(), 1),
            ("gamma market.updatedAt".to_string(), 2)
        ]
    );
    let drift_logs = captured.events("schema drift");
    let mut logged_keys: Vec<String> = drift_logs
        .iter()
        .map(|l| {
            format!(
                "{}.{}",
                l["what"].as_str().unwrap(),
                l["field"].as_str().unwrap()
            )
        })
        .collect();
    logged_keys.sort();
    assert_eq!(
        logged_keys,
        [
            "book.timestamp",
            "gamma market.endDate",
            "gamma market.updatedAt"
        ],
        "once per kind of drift"
    );
    let updated = drift_logs
        .iter()
        .find(|l| l["field"] == "updatedAt")
        .unwrap();
    assert!(
        updated["reason"].as_str().unwrap().contains("yesterday"),
        "{updated}"
    );
    assert!(updated["url"].as_str().unwrap().starts_with(&base));

    // The same drifts again, from a clone: counted, not logged again.
    let again = c.with_deadline(tokio::time::Instant::now() + Duration::from_secs(30));
    let second = again.markets_by_condition_ids(&ids).await;
    assert_eq!(second.drifts.len(), 3);
    assert_eq!(
        counted(&c),
        [
            ("book.timestamp".to_string(), 1),
            ("gamma market.endDate".to_string(), 2),
            ("gamma market.updatedAt".to_string(), 4)
        ]
    );
    assert_eq!(c.stats().drift_total(), 7);
    assert_eq!(
        captured.events("schema drift").len(),
        3,
        "no new drift logs"
    );
}

#[tokio::test]
async fn given_a_books_batch_refused_for_one_id_when_fetched_then_that_id_alone_is_logged_once() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // Refuses any batch holding "bad" (400, a JSON error), answers the others with one
    // empty book per id.
    let app = Router::new().route(
        "/books",
        post(|Json(body): Json<Vec<Value>>| async move {
            let ids: Vec<String> = body
                .iter()
                .filter_map(|e| e["token_id"].as_str().map(str::to_string))
                .collect();
            if ids.iter().any(|id| id == "bad") {
                return (
                    axum::http::StatusCode::BAD_REQUEST,
                    Json(json!({"error": "Invalid token id: bad"})),
                );
            }
            let books: Vec<Value> = ids
                .iter()
                .map(|id| json!({"asset_id": id, "bids": [], "asks": []}))
                .collect();
            (axum::http::StatusCode::OK, Json(Value::Array(books)))
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let base = format!("http://{addr}");
    let c = PolymarketClient::new(ClientConfig {
        endpoints: Endpoints {
            gamma: base.clone(),
            clob: base.clone(),
            data: base.clone(),
            ws: base,
        },
        ..ClientConfig::default()
    })
    .unwrap();

    let ids: Vec<String> = ["a", "b", "bad", "c", "d"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = c.books(&ids).await;
    let got: Vec<&str> = out.items.iter().map(|b| b.token_id.as_str()).collect();
    assert_eq!(got, ["a", "b", "c", "d"]);
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].keys, ["bad"]);
    let logged = captured.events("id refused");
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(logged[0]["key"], "bad");
    assert!(
        logged[0]["error"].as_str().unwrap().contains("400"),
        "{}",
        logged[0]
    );
    assert_eq!(c.stats().refused_ids, 1);
    // [a b bad c d] refused → [a b] ok, [bad c d] refused → [bad] refused, [c d] ok.
    assert_eq!(out.requests, 5);
    assert_eq!(c.stats().requests, 5);
}
