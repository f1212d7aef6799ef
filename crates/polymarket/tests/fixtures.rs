//! Every recorded payload in `tests/fixtures/` (provenance: `tests/fixtures/SOURCES.md`) decodes
//! with its decoder, and the values a user cares about come out right.

// Test helpers unwrap too: a panic with the value is the failure report.
#![allow(clippy::unwrap_used)]

use polytape_core::{BookFeatures, FeeSchedule, Side};
use polytape_polymarket::clob::{
    decode_book, decode_books, decode_clob_market, decode_clob_markets_page, DecodedBook,
};
use polytape_polymarket::data::decode_trades;
use polytape_polymarket::gamma::{
    decode_events, decode_keyset_page, decode_market, decode_public_search, decode_tags,
};
use polytape_polymarket::ws::{parse_frame, split_frame, EventKind, WsEvent};
use polytape_polymarket::{GammaMarket, Ts, Verdict};
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn text(name: &str) -> String {
    String::from_utf8(read(name)).unwrap()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn at(s: &str) -> Ts {
    s.parse().unwrap()
}

/// A recorded Gamma market, which must decode without a drifted field.
fn gamma(name: &str) -> GammaMarket {
    let (m, drifts) = decode_market(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert!(drifts.is_empty(), "{name}: {drifts:?}");
    m
}

/// The one event of a recorded frame, which must decode without a drifted field.
fn ws_one(name: &str) -> WsEvent {
    let mut frame = parse_frame(&text(name)).unwrap();
    assert_eq!(frame.events.len(), 1, "{name}");
    assert!(frame.drifts.is_empty(), "{name}: {:?}", frame.drifts);
    frame.events.remove(0)
}

/// Decodes one fixture with the decoder its name calls for; panics on failure or on a file
/// nobody knows how to decode (so a new fixture cannot be silently skipped).
fn decode_any(name: &str) {
    let body = read(name);
    let ok = match name {
        // Real recorded payloads are clean: nothing of theirs may be dropped or drift, and
        // recorded books are sound.
        n if n.starts_with("clob_book_") => decode_book(&serde_json::from_slice(&body).unwrap())
            .is_ok_and(|d| d.rejected.is_empty() && d.drifts.is_empty() && d.book.is_sound()),
        n if n.starts_with("clob_markets_page") => decode_clob_markets_page(&body)
            .is_ok_and(|p| p.rejected.is_empty() && p.drifts.is_empty()),
        n if n.starts_with("clob_market_") => {
            decode_clob_market(&body).is_ok_and(|(_, drifts)| drifts.is_empty())
        }
        n if n.starts_with("data_api_trades") => decode_trades(&body).is_ok_and(|t| {
            t.rejected.is_empty()
                && t.drifts.is_empty()
                && t.trades.iter().all(|r| r.to_trade().is_ok())
        }),
        n if n.starts_with("gamma_market_") => {
            decode_market(&body).is_ok_and(|(_, drifts)| drifts.is_empty())
        }
        n if n.starts_with("gamma_events") => {
            decode_events(&body).is_ok_and(|e| e.rejected.is_empty() && e.drifts.is_empty())
        }
        n if n.starts_with("gamma_public_search") => {
            decode_public_search(&body).is_ok_and(|s| s.rejected.is_empty() && s.drifts.is_empty())
        }
        n if n.starts_with("gamma_tags") => {
            decode_tags(&body).is_ok_and(|t| t.rejected.is_empty() && t.drifts.is_empty())
        }
        n if n.starts_with("ws_") => parse_frame(&text(name)).is_ok_and(|f| {
            !f.events.is_empty()
                && f.drifts.is_empty()
                && f.events.iter().all(|e| match e {
                    WsEvent::Invalid { .. } | WsEvent::Unknown { .. } => false,
                    WsEvent::Book(b) => b.rejected.is_empty() && b.book.is_sound(),
                    WsEvent::PriceChange(p) => p.rejected.is_empty(),
                    _ => true,
                })
        }),
        other => panic!("no decoder for fixture {other}"),
    };
    assert!(ok, "{name} did not decode cleanly");
}

#[test]
fn given_every_fixture_file_when_decoded_with_its_decoder_then_each_decodes_cleanly() {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 29, "{names:?}");
    assert!(
        dir().join("SOURCES.md").exists(),
        "provenance travels with the fixtures"
    );
    for n in &names {
        decode_any(n);
    }
}

// ---- CLOB books -------------------------------------------------------------------------------

#[test]
fn given_the_recorded_clob_book_when_decoded_then_best_bid_is_0_1_and_best_ask_0_14() {
    let DecodedBook { book, rejected, .. } =
        decode_book(&serde_json::from_slice(&read("clob_book_recorded_nautilus.json")).unwrap())
            .unwrap();
    assert!(rejected.is_empty());
    // Served order kept: worst first, best LAST.
    assert_eq!(book.bids.first().unwrap().price, dec("0.01"));
    assert_eq!(book.asks.first().unwrap().price, dec("0.98"));
    let f = BookFeatures::of(&book);
    assert_eq!(f.best_bid, Some(dec("0.1")));
    assert_eq!(f.best_ask, Some(dec("0.14")));
    assert_eq!((f.bid_levels, f.ask_levels), (5, 7));
    assert_eq!(book.timestamp, Some(at("2024-10-13T06:03:38.260Z")));
    assert_eq!(
        book.hash.as_deref(),
        Some("2fc4a3d6a98bc164e057589bcb74981852b87412")
    );
    assert_eq!(
        book.token_id,
        "23360939988679364027624185518382759743328544433592111535569478055890815567848"
    );
    // This old capture predates these fields: absent, not defaulted.
    assert_eq!(
        (book.tick_size, book.last_trade_price, book.neg_risk),
        (None, None, None)
    );
}

#[test]
fn given_the_books_endpoint_shape_when_decoded_then_each_book_is_kept() {
    let mut body = b"[".to_vec();
    body.extend(read("clob_book_recorded_nautilus.json"));
    body.push(b',');
    body.extend(read("clob_book_synthetic_nautilus.json"));
    body.push(b']');
    let out = decode_books(&body).unwrap();
    assert_eq!(out.books.len(), 2);
    let f = BookFeatures::of(&out.books[1]);
    assert_eq!(
        (f.best_bid, f.best_ask),
        (Some(dec("0.50")), Some(dec("0.51")))
    );
}

// ---- CLOB markets -----------------------------------------------------------------------------

#[test]
fn given_the_clob_markets_page_when_decoded_then_100_markets_and_the_next_cursor() {
    let page = decode_clob_markets_page(&read("clob_markets_page_nautilus.json")).unwrap();
    assert_eq!(page.markets.len(), 100);
    assert_eq!(page.next_cursor.as_deref(), Some("MTAw"));
    assert_eq!((page.limit, page.count), (Some(100), Some(100)));
    assert_eq!(
        page.markets
            .iter()
            .filter(|m| m.enable_order_book == Some(true))
            .count(),
        1
    );
    assert!(page
        .markets
        .iter()
        .all(|m| m.tokens.as_ref().is_some_and(|t| t.len() == 2)));
    let first = &page.markets[0];
    assert_eq!(first.minimum_tick_size, Some(dec("0.001")));
    assert_eq!(first.end_date_iso, Some(at("2024-09-10T00:00:00Z")));
    assert_eq!(
        first.winner().and_then(|t| t.outcome.as_deref()),
        Some("No")
    );
    // Game start times with millisecond fractions parse too.
    assert!(page
        .markets
        .iter()
        .any(|m| m.game_start_time == Some(at("2022-08-15T22:40:00.782Z"))));
}

#[test]
fn given_single_clob_markets_when_decoded_then_flags_and_winner_are_right() {
    let (m, _) =
        decode_clob_market(&read("clob_market_closed_accepting_false_nautilus.json")).unwrap();
    assert_eq!(
        (m.closed, m.accepting_orders, m.enable_order_book),
        (Some(true), Some(false), Some(false))
    );
    let w = m.winner().unwrap();
    assert_eq!(w.outcome.as_deref(), Some("No"));
    assert_eq!(
        w.token_id.as_deref(),
        Some("89711174926330519158043401581181146613785179104141808554061413232025882707365")
    );
    assert_eq!(m.game_start_time, None);
    let (m, _) =
        decode_clob_market(&read("clob_market_closed_accepting_true_nautilus.json")).unwrap();
    assert_eq!((m.closed, m.accepting_orders), (Some(true), Some(true)));
    assert_eq!(m.winner().and_then(|t| t.outcome.as_deref()), Some("Yes"));
    assert_eq!(m.game_start_time, Some(at("2026-05-08T20:00:00Z")));
    assert_eq!(m.tags.as_ref().map(Vec::len), Some(8));
}

// ---- Data API ---------------------------------------------------------------------------------

#[test]
fn given_data_api_trades_when_decoded_then_timestamps_are_epoch_seconds() {
    let rows = decode_trades(&read("data_api_trades_nautilus.json")).unwrap();
    assert_eq!(rows.trades.len(), 4);
    let t = rows.trades[0].to_trade().unwrap();
    assert_eq!(
        t.ts,
        at("2024-10-15T13:49:40Z"),
        "1729000180 is seconds, not ms"
    );
    assert_eq!(
        (t.side, t.price, t.size),
        (Side::Sell, dec("0.998"), dec("5.4"))
    );
    assert_eq!(
        rows.trades[0].transaction_hash.as_deref(),
        Some("0xabc123def456789012345678901234567890123456789012345678901234abcd")
    );
    assert_eq!(rows.trades[3].outcome_index, Some(1));
    let synthetic = decode_trades(&read("data_api_trades_synthetic_nautilus.json")).unwrap();
    assert_eq!(synthetic.trades.len(), 3);
    assert_eq!(
        synthetic.trades[2].title, None,
        "missing fields stay missing"
    );
    assert_eq!(
        synthetic.trades[0].to_trade().unwrap().ts,
        at("2024-03-09T16:00:00Z")
    );
}

// ---- Gamma markets ----------------------------------------------------------------------------

#[test]
fn given_the_btc_updown_market_when_decoded_then_tokens_prices_and_quote_are_right() {
    let m = gamma("gamma_market_btc_updown_5m_nautilus.json");
    assert_eq!(
        m.token_ids(),
        Some([
            "104239898038807136052399800151408521467737075933964991162589336683346093173875"
                .to_string(),
            "71183960810705820955071415844881728181970340514894896943812046065452395013351"
                .to_string(),
        ])
    );
    assert!(m.is_binary() && m.enable_order_book());
    assert_eq!(
        m.outcomes(),
        Some(&["Up".to_string(), "Down".to_string()][..])
    );
    assert_eq!(m.end_date(), Some(at("2026-03-12T09:25:00Z")));
    assert_eq!(m.start_date, Some(at("2026-03-11T09:29:01.328428Z")));
    assert_eq!(m.end_date_iso, Some(at("2026-03-12T00:00:00Z")));
    assert_eq!(m.volume_24h(), Some(dec("9.999997")));
    let (q, rejected) = m.quote();
    assert!(rejected.is_empty());
    assert_eq!(q.price, Some(dec("0.505")));
    assert_eq!(
        (q.best_bid, q.best_ask, q.spread),
        (Some(dec("0.5")), Some(dec("0.51")), Some(dec("0.009")))
    );
    assert_eq!(q.last_trade_price, Some(dec("0.51")));
    assert_eq!(q.volume_total, Some(dec("9.999997")));
    assert_eq!(q.liquidity, Some(dec("20328.3747")));
    assert_eq!(q.tick_size, Some(dec("0.01")));
    assert_eq!(q.competitive, Some(0.9999750006249843));
    assert_eq!(q.price_change_1h, None, "absent stays absent, never 0");
    let first_seen = at("2026-03-11T10:00:00Z");
    let market = m.to_market(first_seen).unwrap();
    assert_eq!(
        market.condition_id,
        "0x78443f961b9a65869dcb39359de9960165c7e5cbad0904eac7f29cd77872a63b"
    );
    assert_eq!(market.outcomes, ["Up".to_string(), "Down".to_string()]);
    assert!(market.active && !market.is_resolved() && market.tier.is_none());
}

#[test]
fn given_a_closed_resolved_market_when_decoded_then_closed_time_parses_and_no_is_the_winner() {
    let m = gamma("gamma_market_closed_accepting_false_nautilus.json");
    assert_eq!(m.closed_time, Some(at("2026-03-19T23:20:15Z")));
    assert_eq!(
        (m.closed(), m.accepting_orders()),
        (Some(true), Some(false))
    );
    assert_eq!(
        m.uma_resolution_statuses.as_deref(),
        Some(&["proposed".to_string()][..])
    );
    let (q, _) = m.quote();
    assert_eq!(q.volume_total, None, "no volume key: None, not 0");
    assert_eq!(q.best_bid, None);
    assert_eq!(q.best_ask, Some(dec("0.001")));
    let mk = m.to_market(at("2026-03-01T00:00:00Z")).unwrap();
    assert!(
        !mk.active && !mk.is_resolved(),
        "a result is the resolutions duty's to record"
    );
    let learnt = at("2026-03-20T00:00:00Z");
    let Verdict::Final(o) = m.verdict(None, learnt) else {
        panic!("status resolved with 0/1 prices is final without the CLOB");
    };
    assert_eq!((o.winner, o.invalid), (Some(1), false), "No won");
    assert_eq!(o.payouts, vec![Decimal::ZERO, Decimal::ONE]);
    assert_eq!(
        o.resolved_at,
        Some(at("2026-03-19T23:20:15Z")),
        "closedTime, not endDate (2028)"
    );
    assert_eq!(
        (o.uma_status.as_deref(), o.source.as_str()),
        (Some("resolved"), "gamma")
    );
}

#[test]
fn given_a_closed_market_without_a_uma_status_when_judged_then_only_the_clob_winner_makes_it_final()
{
    let m = gamma("gamma_market_closed_accepting_true_nautilus.json");
    let learnt = at("2026-05-10T00:00:00Z");
    assert_eq!(
        m.verdict(None, learnt),
        Verdict::Pending {
            uma_status: None,
            needs_clob: true
        },
        "status absent: 1/0 prices alone are not final"
    );
    let (clob, _) =
        decode_clob_market(&read("clob_market_closed_accepting_true_nautilus.json")).unwrap();
    let Verdict::Final(o) = m.verdict(Some(&clob), learnt) else {
        panic!("the CLOB marks the token priced 1 the winner");
    };
    assert_eq!(
        (o.winner, o.source.as_str(), o.uma_status),
        (Some(0), "gamma+clob", None)
    );
    // The other fixture's CLOB market names another token the winner: no agreement.
    let (other, _) =
        decode_clob_market(&read("clob_market_closed_accepting_false_nautilus.json")).unwrap();
    assert_eq!(
        m.verdict(Some(&other), learnt),
        Verdict::Pending {
            uma_status: None,
            needs_clob: false
        }
    );
}

#[test]
fn given_a_closed_market_still_accepting_orders_when_decoded_then_both_flags_are_as_sent() {
    let m = gamma("gamma_market_closed_accepting_true_nautilus.json");
    assert_eq!(
        (m.closed(), m.accepting_orders(), m.active),
        (Some(true), Some(true), Some(true))
    );
    assert_eq!(m.game_start_time, Some(at("2026-05-08T20:00:00Z")));
    assert_eq!(m.start_date, Some(at("2026-04-01T18:24:05.410Z")));
    let (q, _) = m.quote();
    assert_eq!(q.price_change_1d, Some(dec("0.135")));
    assert_eq!(q.volume_total, Some(dec("192817.4904490008")));
    assert!(!m.to_market(at("2026-04-02T00:00:00Z")).unwrap().active);
}

#[test]
fn given_the_legacy_scalar_market_when_decoded_then_34_digit_prices_round_and_it_is_not_binary() {
    let m = gamma("gamma_market_closed_nonbinary_legacy_nautilus.json");
    assert_eq!(
        m.outcome_prices,
        Some(vec![
            dec("0.584331166907769315"),
            dec("0.415668833092230685")
        ])
    );
    assert_eq!(
        m.outcomes(),
        Some(&["Long".to_string(), "Short".to_string()][..])
    );
    assert!(!m.is_binary());
    assert!(m.to_market(at("2021-01-01T00:00:00Z")).is_err());
    assert_eq!(m.category.as_deref(), Some("Crypto"));
    assert_eq!(m.closed_time, Some(at("2021-01-02T21:45:52Z")));
    let (q, _) = m.quote();
    assert_eq!(
        (q.best_bid, q.best_ask, q.spread),
        (Some(Decimal::ZERO), Some(Decimal::ONE), Some(Decimal::ONE))
    );
    assert_eq!(q.volume_24h, Some(Decimal::ZERO), "an integer 0 is a value");
    assert!(
        !m.enable_order_book(),
        "absent enableOrderBook means no book"
    );
}

#[test]
fn given_the_zero_zero_legacy_market_when_decoded_then_prices_are_zero_and_no_winner() {
    let m = gamma("gamma_market_closed_zero_zero_legacy_nautilus.json");
    assert_eq!(m.outcome_prices, Some(vec![Decimal::ZERO, Decimal::ZERO]));
    assert!(m.is_binary());
    assert_eq!(
        m.verdict(None, at("2026-01-01T00:00:00Z")),
        Verdict::Pending {
            uma_status: None,
            needs_clob: false
        },
        "a 0/0 payout without status names no result, whatever the CLOB says"
    );
    assert_eq!(m.liquidity, Some(Decimal::ZERO));
}

#[test]
fn given_sports_markets_when_decoded_then_game_start_time_and_line_parse() {
    let ml = gamma("gamma_market_sports_moneyline_nautilus.json");
    assert_eq!(ml.game_start_time, Some(at("2026-04-05T15:10:00Z")));
    assert_eq!(ml.game_id.as_deref(), Some("1427074"));
    assert_eq!(ml.sports_market_type.as_deref(), Some("moneyline"));
    let Verdict::Final(o) = ml.verdict(None, at("2026-04-06T00:00:00Z")) else {
        panic!("a resolved moneyline market is final");
    };
    let won = o
        .winner
        .and_then(|i| ml.outcomes().map(|labels| labels[i].clone()));
    assert_eq!(
        won.as_deref(),
        Some("FaZe"),
        "the label is a team, not yes/no"
    );
    let h = gamma("gamma_market_sports_map_handicap_nautilus.json");
    assert_eq!(h.line, Some(dec("-1.5")));
    assert_eq!(h.closed_time, Some(at("2026-04-05T19:38:35Z")));
    assert!(h.is_binary());
}

#[test]
fn given_fixture_markets_in_a_keyset_page_when_fields_drift_or_the_key_is_bad_then_the_rest_are_kept(
) {
    let mut markets: Vec<serde_json::Value> = [
        "gamma_market_btc_updown_5m_nautilus.json",
        "gamma_market_closed_accepting_true_nautilus.json",
        "gamma_market_sports_moneyline_nautilus.json",
    ]
    .iter()
    .map(|n| serde_json::from_slice(&read(n)).unwrap())
    .collect();
    let drifted = "0xd57eed0d44f5b8ca54925d8d6ff440b146b3e6e071da18136ee3ee572d34479e";
    assert_eq!(markets[1]["conditionId"], drifted);
    markets[1]["endDate"] = serde_json::json!({"oops": 1});
    markets[1]["updatedAt"] = serde_json::json!("yesterday");
    markets[2]["conditionId"] = serde_json::json!(true);
    let body = serde_json::json!({"markets": markets}).to_string();
    let page = decode_keyset_page(body.as_bytes()).unwrap();
    assert_eq!(page.markets.len(), 2);
    let kept = &page.markets[1];
    assert_eq!(kept.condition_id(), Some(drifted));
    assert_eq!((kept.end_date, kept.updated_at), (None, None));
    assert!(kept.is_binary(), "its other fields are intact");
    let mut fields: Vec<&str> = page.drifts.iter().map(|d| d.field.as_str()).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["endDate", "updatedAt"]);
    assert!(page
        .drifts
        .iter()
        .all(|d| d.key.as_deref() == Some(drifted)));
    assert_eq!(page.rejected.len(), 1);
    assert!(
        page.rejected[0].reason.starts_with("field `conditionId`"),
        "{}",
        page.rejected[0].reason
    );
    assert_eq!(page.next_cursor, None);
}

// ---- Gamma events, search, tags ---------------------------------------------------------------

#[test]
fn given_the_neg_risk_event_when_decoded_then_each_outcome_is_its_own_binary_market() {
    let events = decode_events(&read("gamma_events_negrisk_nautilus.json"))
        .unwrap()
        .items;
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.neg_risk, Some(true));
    assert_eq!(
        e.volume,
        Some(dec("799823812.487094")),
        "event volume is a JSON number"
    );
    let markets = e.markets.as_ref().unwrap();
    assert_eq!(markets.len(), 2);
    assert!(markets
        .iter()
        .all(|m| m.is_binary() && m.neg_risk_market_id == e.neg_risk_market_id));
    assert_eq!(
        markets[0].group_item_title.as_deref(),
        Some("Stephen A. Smith")
    );
    let tags = e.tags.as_ref().unwrap();
    assert_eq!(tags[1].published_at, Some(at("2024-03-07T20:44:01.258Z")));
    // The nested markets list no events of their own: they belong to the one they came in.
    for m in markets {
        let market = m.to_market(at("2026-03-11T10:00:00Z")).unwrap();
        assert_eq!(market.event_id.as_deref(), Some("30829"));
        assert_eq!(
            (market.fees_enabled, market.fee),
            (Some(false), None),
            "a fee-free market"
        );
    }
}

#[test]
fn given_recorded_fee_fields_when_decoded_then_each_market_has_its_own_schedule_and_event() {
    // A sports market with a schedule: 3 %, exponent 1, a quarter rebated to makers.
    let ml = gamma("gamma_market_sports_moneyline_nautilus.json");
    assert_eq!(ml.fee_type.as_deref(), Some("sports_fees_v2"));
    assert_eq!(
        (ml.maker_base_fee, ml.taker_base_fee),
        (Some(1000), Some(1000))
    );
    let market = ml.to_market(at("2026-04-05T14:00:00Z")).unwrap();
    assert_eq!(market.event_id.as_deref(), Some("346898"));
    assert_eq!(market.fees_enabled, Some(true));
    assert_eq!(
        market.fee,
        Some(FeeSchedule {
            rate: dec("0.03"),
            exponent: 1,
            rebate_rate: Some(dec("0.25")),
            taker_only: true,
        })
    );
    // Its handicap market is the same event (one match, several questions).
    let handicap = gamma("gamma_market_sports_map_handicap_nautilus.json");
    assert_eq!(handicap.event_id(), Some("346898"));
    assert_eq!(handicap.fee_schedule, market.fee);
    // Fees enabled but no schedule sent: the schedule is unknown, not zero.
    let btc = gamma("gamma_market_btc_updown_5m_nautilus.json")
        .to_market(at("2026-03-11T10:00:00Z"))
        .unwrap();
    assert_eq!(btc.event_id.as_deref(), Some("260654"));
    assert_eq!((btc.fees_enabled, btc.fee), (Some(true), None));
    // A 2020 market: no fee fields and no events at all.
    let legacy = gamma("gamma_market_closed_accepting_false_nautilus.json");
    assert_eq!(
        (legacy.event_id(), legacy.fees_enabled, legacy.fee_schedule),
        (None, Some(false), None)
    );
}

#[test]
fn given_search_and_tags_when_decoded_then_events_and_labels_come_through() {
    let s = decode_public_search(&read("gamma_public_search_nautilus.json")).unwrap();
    let p = s.pagination.unwrap();
    assert_eq!(
        (p.has_more, p.total_results),
        (Some(true), Some(dec("46940")))
    );
    let events = s.events;
    assert_eq!(events[0].slug.as_deref(), Some("bitcoin-above-on-march-11"));
    assert_eq!(
        events[0].markets.as_ref().unwrap()[0].outcome_prices,
        Some(vec![dec("0.9995"), dec("0.0005")])
    );
    let tags = decode_tags(&read("gamma_tags_nautilus.json"))
        .unwrap()
        .items;
    assert_eq!(tags.len(), 5);
    assert_eq!(
        (tags[0].id.as_deref(), tags[0].label.as_deref()),
        (Some("101259"), Some("Health and Human Services"))
    );
}

// ---- WebSocket --------------------------------------------------------------------------------

#[test]
fn given_the_recorded_ws_book_when_decoded_then_best_prices_come_from_the_last_levels() {
    let WsEvent::Book(b) = ws_one("ws_book_recorded_nautilus.json") else {
        panic!()
    };
    assert!(b.rejected.is_empty());
    assert_eq!((b.book.bids.len(), b.book.asks.len()), (76, 86));
    let f = BookFeatures::of(&b.book);
    assert_eq!(
        (f.best_bid, f.best_ask),
        (Some(dec("0.511")), Some(dec("0.514")))
    );
    assert_eq!(
        b.book.bids.last().unwrap().price,
        dec("0.511"),
        "served order kept"
    );
    assert_eq!(b.book.timestamp, Some(at("2024-10-13T06:03:38.260Z")));
}

#[test]
fn given_the_docs_book_when_decoded_then_prices_without_leading_zero_parse() {
    let WsEvent::Book(b) = ws_one("ws_book_docs_example.json") else {
        panic!()
    };
    assert_eq!(b.book.bids[0].price, dec("0.48"));
    assert_eq!(b.book.asks[2].price, dec("0.54"));
}

#[test]
fn given_price_changes_of_every_schema_when_decoded_then_levels_are_absolute_sizes() {
    let WsEvent::PriceChange(v2) = ws_one("ws_price_change_v2_nautilus.json") else {
        panic!()
    };
    assert_eq!(v2.changes.len(), 3);
    assert_eq!(v2.changes[1].size, dec("3400"));
    assert_eq!(v2.changes[0].side, Side::Buy);
    assert_eq!(
        (v2.changes[0].best_bid, v2.changes[0].best_ask),
        (Some(dec("0.6")), Some(dec("0.7")))
    );
    assert_eq!(v2.timestamp, Some(at("2024-10-16T13:21:17.448Z")));
    let WsEvent::PriceChange(s) = ws_one("ws_price_change_v2_synthetic_nautilus.json") else {
        panic!()
    };
    assert_eq!(s.changes[0].price, dec("0.51"));
    let WsEvent::PriceChange(legacy) = ws_one("ws_price_change_legacy_schema_docs.json") else {
        panic!()
    };
    assert_eq!(legacy.changes.len(), 1);
    let c = &legacy.changes[0];
    assert_eq!(
        c.asset_id, "71321045679252212594626385532706912750332728571942532289631379312455583992563",
        "legacy changes take the top-level asset"
    );
    assert_eq!(
        (c.price, c.size, c.side),
        (dec("0.4"), dec("3300"), Side::Sell)
    );
    assert_eq!(
        c.hash.as_deref(),
        Some("3cd4d61e042c81560c9037ece0c61f3b1a8fbbdd")
    );
    let WsEvent::PriceChange(flat) = ws_one("ws_price_change_legacy_flat_nautilus.json") else {
        panic!()
    };
    assert_eq!(
        (flat.changes[0].price, flat.changes[0].size),
        (dec("0.514"), dec("21574.08"))
    );
}

#[test]
fn given_last_trade_prices_when_decoded_then_they_become_trades_with_ms_timestamps() {
    let WsEvent::LastTradePrice(t) = ws_one("ws_last_trade_price_recorded_nautilus.json") else {
        panic!()
    };
    assert_eq!(t.fee_rate_bps, Some(Decimal::ZERO));
    assert_eq!(
        t.transaction_hash, None,
        "this 2024 capture predates transaction_hash"
    );
    let trade = t.to_trade().unwrap();
    assert_eq!(trade.ts, at("2024-08-25T05:35:36.087Z"));
    assert_eq!(
        (trade.price, trade.size, trade.side),
        (dec("0.491"), dec("85.36"), Side::Sell)
    );
    let WsEvent::LastTradePrice(s) = ws_one("ws_last_trade_price_synthetic_nautilus.json") else {
        panic!()
    };
    assert_eq!(s.to_trade().unwrap().side, Side::Buy);
}

#[test]
fn given_custom_feature_events_when_decoded_then_their_fields_come_through() {
    let WsEvent::TickSizeChange(t) = ws_one("ws_tick_size_change_recorded_nautilus.json") else {
        panic!()
    };
    assert_eq!(
        (t.old_tick_size, t.new_tick_size),
        (Some(dec("0.01")), dec("0.001"))
    );
    let WsEvent::BestBidAsk(b) = ws_one("ws_best_bid_ask_nautilus.json") else {
        panic!()
    };
    assert_eq!(
        (b.best_bid, b.best_ask, b.spread),
        (Some(dec("0.73")), Some(dec("0.77")), Some(dec("0.04")))
    );
    let WsEvent::NewMarket(n) = ws_one("ws_new_market_nautilus.json") else {
        panic!()
    };
    assert_eq!(
        n.outcomes.as_deref(),
        Some(&["Yes".to_string(), "No".to_string()][..]),
        "real arrays here"
    );
    assert_eq!(n.clob_token_ids.as_ref().map(Vec::len), Some(2));
    assert_eq!(n.game_start_time, None, "\"\" is absent");
    assert_eq!(n.order_price_min_tick_size, Some(dec("0.01")));
    let WsEvent::MarketResolved(r) = ws_one("ws_market_resolved_nautilus.json") else {
        panic!()
    };
    assert_eq!(r.winning_outcome.as_deref(), Some("Yes"));
    assert_eq!(r.timestamp, Some(at("2025-12-26T23:06:55.550Z")));
}

#[test]
fn given_an_array_frame_of_fixtures_when_split_then_kinds_are_classified_without_decoding() {
    let frame = format!(
        "[{},{},{}]",
        text("ws_book_docs_example.json"),
        text("ws_last_trade_price_recorded_nautilus.json"),
        text("ws_best_bid_ask_nautilus.json")
    );
    let raw = split_frame(&frame).unwrap();
    let kinds: Vec<_> = raw.iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Book,
            EventKind::LastTradePrice,
            EventKind::BestBidAsk
        ]
    );
    assert_eq!(parse_frame(&frame).unwrap().events.len(), 3);
}
