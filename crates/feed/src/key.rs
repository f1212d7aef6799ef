//! The trade key: one trade, one key, whichever source brought it.
//!
//! Polymarket gives a trade no id. The WebSocket's `last_trade_price` carries the token, the
//! taker side, price, size, the match time in milliseconds and (since 2026) the transaction
//! hash; a Data API row carries the token, the taker side (`takerOnly=true`), price, size, the
//! block time in seconds and the transaction hash. Several fills can share one transaction, and
//! identical-looking fills are real (docs/trades.md has the sources). The key therefore is
//!
//! `(condition_id, token_id, transaction_hash, side, price, size, k)`
//!
//! with price and size in integer millionths (CLOB amounts are 6-decimal fixed point) and `k`
//! the ordinal of the trade among the trades with the same six values — within one settlement
//! group (condition, transaction, token) — that its source has delivered. Time is not in the
//! key: the two sources' clocks differ. A source counts identical fills the same way however it
//! orders them, so the k-th such WebSocket trade and the k-th such Data API row get one key, and
//! the second to arrive is a duplicate. A WebSocket event delivered twice (a duplicate frame,
//! two shards, a reconnect's overlap) has the same match time as the first, so it is recognised
//! before `k` is assigned ([`crate::Feed`]).
//!
//! A trade without a transaction hash (older feeds) is keyed by its match time instead of `k`
//! and never matches a Data API row by key; see the feed's window matching.
//!
//! The key is a 128-bit FNV-1a hash of those values, written as 32 hex digits.
//!
//! The feed also remembers identities (the values before the ordinal) for hours; it keeps them
//! as an [`IdentityDigest`], a 128-bit hash of the same fields in a domain of its own, so no
//! string stays in memory per trade. A digest never leaves the process (it is not stored).

use polytape_core::Side;
use rust_decimal::Decimal;

/// A trade's key (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TradeKey(pub u128);

impl TradeKey {
    pub fn hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

impl std::fmt::Display for TradeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A trade identity (or the values an unhashed trade is matched by) as 128 bits, held in
/// memory instead of its strings. Distinct from every [`TradeKey`]: its hash starts with a
/// domain field the key's has not. Two identities share a digest with probability 2⁻¹²⁸.
///
/// Two `u64` halves rather than a `u128`: 8-byte alignment, so a table entry of a digest and
/// one match time is 24 bytes, not 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityDigest(u64, u64);

impl IdentityDigest {
    pub fn new(hash: u128) -> IdentityDigest {
        IdentityDigest((hash >> 64) as u64, hash as u64)
    }

    pub fn as_u128(self) -> u128 {
        u128::from(self.0) << 64 | u128::from(self.1)
    }
}

/// The values a trade key is made of, before the ordinal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TradeIdentity {
    pub condition_id: String,
    pub token_id: String,
    /// Empty when the source sent none.
    pub transaction_hash: String,
    pub side: Side,
    pub price_micros: i64,
    pub size_micros: i64,
}

impl TradeIdentity {
    /// The key of the `k`-th trade with this identity (or, without a transaction hash, of the
    /// trade matched at `ms`).
    pub fn key(&self, k: u64) -> TradeKey {
        let mut h = Fnv128::new();
        h.field(self.condition_id.as_bytes());
        h.field(self.token_id.as_bytes());
        h.field(self.transaction_hash.as_bytes());
        h.field(self.side.as_str().as_bytes());
        h.field(&self.price_micros.to_le_bytes());
        h.field(&self.size_micros.to_le_bytes());
        h.field(&k.to_le_bytes());
        TradeKey(h.finish())
    }

    /// The identity as 128 bits (see [`IdentityDigest`]).
    pub fn digest(&self) -> IdentityDigest {
        let mut h = Fnv128::new();
        h.field(b"polytape/identity");
        h.field(self.condition_id.as_bytes());
        h.field(self.token_id.as_bytes());
        h.field(self.transaction_hash.as_bytes());
        h.field(self.side.as_str().as_bytes());
        h.field(&self.price_micros.to_le_bytes());
        h.field(&self.size_micros.to_le_bytes());
        IdentityDigest::new(h.finish())
    }
}

/// The values a trade without a transaction hash is matched to Data API rows by (token, side,
/// price, size) as 128 bits, in a domain of their own.
pub fn unhashed_digest(
    token_id: &str,
    side: Side,
    price_micros: i64,
    size_micros: i64,
) -> IdentityDigest {
    let mut h = Fnv128::new();
    h.field(b"polytape/unhashed");
    h.field(token_id.as_bytes());
    h.field(side.as_str().as_bytes());
    h.field(&price_micros.to_le_bytes());
    h.field(&size_micros.to_le_bytes());
    IdentityDigest::new(h.finish())
}

/// An amount in integer millionths, when it has at most 6 decimals and fits.
pub fn micros(v: Decimal) -> Option<i64> {
    let m = v.checked_mul(Decimal::from(1_000_000))?;
    if !m.fract().is_zero() {
        return None;
    }
    i64::try_from(m).ok()
}

/// FNV-1a, 128 bits; each field is length-prefixed so ("ab","c") ≠ ("a","bc").
struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013B;

    fn new() -> Fnv128 {
        Fnv128(Self::OFFSET)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u128::from(*b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn field(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u32).to_le_bytes());
        self.bytes(bytes);
    }

    fn finish(self) -> u128 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn identity() -> TradeIdentity {
        TradeIdentity {
            condition_id: "0xc0".into(),
            token_id: "7123".into(),
            transaction_hash: "0xabc".into(),
            side: Side::Buy,
            price_micros: 450_000,
            size_micros: 10_000_000,
        }
    }

    #[test]
    fn every_value_and_the_ordinal_change_the_key() {
        let base = identity().key(0);
        assert_eq!(base, identity().key(0));
        assert_ne!(base, identity().key(1));
        let mut other = identity();
        other.side = Side::Sell;
        assert_ne!(base, other.key(0));
        let mut other = identity();
        other.size_micros += 1;
        assert_ne!(base, other.key(0));
        let mut a = identity();
        a.condition_id = "0xc0a".into();
        a.token_id = "bc".into();
        let mut b = identity();
        b.condition_id = "0xc0".into();
        b.token_id = "abc".into();
        assert_ne!(a.key(0), b.key(0), "fields are delimited");
        assert_eq!(base.hex().len(), 32);
    }

    #[test]
    fn the_digest_tells_identities_apart_and_differs_from_every_key() {
        let base = identity().digest();
        assert_eq!(base, identity().digest());
        let mut other = identity();
        other.transaction_hash = "0xabd".into();
        assert_ne!(base, other.digest());
        let mut other = identity();
        other.price_micros += 1;
        assert_ne!(base, other.digest());
        for k in 0..4 {
            assert_ne!(base.as_u128(), identity().key(k).0, "a digest is not a key");
        }
        let u = unhashed_digest("7123", Side::Buy, 450_000, 10_000_000);
        assert_ne!(u, unhashed_digest("7123", Side::Sell, 450_000, 10_000_000));
        assert_ne!(u, base);
    }

    #[test]
    fn the_key_is_stable_across_builds() {
        // Stored keys must keep matching new ones: this value is part of the data format
        // (FNV-1a 128 with its published offset basis and prime).
        assert_eq!(identity().key(0).hex(), "7bb18a8b92ee3fa7dfb43f158b99e616");
    }

    #[test]
    fn micros_take_six_decimals_and_refuse_more() {
        assert_eq!(micros(Decimal::from_str("0.45").unwrap()), Some(450_000));
        assert_eq!(
            micros(Decimal::from_str("12.000001").unwrap()),
            Some(12_000_001)
        );
        assert_eq!(micros(Decimal::from_str("0.0000001").unwrap()), None);
    }
}
