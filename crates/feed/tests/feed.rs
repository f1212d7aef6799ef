//! The feed over frames and Data API rows in Polymarket's wire format.
#![allow(clippy::unwrap_used)]

use polytape_core::live::{TapeKind, TapeRecord};
use polytape_feed::{Asset, Feed, FeedConfig, Output, SizeSource, Source, StoredTrade, WhaleEvent};
use polytape_polymarket::data::decode_trades;
use rust_decimal::Decimal;
use std::str::FromStr;
use std::sync::Arc;

const CID: &str = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917";
const YES: &str = "2174263314346390629056905015582624153306727273689761495048815684794993883645";
const NO: &str = "4855141262137128738474590217547036418264524436429437393488577541125427138012";
/// 2026-11-20T12:00:00Z.
const T0: i64 = 1_795_176_000_000;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn feed() -> Feed {
    let mut f = Feed::new(FeedConfig::default());
    let cid: Arc<str> = Arc::from(CID);
    f.set_assets([
        (
            YES.to_string(),
            Asset {
                condition_id: cid.clone(),
                outcome: 0,
            },
        ),
        (
            NO.to_string(),
            Asset {
                condition_id: cid,
                outcome: 1,
            },
        ),
    ]);
    f
}

/// A `last_trade_price` event as Polymarket sends it (`size: None` leaves the field out).
fn trade(asset: &str, side: &str, price: &str, size: Option<&str>, ms: i64, tx: &str) -> String {
    let size = size.map_or(String::new(), |s| format!("\"size\":\"{s}\","));
    format!(
        "{{\"asset_id\":\"{asset}\",\"event_type\":\"last_trade_price\",\"fee_rate_bps\":\"0\",\
         \"market\":\"{CID}\",\"price\":\"{price}\",\"side\":\"{side}\",{size}\
         \"timestamp\":\"{ms}\",\"transaction_hash\":\"{tx}\"}}"
    )
}

fn book(asset: &str, bid: &str, ask: &str, ms: i64) -> String {
    // Served order: best LAST on both sides.
    format!(
        "{{\"event_type\":\"book\",\"asset_id\":\"{asset}\",\"market\":\"{CID}\",\
         \"bids\":[{{\"price\":\"0.01\",\"size\":\"100\"}},{{\"price\":\"{bid}\",\"size\":\"50\"}}],\
         \"asks\":[{{\"price\":\"0.99\",\"size\":\"100\"}},{{\"price\":\"{ask}\",\"size\":\"50\"}}],\
         \"timestamp\":\"{ms}\",\"hash\":\"h\"}}"
    )
}

/// A Data API `/trades` row (numbers, seconds).
fn row(asset: &str, side: &str, price: &str, size: &str, ms: i64, tx: &str) -> String {
    format!(
        "{{\"proxyWallet\":\"0xw\",\"side\":\"{side}\",\"asset\":\"{asset}\",\"conditionId\":\"{CID}\",\
         \"size\":{size},\"price\":{price},\"timestamp\":{},\"transactionHash\":\"{tx}\"}}",
        ms / 1000
    )
}

fn backfill(f: &mut Feed, recv_ms: i64, rows: &[String]) {
    let body = format!("[{}]", rows.join(","));
    let decoded = decode_trades(body.as_bytes()).unwrap();
    f.on_backfill(recv_ms, &decoded.trades, false);
}

fn trades(out: &[Output]) -> Vec<&StoredTrade> {
    out.iter()
        .filter_map(|o| match o {
            Output::Trade(t) => Some(t.as_ref()),
            Output::Whale(_) => None,
        })
        .collect()
}

fn whales(out: &[Output]) -> Vec<&WhaleEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Whale(w) => Some(w.as_ref()),
            Output::Trade(_) => None,
        })
        .collect()
}

#[test]
fn given_duplicates_from_frames_shards_and_backfill_then_each_trade_is_stored_once() {
    let mut f = feed();
    let a = trade(YES, "BUY", "0.45", Some("10"), T0, "0xt1");
    // Two fills of one transaction that look the same, 3 ms apart: both are real.
    let b1 = trade(YES, "SELL", "0.44", Some("5"), T0 + 100, "0xt2");
    let b2 = trade(YES, "SELL", "0.44", Some("5"), T0 + 103, "0xt2");
    f.on_frame(0, 1, T0 + 50, &format!("[{a},{b1}]"));
    f.on_frame(0, 2, T0 + 150, &b1); // a duplicate frame
    f.on_frame(1, 1, T0 + 160, &format!("[{b1},{b2}]")); // another shard
    let out = f.drain();
    assert_eq!(trades(&out).len(), 3);
    assert_eq!(f.counts().duplicates, 2);
    let keys: std::collections::HashSet<&str> =
        trades(&out).iter().map(|t| t.trade_key.as_str()).collect();
    assert_eq!(keys.len(), 3);

    // The Data API serves the same three fills (block time in seconds) and one missed live.
    backfill(
        &mut f,
        T0 + 60_000,
        &[
            row(YES, "BUY", "0.46", "7", T0 + 500, "0xt3"),
            row(YES, "SELL", "0.44", "5", T0, "0xt2"),
            row(YES, "SELL", "0.44", "5", T0, "0xt2"),
            row(YES, "BUY", "0.45", "10", T0, "0xt1"),
        ],
    );
    let out = f.drain();
    let new = trades(&out);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!((new[0].source, new[0].price), (Source::Backfill, d("0.46")));
    assert_eq!(f.counts().duplicates, 5);
    // And the backfill again (an overlapping window): nothing new.
    backfill(
        &mut f,
        T0 + 61_000,
        &[row(YES, "BUY", "0.46", "7", T0 + 500, "0xt3")],
    );
    assert!(trades(&f.drain()).is_empty());
}

#[test]
fn given_a_fill_missed_live_among_identical_ones_then_the_backfill_adds_exactly_it() {
    let mut f = feed();
    // Three identical fills in one transaction; the feed heard only the last two.
    f.on_frame(
        0,
        1,
        T0 + 10,
        &trade(YES, "BUY", "0.5", Some("2"), T0 + 2, "0xtx"),
    );
    f.on_frame(
        0,
        2,
        T0 + 10,
        &trade(YES, "BUY", "0.5", Some("2"), T0 + 3, "0xtx"),
    );
    assert_eq!(trades(&f.drain()).len(), 2);
    let r = row(YES, "BUY", "0.5", "2", T0, "0xtx");
    backfill(&mut f, T0 + 60_000, &[r.clone(), r.clone(), r]);
    let out = f.drain();
    assert_eq!(trades(&out).len(), 1);
    assert_eq!(f.counts().trades_ws + f.counts().trades_backfill, 3);
}

#[test]
fn given_books_and_price_changes_then_each_trade_carries_the_top_of_book_before_it() {
    let mut f = feed();
    f.on_frame(0, 1, T0, &format!("[{}]", book(YES, "0.44", "0.46", T0)));
    f.on_frame(
        0,
        2,
        T0 + 10,
        &trade(YES, "BUY", "0.46", Some("10"), T0 + 5, "0xa"),
    );
    let pc = format!(
        "{{\"event_type\":\"price_change\",\"market\":\"{CID}\",\"timestamp\":\"{}\",\"price_changes\":[\
         {{\"asset_id\":\"{YES}\",\"price\":\"0.46\",\"size\":\"0\",\"side\":\"SELL\",\"hash\":\"x\",\"best_bid\":\"0.45\",\"best_ask\":\"0.47\"}}]}}",
        T0 + 20
    );
    f.on_frame(0, 3, T0 + 20, &pc);
    f.on_frame(
        0,
        4,
        T0 + 30,
        &trade(YES, "BUY", "0.47", Some("1"), T0 + 25, "0xb"),
    );
    // No book of the NO token was heard: its trade has no market state.
    f.on_frame(
        0,
        5,
        T0 + 40,
        &trade(NO, "SELL", "0.53", Some("1"), T0 + 35, "0xc"),
    );
    let out = f.drain();
    let t = trades(&out);
    assert_eq!(
        (t[0].best_bid, t[0].best_ask, t[0].mid),
        (Some(d("0.44")), Some(d("0.46")), Some(d("0.45")))
    );
    assert_eq!(
        (t[1].best_bid, t[1].best_ask, t[1].mid),
        (Some(d("0.45")), Some(d("0.47")), Some(d("0.46")))
    );
    assert_eq!((t[2].best_bid, t[2].mid), (None, None));
}

#[test]
fn g1_a_trade_received_over_300_s_after_its_time_is_flagged_stale_and_counted() {
    let mut f = feed();
    f.on_frame(
        0,
        1,
        T0 + 300_000,
        &trade(YES, "BUY", "0.5", Some("1"), T0, "0xa"),
    );
    f.on_frame(
        0,
        2,
        T0 + 300_002,
        &trade(YES, "BUY", "0.5", Some("1"), T0 + 1, "0xb"),
    );
    let out = f.drain();
    let t = trades(&out);
    assert_eq!((t[0].stale, t[1].stale), (false, true));
    assert_eq!(f.counts().stale, 1);
}

#[test]
fn g3_a_trade_without_size_takes_it_from_the_data_api_or_is_stored_without_after_5_minutes() {
    let mut f = feed();
    f.on_frame(0, 1, T0, &trade(YES, "BUY", "0.5", None, T0, "0xfound"));
    f.on_frame(0, 2, T0, &trade(YES, "BUY", "0.5", None, T0, "0xfound")); // duplicate
    f.on_frame(0, 3, T0, &trade(YES, "SELL", "0.4", None, T0 + 1, "0xlost"));
    assert!(
        trades(&f.drain()).is_empty(),
        "held while the size is unknown"
    );
    backfill(
        &mut f,
        T0 + 30_000,
        &[row(YES, "BUY", "0.5", "12", T0, "0xfound")],
    );
    let out = f.drain();
    let t = trades(&out);
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].size, t[0].size_source, t[0].source),
        (Some(d("12")), SizeSource::DataApi, Source::Ws)
    );
    f.advance(T0 + 299_999);
    assert!(trades(&f.drain()).is_empty());
    f.advance(T0 + 300_000);
    let out = f.drain();
    let t = trades(&out);
    assert_eq!(t.len(), 1);
    assert_eq!((t[0].size, t[0].size_source), (None, SizeSource::Missing));
    assert_eq!(
        (f.counts().size_from_data_api, f.counts().size_missing),
        (1, 1)
    );
    // The row found for the first one is not stored a second time by a later backfill.
    backfill(
        &mut f,
        T0 + 400_000,
        &[row(YES, "BUY", "0.5", "12", T0, "0xfound")],
    );
    assert!(trades(&f.drain()).is_empty());
}

#[test]
fn g5_a_trade_more_than_0_10_from_the_mid_is_flagged_divergent_and_counted() {
    let mut f = feed();
    f.on_frame(0, 1, T0, &book(YES, "0.49", "0.51", T0));
    f.on_frame(0, 2, T0, &trade(YES, "BUY", "0.60", Some("1"), T0, "0xa"));
    f.on_frame(0, 3, T0, &trade(YES, "BUY", "0.61", Some("1"), T0, "0xb"));
    let out = f.drain();
    let t = trades(&out);
    assert_eq!((t[0].divergent, t[1].divergent), (false, true));
    assert_eq!(f.counts().divergent, 1);
}

#[test]
fn given_malformed_frames_and_unknown_events_then_they_are_counted_and_the_rest_is_kept() {
    let mut f = feed();
    f.on_frame(0, 1, T0, "[{\"event_type\":\"last_trade_pr");
    f.on_frame(0, 2, T0, "PONG");
    let a = trade(YES, "BUY", "0.5", Some("1"), T0, "0xa");
    f.on_frame(
        0,
        3,
        T0,
        &format!(
            "[{{\"event_type\":\"mystery\",\"x\":1}},{a},{{\"event_type\":\"last_trade_price\"}}]"
        ),
    );
    let c = f.counts().clone();
    assert_eq!(
        (c.malformed_frames, c.unknown_events, c.invalid_events),
        (1, 1, 1)
    );
    assert_eq!(trades(&f.drain()).len(), 1);
}

#[test]
fn flow_is_in_first_outcome_terms_and_published_only_for_a_market_covered_the_whole_hour() {
    let mut f = feed();
    f.covered_from(CID, T0);
    f.on_frame(
        0,
        1,
        T0 + 1000,
        &trade(YES, "BUY", "0.6", Some("100"), T0 + 1000, "0xa"),
    );
    // Buying NO at 0.4 is selling YES at 0.6.
    f.on_frame(
        0,
        2,
        T0 + 2000,
        &trade(NO, "BUY", "0.4", Some("50"), T0 + 2000, "0xb"),
    );
    assert!(f.flow(T0 + 1_800_000).is_empty(), "covered half an hour");
    let flow = f.flow(T0 + 3_600_000);
    let m = &flow[CID];
    assert_eq!((m.buy_count_1h, m.sell_count_1h), (1, 1));
    assert_eq!((m.buy_volume_1h, m.sell_volume_1h), (d("60"), d("20")));
    assert_eq!(m.vwap_1h, Some(d("0.6")));

    // A gap that could not be backfilled: NULL until a full hour is heard again.
    f.gap_opened(CID, T0 + 3_700_000);
    assert!(f.flow(T0 + 3_710_000).is_empty());
    f.gap_closed(CID, Some(T0 + 3_700_000), T0 + 3_720_000, false);
    assert!(f.flow(T0 + 3_720_000 + 3_599_999).is_empty());
    assert!(f.flow(T0 + 3_720_000 + 3_600_000).contains_key(CID));
    // Nothing traded that hour: zeros, not NULL.
    assert_eq!(f.flow(T0 + 3_720_000 + 3_600_000)[CID].trade_count_1h, 0);
}

#[test]
fn given_a_start_up_backfill_then_flow_is_published_from_the_start() {
    let mut f = feed();
    // Connected at T0; the warm-up of the hour before comes back later.
    f.covered_from(CID, T0);
    backfill(
        &mut f,
        T0 + 150_000,
        &[row(YES, "SELL", "0.3", "10", T0 - 1_000_000, "0xold")],
    );
    f.covered_back_to(CID, T0 - 3_600_000, Some(T0));
    let flow = f.flow(T0);
    assert_eq!(flow[CID].trade_count_1h, 1);
    assert_eq!(flow[CID].sell_volume_1h, d("3"));
}

#[test]
fn a_whale_event_carries_the_mid_before_and_1_and_5_minutes_after() {
    let mut f = feed();
    f.on_frame(0, 1, T0, &book(YES, "0.49", "0.51", T0));
    // $2,500 notional: whale tier 2.
    f.on_frame(
        0,
        2,
        T0 + 10,
        &trade(YES, "BUY", "0.5", Some("5000"), T0 + 5, "0xw"),
    );
    f.on_frame(0, 3, T0 + 30_000, &book(YES, "0.53", "0.55", T0 + 30_000));
    f.advance(T0 + 65_000);
    f.on_frame(0, 4, T0 + 120_000, &book(YES, "0.55", "0.57", T0 + 120_000));
    f.advance(T0 + 299_000);
    assert!(
        whales(&f.drain()).is_empty(),
        "waits for its 5-minute price"
    );
    f.advance(T0 + 305_010);
    let out = f.drain();
    let w = whales(&out);
    assert_eq!(w.len(), 1);
    assert_eq!(
        (w[0].price_before, w[0].price_after_1m, w[0].price_after_5m),
        (Some(d("0.50")), Some(d("0.54")), Some(d("0.56")))
    );
    assert_eq!(
        (w[0].impact_1m, w[0].impact_5m),
        (Some(d("0.04")), Some(d("0.06")))
    );
    assert_eq!(w[0].whale_tier, 2);
}

/// The one-pass decoder and the tolerant one give the same trades, tops and counts, frame by
/// frame, over clean frames and every kind of odd one (which the fast path hands over).
#[test]
fn the_fast_path_and_the_tolerant_decoder_give_the_same_results() {
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../polymarket/tests/fixtures");
    let mut frames: Vec<String> = std::fs::read_dir(fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ws_"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    frames.sort();
    let pc = |asset: &str, bid: &str, ask: &str| {
        format!(
            "{{\"event_type\":\"price_change\",\"market\":\"{CID}\",\"timestamp\":\"{T0}\",\"price_changes\":[\
             {{\"asset_id\":\"{asset}\",\"price\":\"0.5\",\"size\":\"10\",\"side\":\"BUY\",\"hash\":\"h\",\"best_bid\":{bid},\"best_ask\":{ask}}}]}}"
        )
    };
    frames.extend([
        format!("[{},{}]", book(YES, "0.44", "0.46", T0), book(NO, "0.54", "0.56", T0)),
        trade(YES, "BUY", "0.46", Some("10"), T0 + 1, "0xa"),
        trade(YES, "BUY", "0.46", Some("10"), T0 + 1, "0xa"), // duplicate
        trade(NO, "sell", "0.55", None, T0 + 2, "0xb"),       // lower-case side, no size
        trade(YES, "BUY", "1.5", Some("1"), T0 + 3, "0xc"),   // price outside [0, 1]
        trade(YES, "HOLD", "0.5", Some("1"), T0 + 4, "0xd"),  // unknown side
        trade(YES, "BUY", "0.5", Some("-1"), T0 + 5, "0xe"),  // negative size
        trade(YES, "BUY", "0.5", Some("1"), T0 + 6, ""),      // empty transaction hash
        pc(YES, "\"0.45\"", "\"0.47\""),
        pc(YES, "0.45", "0.48"),     // numbers, not strings
        pc(YES, "\"\"", "\"0.49\""), // empty best bid
        pc(NO, "null", "\"0.57\""),
        format!("{{\"event_type\":\"best_bid_ask\",\"asset_id\":\"{YES}\",\"market\":\"{CID}\",\"best_bid\":\"0.4\",\"best_ask\":\"0.6\",\"spread\":\"0.2\",\"timestamp\":\"{T0}\"}}"),
        format!("{{\"event_type\":\"best_bid_ask\",\"asset_id\":\"{YES}\",\"best_bid\":\"1.4\",\"best_ask\":\"0.6\"}}"),
        "[{\"event_type\":\"mystery\"},{\"no_type\":1},7,\"x\"]".to_string(),
        "PONG".to_string(),
        "[]".to_string(),
        "{\"event_type\":\"last_trade_price\",\"asset_id\":\"a\\u0062c\",\"price\":\"0.5\"}".to_string(),
        format!("{{\"event_type\":\"book\",\"asset_id\":\"{YES}\",\"bids\":[{{\"price\":\"0.3\",\"size\":\"0\"}},{{\"price\":\"0.2\",\"size\":\"5\"}}],\"asks\":[]}}"),
        format!("{{\"event_type\":\"book\",\"asset_id\":\"{YES}\",\"bids\":\"none\",\"asks\":[]}}"),
        trade(YES, "BUY", "0.61", Some("4000"), T0 + 7, "0xw"), // a whale, divergent
        // Whitespace between tokens (JSON), and inside a string (not JSON).
        format!("[ {} ,\n\t{} ]\r\n", book(YES, "0.41", "0.43", T0), book(NO, "0.57", "0.59", T0)),
        format!("{{\"event_type\":\"best_bid_ask\",\"asset_id\":\"{YES}\nx\",\"best_bid\":\"0.3\",\"best_ask\":\"0.7\"}}"),
        // One token's run of changes giving a bid, an ask, another bid, then the other token.
        format!(
            "{{\"event_type\":\"price_change\",\"market\":\"{CID}\",\"price_changes\":[\
             {{\"asset_id\":\"{YES}\",\"price\":\"0.5\",\"size\":\"10\",\"side\":\"BUY\",\"best_bid\":\"0.42\"}},\
             {{\"asset_id\":\"{YES}\",\"price\":\"0.5\",\"size\":\"0\",\"side\":\"SELL\",\"best_ask\":\"0.44\"}},\
             {{\"asset_id\":\"{YES}\",\"price\":\"0.5\",\"size\":\"0\",\"side\":\"SELL\",\"best_bid\":\"0.425\"}},\
             {{\"asset_id\":\"{NO}\",\"price\":\"0.5\",\"size\":\"1\",\"side\":\"BUY\",\"best_bid\":\"0.56\",\"best_ask\":\"0.58\"}},\
             {{\"asset_id\":\"{YES}\",\"price\":\"0.5\",\"size\":\"2\",\"side\":\"BUY\",\"extra\":{{\"a\":[1,-2.5e3,true,null,\"s\"]}}}}]}}"
        ),
        // A repeated field; a bad number and a good one in fields not used; trailing text.
        format!("{{\"event_type\":\"best_bid_ask\",\"asset_id\":\"{YES}\",\"best_bid\":\"0.2\",\"best_bid\":\"0.3\",\"best_ask\":\"0.7\"}}"),
        format!("{{\"event_type\":\"best_bid_ask\",\"asset_id\":\"{YES}\",\"best_bid\":\"0.35\",\"best_ask\":\"0.65\",\"spread\":01}}"),
        format!("{{\"event_type\":\"best_bid_ask\",\"asset_id\":\"{YES}\",\"best_bid\":\"0.36\",\"best_ask\":\"0.64\",\"spread\":0.28}}"),
        format!("{{\"event_type\":\"best_bid_ask\",\"asset_id\":\"{YES}\",\"best_bid\":\"0.37\",\"best_ask\":\"0.63\"}} x"),
        // Prices written unusually ("0.40" with a trailing zero, "1." and ".5"), a zero-size best level.
        format!("{{\"event_type\":\"book\",\"asset_id\":\"{YES}\",\"bids\":[{{\"price\":\"0.40\",\"size\":\"3\"}},{{\"price\":\"0.45\",\"size\":\"0.000\"}}],\"asks\":[{{\"price\":\".5\",\"size\":\"1\"}}]}}"),
        format!("{{\"event_type\":\"book\",\"asset_id\":\"{NO}\",\"bids\":[{{\"price\":\"0.5\",\"size\":\"3\"}}],\"asks\":[{{\"price\":\"1.\",\"size\":\"1\"}}]}}"),
        // A trade's size and price written unusually, a huge size.
        trade(NO, "SELL", "0.550", Some("12.50"), T0 + 8, "0xf"),
        trade(NO, "SELL", "0.55", Some("1000000000000"), T0 + 9, "0xg"),
    ]);
    // After every frame a trade of each token shows the top of book the frame left.
    let frames: Vec<String> = frames
        .into_iter()
        .enumerate()
        .flat_map(|(i, f)| {
            let at = T0 + 20 + i as i64;
            [
                f,
                trade(YES, "BUY", "0.5", Some("1"), at, &format!("0xprobe{i}y")),
                trade(NO, "BUY", "0.5", Some("1"), at, &format!("0xprobe{i}n")),
            ]
        })
        .collect();
    let run = |fast_path: bool| {
        let mut f = feed();
        let mut g = Feed::new(FeedConfig {
            fast_path,
            ..FeedConfig::default()
        });
        std::mem::swap(&mut f, &mut g);
        // `f` has the config, `g` the registry: move the registry over.
        let assets: Vec<(String, Asset)> = [YES, NO]
            .iter()
            .map(|t| (t.to_string(), g.asset(t).unwrap().clone()))
            .collect();
        f.set_assets(assets);
        f.covered_from(CID, T0 - 3_600_000);
        let mut out = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            f.on_frame(1, i as u64, T0 + 100 + i as i64, frame);
            out.push(f.drain());
        }
        f.advance(T0 + 400_000);
        out.push(f.drain());
        (out, f.counts().clone(), f.flow(T0 + 400_000))
    };
    let (mut fast, slow) = (run(true), run(false));
    assert!(fast.1.fast_frames >= 100, "{:?}", fast.1);
    assert_eq!(slow.1.fast_frames, 0);
    fast.1.fast_frames = 0;
    assert_eq!(fast.0, slow.0);
    assert_eq!(fast.1, slow.1);
    assert_eq!(fast.2, slow.2);
    let c = &fast.1;
    assert!(
        c.trades_ws >= 4 && c.unknown_events >= 2 && c.invalid_events >= 3,
        "{c:?}"
    );
}

#[test]
fn a_live_trade_without_a_hash_matched_by_a_backfill_row_stays_matched_in_later_backfills() {
    let mut f = feed();
    f.on_frame(0, 1, T0, &trade(YES, "BUY", "0.5", Some("3"), T0, ""));
    assert_eq!(trades(&f.drain()).len(), 1);
    let r = row(YES, "BUY", "0.5", "3", T0 + 1_500, "0xmined");
    backfill(&mut f, T0 + 60_000, std::slice::from_ref(&r));
    // The next page asks that second again, and a later gap's backfill overlaps it too.
    backfill(&mut f, T0 + 61_000, std::slice::from_ref(&r));
    backfill(&mut f, T0 + 900_000, &[r]);
    assert!(trades(&f.drain()).is_empty());
    assert_eq!(f.counts().trades_backfill, 0);
}

#[test]
fn a_size_lookup_gives_sizes_and_stores_no_other_row() {
    let mut f = feed();
    f.on_frame(0, 1, T0, &trade(YES, "SELL", "0.4", None, T0, "0xsz"));
    let body = format!(
        "[{},{}]",
        row(YES, "SELL", "0.4", "9", T0, "0xsz"),
        row(NO, "BUY", "0.6", "2", T0 + 1_000, "0xnot-heard")
    );
    let decoded = decode_trades(body.as_bytes()).unwrap();
    f.on_sizes(T0 + 30_000, &decoded.trades, false);
    let out = f.drain();
    let t = trades(&out);
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(
        (t[0].size, t[0].size_source),
        (Some(d("9")), SizeSource::DataApi)
    );
    assert_eq!(f.counts().trades_backfill, 0);
}

#[test]
fn coverage_of_a_market_not_followed_is_ignored() {
    let mut f = feed();
    f.covered_from("0xother", T0 - 7_200_000);
    f.covered_back_to("0xother", T0 - 7_200_000, Some(T0));
    f.covered_from(CID, T0 - 7_200_000);
    let flow = f.flow(T0);
    assert!(flow.contains_key(CID) && !flow.contains_key("0xother"));
}

/// A control record as the supervisor puts it on the tape (JSON, `kind = control`), applied the
/// way a live run and a replay apply it.
fn control(f: &mut Feed, at_ms: i64, json: serde_json::Value) {
    f.apply(&TapeRecord {
        run: 1,
        shard: 0,
        seq: 0,
        received_at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
        kind: TapeKind::Control,
        part: 0,
        parts: 1,
        text: json.to_string(),
    });
    assert_eq!(f.counts().malformed_control, 0, "{json}");
}

/// Covered for the two hours before T0 (heard since then).
fn covered_feed() -> Feed {
    let mut f = feed();
    let at_ms = T0 - 7_200_000;
    control(
        &mut f,
        at_ms,
        serde_json::json!({"op": "covered_from", "condition_id": CID, "at_ms": at_ms}),
    );
    assert!(f.flow(T0).contains_key(CID));
    f
}

#[test]
fn given_a_second_gap_before_the_first_is_backfilled_then_the_market_is_uncovered_until_both_are() {
    let mut f = covered_feed();
    // The shard drops at T0 and again at T0 + 20 s, before the first gap's backfill is back.
    for (at, from) in [(T0 + 1_000, T0), (T0 + 21_000, T0 + 20_000)] {
        control(
            &mut f,
            at,
            serde_json::json!({"op": "gap_opened", "condition_id": CID, "from_ms": from}),
        );
    }
    assert!(f.flow(T0 + 30_000).is_empty());
    // The first gap's backfill: [T0, first reconnect at T0 + 2 s].
    control(
        &mut f,
        T0 + 150_000,
        serde_json::json!({"op": "gap_closed", "condition_id": CID, "from_ms": T0,
            "to_ms": T0 + 2_000, "backfilled": true}),
    );
    assert!(
        f.flow(T0 + 150_000).is_empty(),
        "the second stretch is not backfilled yet"
    );
    control(
        &mut f,
        T0 + 170_000,
        serde_json::json!({"op": "gap_closed", "condition_id": CID, "from_ms": T0 + 20_000,
            "to_ms": T0 + 22_000, "backfilled": true}),
    );
    assert!(f.flow(T0 + 170_000).contains_key(CID));
}

#[test]
fn a_gap_closed_record_of_an_old_tape_without_its_start_closes_the_markets_gaps() {
    let mut f = covered_feed();
    control(
        &mut f,
        T0,
        serde_json::json!({"op": "gap_opened", "condition_id": CID, "from_ms": T0}),
    );
    control(
        &mut f,
        T0 + 150_000,
        serde_json::json!({"op": "gap_closed", "condition_id": CID, "to_ms": T0 + 2_000,
            "backfilled": true}),
    );
    assert!(f.flow(T0 + 150_000).contains_key(CID));
    let c = f.coverage(CID).unwrap();
    assert_eq!((c.since_ms, c.gaps.len()), (Some(T0 - 7_200_000), 0));
}

#[test]
fn given_a_gap_not_backfilled_after_the_connection_then_the_warm_up_does_not_reach_back_over_it() {
    // Connected at T0; a gap from T0 + 10 s to T0 + 20 s comes back without its trades, so
    // coverage restarts at T0 + 20 s; then the warm-up of [T0 − 1 h, T0] comes back.
    let run = |gap_backfilled: bool| {
        let mut f = feed();
        control(
            &mut f,
            T0,
            serde_json::json!({"op": "covered_from", "condition_id": CID, "at_ms": T0}),
        );
        control(
            &mut f,
            T0 + 11_000,
            serde_json::json!({"op": "gap_opened", "condition_id": CID, "from_ms": T0 + 10_000}),
        );
        control(
            &mut f,
            T0 + 140_000,
            serde_json::json!({"op": "gap_closed", "condition_id": CID, "from_ms": T0 + 10_000,
                "to_ms": T0 + 20_000, "backfilled": gap_backfilled}),
        );
        control(
            &mut f,
            T0 + 150_000,
            serde_json::json!({"op": "covered_back_to", "condition_id": CID,
                "from_ms": T0 - 3_600_000, "to_ms": T0}),
        );
        f
    };
    let f = run(false);
    assert!(
        f.flow(T0 + 150_000).is_empty(),
        "[T0 + 10 s, T0 + 20 s] was neither heard nor backfilled"
    );
    assert_eq!(f.coverage(CID).unwrap().since_ms, Some(T0 + 20_000));
    // The same with the gap backfilled: the hour before T0 + 150 s is whole.
    assert!(run(true).flow(T0 + 150_000).contains_key(CID));
}

#[test]
fn a_warm_up_record_of_an_old_tape_without_its_end_reaches_back_as_before() {
    let mut f = feed();
    control(
        &mut f,
        T0,
        serde_json::json!({"op": "covered_from", "condition_id": CID, "at_ms": T0}),
    );
    control(
        &mut f,
        T0 + 150_000,
        serde_json::json!({"op": "covered_back_to", "condition_id": CID,
            "from_ms": T0 - 3_600_000}),
    );
    assert!(f.flow(T0 + 150_000).contains_key(CID));
}

#[test]
fn gap_and_warm_up_records_keep_their_start_and_end_on_the_tape() {
    use polytape_feed::Control;
    let closed = Control::GapClosed {
        condition_id: CID.into(),
        from_ms: Some(T0),
        to_ms: T0 + 2_000,
        backfilled: true,
    };
    let text = serde_json::to_string(&closed).unwrap();
    assert_eq!(serde_json::from_str::<Control>(&text).unwrap(), closed);
    let warm = Control::CoveredBackTo {
        condition_id: CID.into(),
        from_ms: T0 - 3_600_000,
        to_ms: Some(T0),
    };
    let text = serde_json::to_string(&warm).unwrap();
    assert_eq!(serde_json::from_str::<Control>(&text).unwrap(), warm);
}

#[test]
fn a_key_is_known_for_the_retention_and_longer_while_a_gap_may_bring_its_trade_back() {
    let retention = FeedConfig::default().key_retention_ms;
    // Things are kept in generations a quarter of the retention long.
    let late = retention + retention / 4 + 2_000;
    let heard = |f: &mut Feed| {
        f.on_frame(
            0,
            1,
            T0 + 50,
            &trade(YES, "BUY", "0.45", Some("10"), T0, "0xt1"),
        );
        assert_eq!(trades(&f.drain()).len(), 1);
        assert_eq!(f.remembered().keys, 1);
    };
    // The Data API's row of that trade, mined a minute after its match.
    let again = |f: &mut Feed, at: i64| {
        backfill(f, at, &[row(YES, "BUY", "0.45", "10", T0 + 60_000, "0xt1")]);
        trades(&f.drain()).len()
    };

    // No gap: known for the retention, then forgotten within a generation more.
    let mut f = feed();
    heard(&mut f);
    assert_eq!(again(&mut f, T0 + retention), 0, "known for the retention");
    f.advance(T0 + late);
    assert_eq!(f.remembered(), polytape_feed::Remembered::default());

    // A gap opened after the trade holds it while open and for the retention after it closed,
    // so a long gap's backfill (reaching back past its start) does not store it twice.
    let mut f = feed();
    heard(&mut f);
    f.gap_opened(CID, T0 + 30_000);
    // Past the retention and its generation (so it would be forgotten without the gap).
    let closed = T0 + late + 60_000;
    assert_eq!(again(&mut f, closed), 0, "held by the open gap");
    f.gap_closed(CID, Some(T0 + 30_000), closed, true);
    let most = FeedConfig::default().key_retention_max_ms;
    assert!(closed + retention > most);
    f.advance(T0 + most - 1_000);
    assert_eq!(f.remembered().keys, 1, "held after the gap closed");
    // The hold ends the retention after the close, or at the most (3 h), which comes first.
    f.advance(T0 + most + retention / 4 + 2_000);
    assert_eq!(f.remembered().keys, 0);

    // But never past the most (3 h), even with the gap still open.
    let mut f = feed();
    heard(&mut f);
    f.gap_opened(CID, T0 + 30_000);
    f.advance(T0 + most - 1_000);
    assert_eq!(f.remembered().keys, 1);
    f.advance(T0 + most + retention / 4 + 2_000);
    assert_eq!(f.remembered().keys, 0);
}

#[test]
fn two_fills_of_one_transaction_both_heard_without_a_size_are_both_stored_with_their_sizes() {
    // One taker order filled twice at one price in one millisecond, both events without a
    // size: the second looks like a repeat of the first, so one wait stands for both.
    let mut f = feed();
    let a = trade(YES, "SELL", "0.78", None, T0, "0xtwo");
    f.on_frame(0, 1, T0 + 20, &format!("[{a},{a}]"));
    f.on_frame(1, 1, T0 + 30, &a); // and another shard
    assert!(trades(&f.drain()).is_empty());
    let body = format!(
        "[{},{}]",
        row(YES, "SELL", "0.78", "13.89", T0, "0xtwo"),
        row(YES, "SELL", "0.78", "21.78", T0, "0xtwo")
    );
    let decoded = decode_trades(body.as_bytes()).unwrap();
    f.on_sizes(T0 + 30_000, &decoded.trades, false);
    let out = f.drain();
    let mut sizes: Vec<_> = trades(&out)
        .iter()
        .map(|t| (t.size, t.size_source, t.source))
        .collect();
    sizes.sort_by_key(|s| s.0);
    assert_eq!(
        sizes,
        [
            (Some(d("13.89")), SizeSource::DataApi, Source::Ws),
            (Some(d("21.78")), SizeSource::DataApi, Source::Ws)
        ]
    );
    assert!(f.sizeless_markets().is_empty(), "the wait ended");
    // The same rows again (a gap's backfill), and the wait's end: nothing more.
    backfill(
        &mut f,
        T0 + 40_000,
        &[
            row(YES, "SELL", "0.78", "21.78", T0, "0xtwo"),
            row(YES, "SELL", "0.78", "13.89", T0, "0xtwo"),
        ],
    );
    f.advance(T0 + 600_000);
    assert!(trades(&f.drain()).is_empty());
    assert_eq!(f.counts().size_missing, 0);
}
