//! Protocol edge cases the simulator does not produce, against small servers on 127.0.0.1:
//! cursor loops, short pages that are not the last, cursors on full condition-id pages, a
//! connection dropped mid-body, and an oversized body sent without a Content-Length.

// Test helpers unwrap too: a panic with the value is the failure report.
#![allow(clippy::unwrap_used)]

use axum::extract::{Query, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use polytape_polymarket::{ClientConfig, Endpoints, FetchError, KeysetQuery, PolymarketClient};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn client_for(base: &str) -> PolymarketClient {
    PolymarketClient::new(ClientConfig {
        endpoints: Endpoints {
            gamma: base.into(),
            clob: base.into(),
            data: base.into(),
            ws: base.into(),
        },
        backoff_base: Duration::from_millis(1),
        ..ClientConfig::default()
    })
    .unwrap()
}

/// Serves `/markets/keyset` from a script: the page for each `after_cursor` (None = first).
async fn keyset_server(
    pages: Vec<(Option<&'static str>, Value)>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    type Shared = (Arc<HashMap<Option<String>, Value>>, Arc<Mutex<Vec<String>>>);
    let script: HashMap<Option<String>, Value> = pages
        .into_iter()
        .map(|(k, v)| (k.map(str::to_string), v))
        .collect();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state: Shared = (Arc::new(script), seen.clone());
    let app =
        Router::new()
            .route(
                "/markets/keyset",
                get(
                    |State((script, seen)): State<Shared>,
                     Query(q): Query<HashMap<String, String>>| async move {
                        let cursor = q.get("after_cursor").cloned();
                        seen.lock()
                            .unwrap()
                            .push(cursor.clone().unwrap_or_default());
                        Json(
                            script
                                .get(&cursor)
                                .cloned()
                                .unwrap_or(json!({"markets": []})),
                        )
                    },
                ),
            )
            .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

fn market(cid: &str) -> Value {
    json!({"conditionId": cid, "outcomes": "[\"Yes\", \"No\"]"})
}

#[tokio::test]
async fn given_a_cursor_that_comes_back_when_paging_then_repeated_cursor_not_a_loop() {
    let (base, seen) = keyset_server(vec![
        (
            None,
            json!({"markets": [market("0x1")], "next_cursor": "c1"}),
        ),
        (
            Some("c1"),
            json!({"markets": [market("0x2")], "next_cursor": "c1"}),
        ),
    ])
    .await;
    let err = client_for(&base)
        .keyset_markets(&KeysetQuery::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::RepeatedCursor { cursor } if cursor == "c1"),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(
        *seen.lock().unwrap(),
        ["", "c1"],
        "stopped after the repeat"
    );
}

#[tokio::test]
async fn given_an_empty_cursor_when_paging_then_repeated_cursor() {
    let (base, seen) = keyset_server(vec![(
        None,
        json!({"markets": [market("0x1")], "next_cursor": ""}),
    )])
    .await;
    let err = client_for(&base)
        .keyset_markets(&KeysetQuery::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, FetchError::RepeatedCursor { cursor } if cursor.is_empty()),
        "{err:?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn given_a_short_page_with_a_cursor_when_paging_then_the_next_page_is_still_read() {
    let (base, seen) = keyset_server(vec![
        (
            None,
            json!({"markets": [market("0x1")], "next_cursor": "c1"}),
        ),
        (
            Some("c1"),
            json!({"markets": [market("0x2"), market("0x3")], "next_cursor": null}),
        ),
    ])
    .await;
    let listing = client_for(&base)
        .keyset_markets(&KeysetQuery::default())
        .await
        .unwrap();
    assert_eq!(listing.pages, 2);
    let cids: Vec<_> = listing
        .items
        .iter()
        .filter_map(|m| m.condition_id())
        .collect();
    assert_eq!(cids, ["0x1", "0x2", "0x3"]);
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "null next_cursor ends the listing"
    );
}

/// A raw HTTP server answering every connection with `response`, then closing it.
async fn raw_server(response: Vec<u8>) -> (String, Arc<Mutex<u32>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            *counter.lock().unwrap() += 1;
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(&response).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn given_a_connection_dropped_mid_body_when_fetching_then_truncated_after_retries() {
    let mut resp =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
            .to_vec();
    resp.extend_from_slice(br#"{"markets":[{"conditionId":"0x1"#);
    let (base, hits) = raw_server(resp).await;
    let c = client_for(&base);
    let err = c.keyset_markets(&KeysetQuery::default()).await.unwrap_err();
    assert!(matches!(err, FetchError::Truncated { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(*hits.lock().unwrap(), 4, "1 + max_retries attempts");
    assert_eq!((c.stats().truncated, c.stats().retries), (4, 3));
}

#[tokio::test]
async fn given_a_chunked_body_over_the_cap_when_fetching_then_too_large_without_retry() {
    let mut resp =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            .to_vec();
    let chunk = vec![b' '; 1024];
    for _ in 0..8 {
        resp.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        resp.extend_from_slice(&chunk);
        resp.extend_from_slice(b"\r\n");
    }
    resp.extend_from_slice(b"0\r\n\r\n");
    let (base, hits) = raw_server(resp).await;
    let c = PolymarketClient::new(ClientConfig {
        max_body_bytes: 4_000,
        ..client_for(&base).config().clone()
    })
    .unwrap();
    let err = c.keyset_markets(&KeysetQuery::default()).await.unwrap_err();
    assert!(
        matches!(err, FetchError::TooLarge { limit: 4_000, .. }),
        "{err:?}"
    );
    assert_eq!(*hits.lock().unwrap(), 1);
}

#[tokio::test]
async fn given_an_html_200_when_fetching_then_decode_error_without_retry() {
    let body = "<html>maintenance</html>";
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let (base, hits) = raw_server(resp.into_bytes()).await;
    let err = client_for(&base)
        .keyset_markets(&KeysetQuery::default())
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Decode { .. }), "{err:?}");
    assert_eq!(*hits.lock().unwrap(), 1);
}

/// The `condition_ids` and `after_cursor` of a raw query string.
fn condition_query(q: Option<&str>) -> (Vec<String>, Option<String>) {
    let url = reqwest::Url::parse(&format!("http://x/?{}", q.unwrap_or_default())).unwrap();
    let mut ids = Vec::new();
    let mut cursor = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "condition_ids" => ids.push(v.into_owned()),
            "after_cursor" => cursor = Some(v.into_owned()),
            _ => {}
        }
    }
    (ids, cursor)
}

/// Serves `/markets/keyset?condition_ids=…` like Gamma may: the first page holds the requested
/// markets except those in `withheld`, and always carries `next_cursor: "more"`; the `"more"`
/// page holds the withheld ones that were asked for and ends the listing. Records every query.
async fn condition_server(withheld: Vec<String>) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    condition_server_with(withheld, "more".into()).await
}

/// [`condition_server`] with `next_cursor` as given on the first page.
async fn condition_server_with(
    withheld: Vec<String>,
    next_cursor: String,
) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    type Shared = (Arc<(Vec<String>, String)>, Arc<Mutex<Vec<Option<String>>>>);
    let hits = Arc::new(Mutex::new(Vec::new()));
    let state: Shared = (Arc::new((withheld, next_cursor)), hits.clone());
    let app = Router::new()
        .route(
            "/markets/keyset",
            get(
                |State((script, hits)): State<Shared>, RawQuery(q): RawQuery| async move {
                    let (withheld, next_cursor) = &*script;
                    let (ids, cursor) = condition_query(q.as_deref());
                    hits.lock().unwrap().push(cursor.clone());
                    let first_page = cursor.is_none();
                    let markets: Vec<Value> = ids
                        .iter()
                        .filter(|id| withheld.contains(id) != first_page)
                        .map(|id| market(id))
                        .collect();
                    let next = if first_page {
                        json!(next_cursor)
                    } else {
                        json!(null)
                    };
                    Json(json!({"markets": markets, "next_cursor": next}))
                },
            ),
        )
        .with_state(state);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), hits)
}

fn condition_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("0x{i:064x}")).collect()
}

#[tokio::test]
async fn given_full_pages_with_a_next_cursor_when_every_id_came_back_then_one_request_per_chunk() {
    let (base, hits) = condition_server(Vec::new()).await;
    let ids = condition_ids(250);
    let out = client_for(&base).markets_by_condition_ids(&ids).await;
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert_eq!(out.items.len(), 250);
    assert_eq!(out.requests, 3, "⌈250/100⌉ requests");
    assert_eq!(
        *hits.lock().unwrap(),
        [None, None, None],
        "the cursor of a chunk whose ids all came back is not followed"
    );
}

#[tokio::test]
async fn given_a_chunk_with_ids_missing_and_a_cursor_when_fetched_then_the_cursor_is_followed() {
    let ids = condition_ids(90);
    let (base, hits) = condition_server(vec![ids[89].clone()]).await;
    let out = client_for(&base).markets_by_condition_ids(&ids).await;
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert_eq!(
        out.items.len(),
        90,
        "the withheld market came on the next page"
    );
    assert_eq!(out.items[89].condition_id(), Some(ids[89].as_str()));
    assert_eq!(out.requests, 2);
    assert_eq!(*hits.lock().unwrap(), [None, Some("more".to_string())]);
}

#[tokio::test]
async fn given_a_full_chunk_whose_cursor_does_not_fit_its_url_when_fetched_then_the_missing_ids_are_asked_afresh(
) {
    let ids = condition_ids(100);
    // 100 ids fill the URL: no cursor fits after them. The withheld id is asked for alone,
    // then its cursor is followed in the short URL.
    let cursor = "c".repeat(600);
    let (base, hits) = condition_server_with(vec![ids[5].clone()], cursor.clone()).await;
    let out = client_for(&base).markets_by_condition_ids(&ids).await;
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert_eq!(out.items.len(), 100, "every market arrived");
    assert_eq!(*hits.lock().unwrap(), [None, None, Some(cursor)]);
    assert_eq!(out.requests, 3);

    // A cursor too long for any URL: the over-long URL is never sent; only the id that had
    // not come back fails, loudly.
    let absurd = "c".repeat(9_000);
    let (base, hits) = condition_server_with(vec![ids[5].clone()], absurd).await;
    let out = client_for(&base).markets_by_condition_ids(&ids).await;
    assert_eq!(out.items.len(), 99, "the first page's markets are kept");
    assert_eq!(out.failures.len(), 1);
    assert_eq!(out.failures[0].keys, [ids[5].as_str()]);
    assert!(
        matches!(
            out.failures[0].error,
            FetchError::UrlTooLong { limit: 8_192, .. }
        ),
        "{:?}",
        out.failures[0].error
    );
    assert_eq!(
        *hits.lock().unwrap(),
        [None, None],
        "the over-long URLs were not sent"
    );
    assert_eq!(out.requests, 2);
}
