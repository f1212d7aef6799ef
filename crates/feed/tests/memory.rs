//! What the feed keeps per trade to know it again (issue 8: the live feed's memory grew
//! ≈ 700 B with every trade seen): the bytes of its tables after 100,000 trades, from their
//! capacities ([`polytape_feed::Remembered::bytes`]; a counting global allocator would need
//! `unsafe`, which the workspace forbids), over their number.

use polytape_feed::{Feed, FeedConfig};

const CID: &str = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917";
const YES: &str = "2174263314346390629056905015582624153306727273689761495048815684794993883645";
/// 2026-11-20T12:00:00Z.
const T0: i64 = 1_795_176_000_000;
const N: i64 = 100_000;

/// A `last_trade_price` frame of the usual shape, its transaction hash 66 characters.
fn frame(asset: &str, i: i64, tx: bool) -> String {
    let tx = if tx {
        format!("0x{i:064x}")
    } else {
        String::new()
    };
    let price = 1 + i % 98;
    format!(
        "{{\"asset_id\":\"{asset}\",\"event_type\":\"last_trade_price\",\"fee_rate_bps\":\"0\",\
         \"market\":\"{CID}\",\"price\":\"0.{price:02}\",\"side\":\"BUY\",\"size\":\"{}\",\
         \"timestamp\":\"{}\",\"transaction_hash\":\"{tx}\"}}",
        1 + i % 1000,
        T0 + i
    )
}

/// Bytes the feed remembers per trade after `N` distinct trades (each with its own
/// transaction hash, or none), and how many of each thing it holds.
fn bytes_per_trade(tx: bool) -> (f64, polytape_feed::Remembered) {
    let mut f = Feed::new(FeedConfig::default());
    for i in 0..N {
        f.on_frame(0, i as u64, T0 + i + 10, &frame(YES, i, tx));
        drop(f.drain());
    }
    assert_eq!(f.counts().trades_ws, N as u64);
    let r = f.remembered();
    (r.bytes as f64 / N as f64, r)
}

#[test]
fn the_feed_remembers_well_under_100_bytes_per_trade_it_has_seen() {
    let (hashed, r) = bytes_per_trade(true);
    assert_eq!((r.keys, r.identities), (N as usize, N as usize));
    // Older feeds without a transaction hash: matched to Data API rows by their match time.
    let (unhashed, r) = bytes_per_trade(false);
    assert_eq!((r.keys, r.unhashed), (N as usize, N as usize));
    eprintln!("bytes per trade remembered: with a hash {hashed:.1}, without {unhashed:.1}");
    // 16 B a key and 24 an identity, in tables 7/16 to 7/8 full (here 100,000 of 131,072).
    assert!(hashed < 60.0, "{hashed:.1} B a trade");
    assert!(unhashed < 100.0, "{unhashed:.1} B a trade");
}
