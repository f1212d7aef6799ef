//! The hot path's decoder: a frame in Polymarket's usual shape, read in one pass over its bytes
//! into just the fields the feed uses. It is a strict reader of a subset of JSON — compact
//! text without escapes or control characters — that skips what it does not use at memchr
//! speed (a string ends at the next quote once the frame is known to hold no backslash).
//!
//! Anything out of the ordinary — an escape, a control character, a value of another type, a
//! repeated field, a missing field, a number that does not parse, a price outside [0, 1], a
//! legacy `price_change` — makes it give up on the whole frame, and the feed decodes that frame
//! with the tolerant decoder instead (`polytape_polymarket::ws`), which knows what to keep and
//! what to count. So the fast path never decides anything the tolerant one would decide
//! differently; it only skips the work for frames that need none of it (tested frame by frame
//! in `tests/feed.rs`, decimals against `parse_decimal` below).

use polytape_polymarket::data::parse_side;
use polytape_polymarket::decode::{parse_decimal, size_problem, ts_from_ms};
use polytape_polymarket::ws::LastTradePrice;
use rust_decimal::Decimal;

/// What a frame changes, in order.
#[derive(Debug)]
pub(crate) enum Item<'a> {
    Trade(LastTradePrice),
    /// A `book`: the token's top of book from its levels, replacing the one it had.
    Book {
        asset: &'a str,
        bid: Option<Decimal>,
        ask: Option<Decimal>,
    },
    /// Best prices merged into the token's (a `best_bid_ask`, or a run of one token's
    /// `price_change` changes: the run's last bid and last ask that were given).
    Top {
        asset: &'a str,
        bid: Option<Decimal>,
        ask: Option<Decimal>,
    },
}

/// A frame read by the fast path.
#[derive(Debug, Default)]
pub(crate) struct Frame<'a> {
    pub events: u64,
    /// Events whose `event_type` the feed does not know.
    pub unknown: u64,
    pub items: Vec<Item<'a>>,
}

/// The frame's events, or `None` when the frame needs the tolerant decoder (or is `PONG`,
/// blank, or not JSON: the tolerant path says which).
pub(crate) fn parse(text: &str) -> Option<Frame<'_>> {
    let spaced = clean(text.as_bytes())?;
    let mut r = Reader {
        s: text.as_bytes(),
        text,
        i: 0,
        spaced,
    };
    let mut frame = Frame::default();
    match r.peek()? {
        b'[' => {
            r.i += 1;
            if !r.eat_if(b']') {
                loop {
                    r.event(&mut frame)?;
                    if !r.eat_if(b',') {
                        break;
                    }
                }
                r.eat(b']')?;
            }
        }
        b'{' => r.event(&mut frame)?,
        _ => return None,
    }
    (r.peek().is_none()).then_some(frame)
}

/// `None` when the frame holds a backslash or a control character other than JSON's
/// whitespace — a string then ends at its next quote; otherwise whether it holds tabs or line
/// breaks (then each string is checked for them: JSON allows them only between tokens).
/// Checked a block at a time so the loop vectorises.
fn clean(s: &[u8]) -> Option<bool> {
    let mut spaced = false;
    for block in s.chunks(32) {
        let (odd, space) = block.iter().fold((false, false), |(odd, space), &b| {
            let white = (b == b'\n') | (b == b'\r') | (b == b'\t');
            (odd | (b == b'\\') | ((b < 0x20) & !white), space | white)
        });
        if odd {
            return None;
        }
        spaced |= space;
    }
    Some(spaced)
}

/// The fields of an event the feed may use; every one of them must be a string when present.
#[derive(Default)]
struct Fields<'a> {
    event_type: Option<&'a str>,
    asset_id: Option<&'a str>,
    market: Option<&'a str>,
    price: Option<&'a str>,
    side: Option<&'a str>,
    size: Option<&'a str>,
    fee_rate_bps: Option<&'a str>,
    timestamp: Option<&'a str>,
    transaction_hash: Option<&'a str>,
    best_bid: Option<&'a str>,
    best_ask: Option<&'a str>,
    /// The best bid and best ask from `bids` / `asks` when present.
    bids: Option<Option<Decimal>>,
    asks: Option<Option<Decimal>>,
    /// `price_changes` was present; its runs were pushed as items.
    changes: bool,
}

struct Reader<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
    /// The frame holds whitespace other than spaces ([`clean`]).
    spaced: bool,
}

/// Deepest nesting skipped in a field the feed does not use.
const MAX_DEPTH: u32 = 64;

impl<'a> Reader<'a> {
    /// The next byte after spaces.
    fn peek(&mut self) -> Option<u8> {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        {
            self.i += 1;
        }
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn eat_if(&mut self, c: u8) -> bool {
        self.eat(c).is_some()
    }

    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let end = start + find_quote(&self.s[start..])?;
        self.i = end + 1;
        if self.spaced && self.s[start..end].iter().any(|&b| b < 0x20) {
            return None;
        }
        // Quotes are ASCII: both ends are character boundaries.
        Some(&self.text[start..end])
    }

    /// A string field's value, refusing a second one.
    fn field(&mut self, slot: &mut Option<&'a str>) -> Option<()> {
        if slot.is_some() {
            return None;
        }
        *slot = Some(self.string()?);
        Some(())
    }

    /// The members of an object, each handed to `member` with its key.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.eat_if(b'}') {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            member(self, key)?;
            if !self.eat_if(b',') {
                return self.eat(b'}');
            }
        }
    }

    /// The values of an array, each handed to `value`.
    fn array(&mut self, mut value: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.eat_if(b']') {
            return Some(());
        }
        loop {
            value(self)?;
            if !self.eat_if(b',') {
                return self.eat(b']');
            }
        }
    }

    /// Any JSON value, checked and not kept.
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|r, _| r.skip(depth + 1)),
            b'[' => self.array(|r| r.skip(depth + 1)),
            _ => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(|b| {
                    !matches!(b, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t')
                }) {
                    self.i += 1;
                }
                scalar(&self.s[start..self.i]).then_some(())
            }
        }
    }

    fn event(&mut self, frame: &mut Frame<'a>) -> Option<()> {
        let mark = frame.items.len();
        let mut f = Fields::default();
        self.object(|r, key| match key {
            "event_type" => r.field(&mut f.event_type),
            "asset_id" => r.field(&mut f.asset_id),
            "market" => r.field(&mut f.market),
            "price" => r.field(&mut f.price),
            "side" => r.field(&mut f.side),
            "size" => r.field(&mut f.size),
            "fee_rate_bps" => r.field(&mut f.fee_rate_bps),
            "timestamp" => r.field(&mut f.timestamp),
            "transaction_hash" => r.field(&mut f.transaction_hash),
            "best_bid" => r.field(&mut f.best_bid),
            "best_ask" => r.field(&mut f.best_ask),
            "bids" if f.bids.is_none() => {
                f.bids = Some(r.levels(true)?);
                Some(())
            }
            "asks" if f.asks.is_none() => {
                f.asks = Some(r.levels(false)?);
                Some(())
            }
            "price_changes" if !f.changes => {
                f.changes = true;
                r.changes(&mut frame.items)
            }
            // A legacy `price_change`, or a repeated field: the tolerant decoder's.
            "changes" | "bids" | "asks" | "price_changes" => None,
            _ => r.skip(1),
        })?;
        frame.events += 1;
        let is_changes = f.event_type == Some("price_change");
        if !is_changes {
            // Changes of an event that is not a `price_change` are not used.
            frame.items.truncate(mark);
        }
        match f.event_type? {
            "last_trade_price" => frame.items.push(Item::Trade(trade(&f)?)),
            "book" => frame.items.push(Item::Book {
                asset: non_empty(f.asset_id)?,
                bid: f.bids?,
                ask: f.asks?,
            }),
            "price_change" if f.changes => {}
            "price_change" => return None,
            "best_bid_ask" => {
                let asset = non_empty(f.asset_id)?;
                let bid = price(f.best_bid?)?;
                let ask = price(f.best_ask?)?;
                frame.items.push(Item::Top {
                    asset,
                    bid: Some(bid),
                    ask: Some(ask),
                });
            }
            "tick_size_change" | "new_market" | "market_resolved" => {}
            _ => frame.unknown += 1,
        }
        Some(())
    }

    /// The best price of a side of a book (the highest bid or lowest ask) over its levels of a
    /// size above 0; `Some(None)` when no level has one, `None` when a level is not clean.
    fn levels(&mut self, bids: bool) -> Option<Option<Decimal>> {
        let mut best: Option<(u64, u32)> = None;
        self.array(|r| {
            let (mut price, mut size) = (None, None);
            r.object(|r, key| match key {
                "price" => r.field(&mut price),
                "size" => r.field(&mut size),
                _ => r.skip(2),
            })?;
            let price = plain(price?).filter(|&(m, s)| m <= 10u64.pow(s))?;
            if size_is_zero(size?)? {
                return Some(());
            }
            let better = |b| match cmp_plain(price, b) {
                std::cmp::Ordering::Greater => bids,
                std::cmp::Ordering::Less => !bids,
                std::cmp::Ordering::Equal => false,
            };
            if best.is_none_or(better) {
                best = Some(price);
            }
            Some(())
        })?;
        Some(best.map(|(m, s)| to_decimal(m, s)))
    }

    /// A `price_change`'s changes, as one [`Item::Top`] per run of changes of one token.
    fn changes(&mut self, items: &mut Vec<Item<'a>>) -> Option<()> {
        let mut run: Option<Item<'a>> = None;
        self.array(|r| {
            let mut c = Fields::default();
            r.object(|r, key| match key {
                "asset_id" => r.field(&mut c.asset_id),
                "price" => r.field(&mut c.price),
                "size" => r.field(&mut c.size),
                "side" => r.field(&mut c.side),
                "best_bid" => r.field(&mut c.best_bid),
                "best_ask" => r.field(&mut c.best_ask),
                _ => r.skip(2),
            })?;
            let asset = non_empty(c.asset_id)?;
            price(c.price?)?;
            size_is_zero(c.size?)?;
            parse_side(c.side?)?;
            let bid = c
                .best_bid
                .map(decimal)
                .map_or(Some(None), |d| d.map(Some))?;
            let ask = c
                .best_ask
                .map(decimal)
                .map_or(Some(None), |d| d.map(Some))?;
            match &mut run {
                Some(Item::Top {
                    asset: a,
                    bid: b,
                    ask: k,
                }) if *a == asset => {
                    *b = bid.or(*b);
                    *k = ask.or(*k);
                }
                _ => {
                    items.extend(run.take());
                    run = Some(Item::Top { asset, bid, ask });
                }
            }
            Some(())
        })?;
        items.extend(run);
        Some(())
    }
}

fn trade(f: &Fields<'_>) -> Option<LastTradePrice> {
    let asset_id = non_empty(f.asset_id)?;
    let price = price(f.price?)?;
    let side = parse_side(non_empty(f.side)?)?;
    let size = match f.size {
        None => None,
        Some(s) => {
            let size = decimal(s)?;
            if size_problem(size).is_some() {
                return None;
            }
            Some(size)
        }
    };
    let ts = f.timestamp?;
    if ts.is_empty() || !ts.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let timestamp = ts_from_ms(ts.parse().ok()?)?;
    let fee_rate_bps = match f.fee_rate_bps {
        None => None,
        Some(s) => Some(decimal(s)?),
    };
    Some(LastTradePrice {
        asset_id: asset_id.to_string(),
        market: f.market.filter(|m| !m.is_empty()).map(str::to_string),
        price,
        side: Some(side),
        size,
        fee_rate_bps,
        timestamp: Some(timestamp),
        transaction_hash: f
            .transaction_hash
            .filter(|h| !h.is_empty())
            .map(str::to_string),
    })
}

/// `parse_decimal(s).ok()`: at once for the usual `digits[.digits]` (see [`plain`]), through
/// `parse_decimal` for anything else.
pub(crate) fn decimal(s: &str) -> Option<Decimal> {
    match plain(s) {
        Some((mantissa, scale)) => Some(to_decimal(mantissa, scale)),
        None => parse_decimal(s).ok(),
    }
}

/// A price in [0, 1] written the usual way; anything else is the tolerant decoder's.
fn price(s: &str) -> Option<Decimal> {
    let (mantissa, scale) = plain(s)?;
    (mantissa <= 10u64.pow(scale)).then(|| to_decimal(mantissa, scale))
}

/// `digits[.digits]` of at most 18 digits as (mantissa, scale) with the fraction's trailing
/// zeros dropped — the value and representation `parse_decimal` gives it.
fn plain(s: &str) -> Option<(u64, u32)> {
    let b = s.as_bytes();
    if !(1..=18).contains(&b.len()) || b[0] == b'.' || b[b.len() - 1] == b'.' {
        return None;
    }
    let (mut mantissa, mut scale, mut dot) = (0u64, 0u32, false);
    for &c in b {
        match c {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + u64::from(c - b'0');
                scale += u32::from(dot);
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    while scale > 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        scale -= 1;
    }
    Some((mantissa, scale))
}

fn to_decimal(mantissa: u64, scale: u32) -> Decimal {
    Decimal::from_i128_with_scale(i128::from(mantissa), scale)
}

/// Orders two plain decimals ([`plain`]) by value.
fn cmp_plain(a: (u64, u32), b: (u64, u32)) -> std::cmp::Ordering {
    let wide = |(m, s): (u64, u32), other: u32| u128::from(m) * 10u128.pow(other.saturating_sub(s));
    let top = a.1.max(b.1);
    wide(a, top).cmp(&wide(b, top))
}

/// Whether a size is 0, or `None` when it is not a size that can be stored (what
/// [`size_problem`] refuses, or not a number). The usual sizes — digits with at most 11 before
/// the point — are read without building a decimal.
fn size_is_zero(s: &str) -> Option<bool> {
    let b = s.as_bytes();
    let int_digits = b.iter().position(|&c| c == b'.').unwrap_or(b.len());
    let plain = (1..=11).contains(&int_digits)
        && b[b.len() - 1] != b'.'
        && b.iter()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || i == int_digits);
    if plain {
        return Some(b.iter().all(|&c| c == b'0' || c == b'.'));
    }
    let size = parse_decimal(s).ok()?;
    size_problem(size).is_none().then(|| size.is_zero())
}

/// Where the first `"` is: eight bytes a time (most strings here are short, where a call to
/// a vectorised search costs more than it saves).
#[inline]
fn find_quote(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(block) = s.get(i..i + 8) {
        let x = u64::from_le_bytes(block.try_into().ok()?) ^ (ONES * u64::from(b'"'));
        // The lowest byte flagged is the first that was a quote (borrows only flag higher ones).
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    s[i..].iter().position(|&b| b == b'"').map(|p| i + p)
}

/// A JSON number, `true`, `false` or `null`.
fn scalar(s: &[u8]) -> bool {
    if matches!(s, b"true" | b"false" | b"null") {
        return true;
    }
    let mut i = usize::from(s.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while s.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match s.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if s.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == s.len()
}

fn non_empty(v: Option<&str>) -> Option<&str> {
    v.filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use polytape_core::money::is_valid_price;

    /// Same value and same representation (scale) as `parse_decimal`, or both refuse.
    #[test]
    fn decimals_read_at_once_equal_parse_decimal() {
        let mut cases: Vec<String> = [
            "0",
            "00",
            "0.0",
            "0.50",
            "0.5",
            "1",
            "1.",
            ".5",
            "1.000",
            "10",
            "10.0",
            "0.001",
            "123456789012345678",
            "1234567890123456789",
            "0.123456789012345678",
            "99999999999.99",
            "",
            "-0.5",
            "+1",
            "1e3",
            " 1",
            "1.2.3",
            "abc",
            "0x10",
            "٣",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every string of up to 4 characters from a small alphabet.
        let alphabet = ['0', '1', '5', '9', '.', '-', 'e'];
        let mut frontier = vec![String::new()];
        for _ in 0..4 {
            frontier = frontier
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            cases.extend(frontier.iter().cloned());
        }
        for s in &cases {
            let fast = decimal(s).map(|d| (d, d.scale()));
            let slow = parse_decimal(s).ok().map(|d| (d, d.scale()));
            assert_eq!(fast, slow, "{s:?}");
        }
        assert!(cases.len() > 2000);
    }

    #[test]
    fn plain_prices_compare_and_check_as_decimals_do() {
        let cases = [
            "0",
            "0.5",
            "0.50",
            "0.05",
            "1",
            "1.0",
            "1.001",
            "0.999999",
            "2",
            "0.1234567",
        ];
        for a in cases {
            let da = parse_decimal(a).unwrap();
            assert_eq!(price(a), is_valid_price(da).then_some(da), "{a}");
            for b in cases {
                let db = parse_decimal(b).unwrap();
                assert_eq!(
                    cmp_plain(plain(a).unwrap(), plain(b).unwrap()),
                    da.cmp(&db),
                    "{a} {b}"
                );
            }
        }
        assert_eq!(
            price("1."),
            None,
            "not written the usual way: the tolerant decoder's"
        );
    }

    /// `size_is_zero` says what `parse_decimal` and `size_problem` would.
    #[test]
    fn sizes_read_at_once_agree_with_size_problem() {
        let cases = [
            "0",
            "0.0",
            "000",
            "5",
            "5.25",
            "1.",
            ".5",
            "99999999999",
            "999999999999",
            "999999999999.9999996",
            "1e3",
            "-1",
            "",
            "12a",
            "0.000000",
        ];
        for s in cases {
            let slow = parse_decimal(s)
                .ok()
                .and_then(|d| size_problem(d).is_none().then(|| d.is_zero()));
            assert_eq!(size_is_zero(s), slow, "{s:?}");
        }
    }

    #[test]
    fn the_first_quote_is_found_wherever_it_is() {
        for len in 0..40 {
            for at in 0..=len {
                let mut s = vec![b'a'; len];
                if at < len {
                    s[at] = b'"';
                    // A second quote further on, and bytes that borrow (0x21, 0x23) around it.
                    if at + 3 < len {
                        s[at + 3] = b'"';
                    }
                    if at > 0 {
                        s[at - 1] = 0x23;
                    }
                    if at + 1 < len {
                        s[at + 1] = 0x21;
                    }
                }
                let want = s.iter().position(|&b| b == b'"');
                assert_eq!(find_quote(&s), want, "len {len} at {at}");
            }
        }
    }

    #[test]
    fn scalars_are_json_numbers_and_literals() {
        for ok in [
            "0", "-0", "12", "1.5", "-1.5e-3", "2E10", "true", "false", "null",
        ] {
            assert!(scalar(ok.as_bytes()), "{ok}");
        }
        for bad in ["01", "1.", ".5", "+1", "1e", "--1", "tru", "nan", "", "-"] {
            assert!(!scalar(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn a_run_of_one_tokens_changes_is_one_top_with_its_last_prices() {
        let frame = r#"{"event_type":"price_change","market":"m","price_changes":[
            {"asset_id":"a","price":"0.5","size":"1","side":"BUY","best_bid":"0.4","best_ask":"0.6"},
            {"asset_id":"a","price":"0.5","size":"0","side":"SELL","best_ask":"0.55"},
            {"asset_id":"a","price":"0.5","size":"2","side":"BUY","best_bid":"0.45"},
            {"asset_id":"b","price":"0.5","size":"1","side":"BUY","best_bid":"0.41"}]}"#
            .replace('\n', "");
        let f = parse(&frame).expect("usual shape");
        assert_eq!((f.events, f.unknown), (1, 0));
        let tops: Vec<_> = f
            .items
            .iter()
            .map(|i| match i {
                Item::Top { asset, bid, ask } => (*asset, *bid, *ask),
                other => panic!("{other:?}"),
            })
            .collect();
        let d = |s: &str| Some(s.parse::<Decimal>().unwrap());
        assert_eq!(
            tops,
            vec![("a", d("0.45"), d("0.55")), ("b", d("0.41"), None)]
        );
    }

    #[test]
    fn anything_odd_is_left_to_the_tolerant_decoder() {
        let ok =
            r#"{"event_type":"best_bid_ask","asset_id":"a","best_bid":"0.4","best_ask":"0.6"}"#;
        assert!(parse(ok).is_some());
        let spaced = "{ \"event_type\" :\"best_bid_ask\",\r\n\t\"asset_id\":\"a\",\"best_bid\":\"0.4\",\"best_ask\":\"0.6\"\n}\n";
        assert!(parse(spaced).is_some(), "whitespace between tokens is JSON");
        for odd in [
            // an escape, a control character, a line break inside a string
            r#"{"event_type":"best_bid_ask","asset_id":"a\u0062","best_bid":"0.4","best_ask":"0.6"}"#,
            "{\"event_type\":\"best_bid_ask\",\"asset_id\":\"a\u{1}\",\"best_bid\":\"0.4\",\"best_ask\":\"0.6\"}",
            "{\"event_type\":\"best_bid_ask\",\n\"asset_id\":\"a\nb\",\"best_bid\":\"0.4\",\"best_ask\":\"0.6\"}",
            // a repeated field, a number where a string is, trailing text, an unclosed frame
            r#"{"event_type":"best_bid_ask","asset_id":"a","asset_id":"b","best_bid":"0.4","best_ask":"0.6"}"#,
            r#"{"event_type":"best_bid_ask","asset_id":"a","best_bid":0.4,"best_ask":"0.6"}"#,
            r#"{"event_type":"best_bid_ask","asset_id":"a","best_bid":"0.4","best_ask":"0.6"} x"#,
            r#"[{"event_type":"best_bid_ask","asset_id":"a","best_bid":"0.4","best_ask":"0.6"}"#,
            // a bad number in a field not used, an event without a type, a legacy price_change
            r#"{"event_type":"best_bid_ask","asset_id":"a","best_bid":"0.4","best_ask":"0.6","spread":01}"#,
            r#"{"asset_id":"a"}"#,
            r#"{"event_type":"price_change","asset_id":"a","changes":[]}"#,
            "PONG",
            "",
        ] {
            assert!(parse(odd).is_none(), "{odd}");
        }
    }
}
