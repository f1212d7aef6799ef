//! Small, reusable tolerant decoders for Polymarket's wire formats.
//!
//! Polymarket changes field types without notice: the same value is a string in one payload and
//! a number in the next (`"9.99"` vs `9.99`, `0`/`1` ints where floats are expected), arrays are
//! sometimes JSON *encoded in a string* (`"[\"Yes\", \"No\"]"`), and timestamps come in five
//! shapes. Each helper here accepts every shape seen in real payloads (see the reference,
//! traps 2, 3, 4, 5, 6), treats `null` (and `""` for scalars) as absent, and fails with a short
//! reason on anything else, so the caller can reject one record and keep the rest.
//!
//! The `*_opt` functions are meant for `#[serde(default, deserialize_with = "…")]` on `Option`
//! fields; the `parse_*` functions work on plain strings.
//!
//! Records are decoded one at a time by the one shared mechanism, [`decode_record`]: a field
//! whose type drifted is read as absent and reported ([`Drift`]); the record is rejected
//! ([`Rejected`]) only when one of its type's essential fields ([`Record::ESSENTIAL`]) is
//! unusable. Every decoder of the crate (Gamma markets, events and tags, CLOB books and
//! markets, Data API trades, WebSocket events) goes through it.

use crate::error::{Drift, Rejected};
use crate::Ts;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Significant digits kept when a decimal has more than that (legacy Gamma rows carry 34-digit
/// `outcomePrices`; `Decimal` holds 28 at most, and 18 is what DECIMAL(18,6) can store anyway).
pub const MAX_SIGNIFICANT_DIGITS: usize = 18;

/// One JSON scalar, borrowed when the input allows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
}

impl Scalar<'_> {
    /// The scalar as text: strings as they are, numbers in their shortest exact decimal form
    /// (never with an exponent), `None` for null and booleans.
    pub fn to_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Scalar::Null | Scalar::Bool(_) => None,
            Scalar::I64(i) => Some(Cow::Owned(i.to_string())),
            Scalar::U64(u) => Some(Cow::Owned(u.to_string())),
            // `Display` for f64 prints the shortest round-trip digits without an exponent.
            Scalar::F64(f) => Some(Cow::Owned(format!("{f}"))),
            Scalar::Str(s) => Some(Cow::Borrowed(s.as_ref())),
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or number")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::I64(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// A string-or-number held as owned text (token ids, ids, raw prices before validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = d.deserialize_any(ScalarVisitor)?;
        match s.to_text() {
            Some(t) => Ok(Text(t.into_owned())),
            None => Err(de::Error::custom("expected a string or number")),
        }
    }
}

/// A value that never fails its parent record: a string or number kept as text, or what it
/// was instead (a bool, an object, an array). A book level's `price` of `true` then drops that
/// level, and a book's `tick_size` of `{}` drops that value, instead of failing the whole book.
/// As an `Option<Loose>` field, `null` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loose {
    Text(String),
    /// Not a string or number: `"a bool"`, `"an object"`, `"an array"`, `"null"`.
    Wrong(&'static str),
}

impl Loose {
    /// The decimal it holds ([`parse_decimal`]); `Ok(None)` for `""` or blank text (absent, as
    /// [`decimal_opt`] treats it), `Err` with a short reason for a wrong type or garbage.
    pub fn decimal(&self) -> Result<Option<Decimal>, String> {
        match self {
            Loose::Text(t) if t.trim().is_empty() => Ok(None),
            Loose::Text(t) => parse_decimal(t).map(Some),
            Loose::Wrong(what) => Err(format!("expected a string or number, got {what}")),
        }
    }
}

struct LooseVisitor;

impl<'de> Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Loose, E> {
        Ok(Loose::Wrong("a bool"))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Loose, E> {
        Ok(Loose::Text(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Loose, E> {
        Ok(Loose::Text(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Loose, E> {
        // Same text as `Scalar::to_text`: shortest round-trip digits, no exponent.
        Ok(Loose::Text(format!("{v}")))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose::Text(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Loose, E> {
        Ok(Loose::Text(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose::Wrong("null"))
    }
    fn visit_none<E: de::Error>(self) -> Result<Loose, E> {
        Ok(Loose::Wrong("null"))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Loose, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Wrong("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Wrong("an object"))
    }
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

/// Why a size or volume cannot be kept: negative, or too large for DECIMAL(18,6) (sums of
/// such values would overflow `Decimal` downstream). `None` when it can be kept.
pub fn size_problem(size: Decimal) -> Option<&'static str> {
    if polytape_core::money::is_valid_size(size) {
        None
    } else if size < Decimal::ZERO {
        Some("negative size")
    } else {
        Some("size too large to store (>= 1e12)")
    }
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar<'de>, D::Error> {
    d.deserialize_any(ScalarVisitor)
}

/// `true` when a scalar means "no value": null or an empty / blank string.
fn is_absent(s: &Scalar<'_>) -> bool {
    match s {
        Scalar::Null => true,
        Scalar::Str(t) => t.trim().is_empty(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// Decimals

/// Parses a decimal written as Polymarket writes them: `"0.51"`, `".48"` (no leading zero),
/// `"-0.01"`, `"1e-7"`, and legacy 34-digit values (rounded half-up to
/// [`MAX_SIGNIFICANT_DIGITS`] significant digits instead of failing).
pub fn parse_decimal(s: &str) -> Result<Decimal, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty decimal".into());
    }
    if t.contains(['e', 'E']) {
        return Decimal::from_scientific(t).map_err(|e| format!("bad decimal {t:?}: {e}"));
    }
    let (neg, body) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("not a decimal: {t:?}"));
    }
    // All digits, leading zeros dropped; `scale` digits of them are after the point.
    let mut scale = frac_part.len();
    let mut digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let first = digits.find(|c| c != '0').unwrap_or(digits.len());
    digits.drain(..first);
    if digits.is_empty() {
        return Ok(Decimal::ZERO);
    }
    let mut round_up = false;
    if digits.len() > MAX_SIGNIFICANT_DIGITS {
        // Only digits after the point are dropped: an integer part is never rounded.
        let drop = (digits.len() - MAX_SIGNIFICANT_DIGITS).min(scale);
        if drop > 0 {
            let keep = digits.len() - drop;
            round_up = digits.as_bytes()[keep] >= b'5';
            digits.truncate(keep);
            scale -= drop;
        }
    }
    let mut mantissa: i128 = digits
        .parse()
        .map_err(|_| format!("decimal out of range: {t:?}"))?;
    if round_up {
        mantissa += 1;
    }
    if neg {
        mantissa = -mantissa;
    }
    let scale = u32::try_from(scale).map_err(|_| format!("decimal out of range: {t:?}"))?;
    Decimal::try_from_i128_with_scale(mantissa, scale)
        .map(|d| d.normalize())
        .map_err(|_| format!("decimal out of range: {t:?}"))
}

fn scalar_to_decimal(s: &Scalar<'_>) -> Result<Option<Decimal>, String> {
    if is_absent(s) {
        return Ok(None);
    }
    match s {
        Scalar::Bool(b) => Err(format!("expected a decimal, got bool {b}")),
        Scalar::F64(f) if !f.is_finite() => Err(format!("not a finite number: {f}")),
        other => match other.to_text() {
            Some(t) => parse_decimal(&t).map(Some),
            None => Ok(None),
        },
    }
}

/// `Option<Decimal>` from a string or a number; null and `""` are `None`.
pub fn decimal_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    let s = scalar(d)?;
    scalar_to_decimal(&s).map_err(de::Error::custom)
}

/// `Decimal` from a string or a number; absent values are an error.
pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    decimal_opt(d)?.ok_or_else(|| de::Error::custom("missing decimal"))
}

/// `Option<f64>` from a string or a number (ratios such as `competitive`).
pub fn f64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let s = scalar(d)?;
    if is_absent(&s) {
        return Ok(None);
    }
    let v = match s {
        Scalar::I64(i) => i as f64,
        Scalar::U64(u) => u as f64,
        Scalar::F64(f) => f,
        Scalar::Str(t) => t
            .trim()
            .parse::<f64>()
            .map_err(|_| de::Error::custom(format!("not a number: {t:?}")))?,
        Scalar::Bool(_) | Scalar::Null => {
            return Err(de::Error::custom("expected a number"));
        }
    };
    if v.is_finite() {
        Ok(Some(v))
    } else {
        Err(de::Error::custom(format!("not a finite number: {v}")))
    }
}

/// `Option<u32>` from a string or a non-negative integer.
pub fn u32_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let s = scalar(d)?;
    if is_absent(&s) {
        return Ok(None);
    }
    let v = match &s {
        Scalar::I64(i) => u32::try_from(*i).ok(),
        Scalar::U64(u) => u32::try_from(*u).ok(),
        Scalar::F64(f) if f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64 => Some(*f as u32),
        Scalar::Str(t) => t.trim().parse::<u32>().ok(),
        _ => None,
    };
    v.map(Some)
        .ok_or_else(|| de::Error::custom(format!("expected a small integer, got {s:?}")))
}

// ---------------------------------------------------------------------------------------------
// Strings and booleans

/// `Option<String>` from a string or a number (ids are `"1557558"` on one endpoint, `1427074`
/// on another). Null is `None`; `""` stays `Some("")` (callers decide what empty means).
pub fn string_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = scalar(d)?;
    match s {
        Scalar::Null => Ok(None),
        Scalar::Bool(_) => Err(de::Error::custom("expected a string, got bool")),
        Scalar::Str(t) => Ok(Some(t.into_owned())),
        other => Ok(other.to_text().map(Cow::into_owned)),
    }
}

/// `Option<bool>` from a bool or the strings `"true"` / `"false"`.
pub fn bool_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    let s = scalar(d)?;
    match &s {
        Scalar::Null => Ok(None),
        Scalar::Bool(b) => Ok(Some(*b)),
        Scalar::Str(t) if t.trim().is_empty() => Ok(None),
        Scalar::Str(t) if t.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Scalar::Str(t) if t.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Scalar::I64(0) | Scalar::U64(0) => Ok(Some(false)),
        Scalar::I64(1) | Scalar::U64(1) => Ok(Some(true)),
        other => Err(de::Error::custom(format!("expected a bool, got {other:?}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Arrays that may be JSON encoded in a string

struct StringArrayVisitor;

impl<'de> Visitor<'de> for StringArrayVisitor {
    type Value = Option<Vec<String>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array, or a string holding a JSON array")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_string_array(v).map(Some).map_err(E::custom)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(2));
        while let Some(s) = seq.next_element::<Scalar<'de>>()? {
            out.push(scalar_element_text(&s).map_err(de::Error::custom)?);
        }
        Ok(Some(out))
    }
}

fn scalar_element_text(s: &Scalar<'_>) -> Result<String, String> {
    match s {
        Scalar::Null => Ok(String::new()),
        Scalar::Bool(b) => Err(format!("unexpected bool {b} in array")),
        other => Ok(other.to_text().map(Cow::into_owned).unwrap_or_default()),
    }
}

/// Parses a JSON array written inside a string (`"[\"Yes\", \"No\"]"`) into its elements as
/// text. `""` is the empty array (Gamma sends it while a market's CLOB side is hydrating).
pub fn parse_string_array(v: &str) -> Result<Vec<String>, String> {
    let t = v.trim();
    if t.is_empty() {
        return Ok(Vec::new());
    }
    let items: Vec<Scalar<'_>> =
        serde_json::from_str(t).map_err(|e| format!("not a JSON array in a string: {e}"))?;
    items.iter().map(scalar_element_text).collect()
}

/// `Option<Vec<String>>` from a real JSON array or a string holding one (`outcomes`,
/// `clobTokenIds`, `umaResolutionStatuses`). Elements may be strings or numbers.
pub fn string_array_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    d.deserialize_any(StringArrayVisitor)
}

/// `Option<Vec<Decimal>>` like [`string_array_opt`], each element a tolerant decimal
/// (`outcomePrices`, including legacy 34-digit values).
pub fn decimal_array_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<Decimal>>, D::Error> {
    let Some(items) = string_array_opt(d)? else {
        return Ok(None);
    };
    items
        .iter()
        .map(|s| parse_decimal(s))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
        .map_err(de::Error::custom)
}

// ---------------------------------------------------------------------------------------------
// Timestamps

/// Parses the textual timestamps Polymarket uses:
/// RFC 3339 with 0–9 fractional digits (`2026-03-11T09:29:01.328428Z`), Postgres-style
/// `2026-03-19 23:20:15+00` (`closedTime`, `gameStartTime`; optionally with fractions or a
/// `+hh:mm` offset), and plain dates `YYYY-MM-DD` (midnight UTC).
pub fn parse_ts(s: &str) -> Result<Ts, String> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    if t.len() == 10 {
        if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
            if let Some(dt) = d.and_hms_opt(0, 0, 0) {
                return Ok(Utc.from_utc_datetime(&dt));
            }
        }
    }
    // "YYYY-MM-DD HH:MM:SS[.fff]+00" (or no offset at all): make it RFC 3339 and try again.
    if t.len() >= 19 && t.is_ascii() {
        let mut fixed = String::with_capacity(t.len() + 4);
        fixed.push_str(&t[..10]);
        fixed.push('T');
        fixed.push_str(&t[11..]);
        let b = fixed.as_bytes();
        let n = b.len();
        // A bare "+hh" / "-hh" offset lacks its minutes.
        if n >= 3 && (b[n - 3] == b'+' || b[n - 3] == b'-') && b[n - 2].is_ascii_digit() {
            fixed.push_str(":00");
        }
        // No offset at all: the wire means UTC.
        if let Ok(d) = DateTime::parse_from_rfc3339(&fixed) {
            return Ok(d.with_timezone(&Utc));
        }
        if let Ok(d) = DateTime::parse_from_rfc3339(&format!("{fixed}Z")) {
            return Ok(d.with_timezone(&Utc));
        }
    }
    Err(format!("unrecognised timestamp {t:?}"))
}

/// The instant `ms` milliseconds after the Unix epoch.
pub fn ts_from_ms(ms: i64) -> Option<Ts> {
    Utc.timestamp_millis_opt(ms).single()
}

/// The instant `s` seconds after the Unix epoch.
pub fn ts_from_secs(s: i64) -> Option<Ts> {
    Utc.timestamp_opt(s, 0).single()
}

fn scalar_integer(s: &Scalar<'_>) -> Result<i64, String> {
    match s {
        Scalar::I64(i) => Ok(*i),
        Scalar::U64(u) => i64::try_from(*u).map_err(|_| format!("integer out of range: {u}")),
        Scalar::F64(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(f.round() as i64),
        Scalar::Str(t) => t
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("not an integer: {t:?}")),
        other => Err(format!("expected an integer, got {other:?}")),
    }
}

/// Optional textual timestamp ([`parse_ts`]); null and `""` are `None`.
pub fn ts_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ts>, D::Error> {
    let s = scalar(d)?;
    if is_absent(&s) {
        return Ok(None);
    }
    match &s {
        Scalar::Str(t) => parse_ts(t).map(Some).map_err(de::Error::custom),
        other => Err(de::Error::custom(format!(
            "expected a timestamp string, got {other:?}"
        ))),
    }
}

/// Optional epoch-milliseconds timestamp as a string or a number (CLOB and WebSocket
/// `timestamp`: `"1728799418260"`).
pub fn ts_ms_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ts>, D::Error> {
    let s = scalar(d)?;
    if is_absent(&s) {
        return Ok(None);
    }
    let ms = scalar_integer(&s).map_err(de::Error::custom)?;
    ts_from_ms(ms)
        .map(Some)
        .ok_or_else(|| de::Error::custom(format!("timestamp out of range: {ms} ms")))
}

/// Optional epoch-SECONDS timestamp as an integer or a string (Data API `timestamp`).
pub fn ts_secs_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ts>, D::Error> {
    let s = scalar(d)?;
    if is_absent(&s) {
        return Ok(None);
    }
    let secs = scalar_integer(&s).map_err(de::Error::custom)?;
    ts_from_secs(secs)
        .map(Some)
        .ok_or_else(|| de::Error::custom(format!("timestamp out of range: {secs} s")))
}

// ---------------------------------------------------------------------------------------------
// Records, one at a time, tolerant of drifting fields

/// A record type decoded one record at a time by [`decode_record`]: every field optional
/// (`#[serde(default)]`), so a field can be taken out and the record still decodes.
///
/// A field that fails to decode (Polymarket changed its type) is read as absent and reported
/// as a [`Drift`]; only a failure in one of [`Record::ESSENTIAL`] rejects the record. Whether
/// an *absent* essential field rejects it is up to the decoder (a book without `asset_id` is
/// rejected by [`crate::clob::decode_book`]; a Gamma market without `conditionId` is kept for
/// discovery to filter out).
pub trait Record: DeserializeOwned {
    /// What the record is, in [`Rejected::what`] and [`Drift::what`]: `"gamma market"`.
    const WHAT: &'static str;
    /// Wire names of the fields that identify a record in reports, tried in order (the first
    /// that is a non-empty string or a number is the key).
    const KEY: &'static [&'static str];
    /// Wire names of the fields without which a record cannot be used: a failure to decode
    /// one of them rejects the record instead of reading it as absent.
    const ESSENTIAL: &'static [&'static str];
}

/// Decodes one record of type `T` from its own JSON value, tolerating drift: a field that
/// fails to decode is taken out (read as absent, `None`) and reported as a [`Drift`], and the
/// record is decoded again, until it decodes. It is rejected when it is not an object, when an
/// [essential](Record::ESSENTIAL) field is the one that fails, or when the failure cannot be
/// pinned on one field; the reason then names the field when it can, e.g.
/// ``field `conditionId`: invalid type: map, expected a string or number``.
///
/// A record that decodes costs one deserialization; the search for failing fields (each field
/// decoded alone) only runs on the error path.
pub fn decode_record<T: Record>(v: &Value) -> Result<(T, Vec<Drift>), Rejected> {
    match T::deserialize(v) {
        Ok(t) => Ok((t, Vec::new())),
        Err(e) => decode_drifted(v.clone(), e),
    }
}

/// [`decode_record`] from the record's JSON text (the WebSocket hot path: a record that
/// decodes is read straight from the text, without building a [`Value`]).
pub fn decode_record_str<T: Record>(text: &str) -> Result<(T, Vec<Drift>), Rejected> {
    match serde_json::from_str::<T>(text) {
        Ok(t) => Ok((t, Vec::new())),
        Err(e) => match serde_json::from_str::<Value>(text) {
            Ok(v) => decode_drifted(v, e),
            // Not JSON at all: nothing to key it by.
            Err(_) => Err(Rejected::new(T::WHAT, None, e.to_string())),
        },
    }
}

/// The error path of [`decode_record`]: takes failing fields out of `v` one by one.
fn decode_drifted<T: Record>(
    mut v: Value,
    first: serde_json::Error,
) -> Result<(T, Vec<Drift>), Rejected> {
    let key = record_key::<T>(&v);
    let reject = |reason: String| Rejected::new(T::WHAT, key.clone(), reason);
    let mut drifts = Vec::new();
    let mut err = first;
    loop {
        let Some((field, reason)) = culprit_field::<T>(&v) else {
            return Err(reject(err.to_string()));
        };
        if T::ESSENTIAL.contains(&field.as_str()) {
            return Err(reject(format!("field `{field}`: {reason}")));
        }
        if let Some(obj) = v.as_object_mut() {
            obj.remove(&field);
        }
        drifts.push(Drift {
            what: T::WHAT,
            key: key.clone(),
            field,
            reason,
        });
        match T::deserialize(&v) {
            Ok(t) => return Ok((t, drifts)),
            Err(e) => err = e,
        }
    }
}

/// The key of a record for reports: the first of `T::KEY` that is a non-empty string or a
/// number.
pub fn record_key<T: Record>(v: &Value) -> Option<String> {
    T::KEY.iter().find_map(|name| match v.get(*name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The first field of `v` that fails to decode as `T` when it is the only field (error path
/// only, so the cost of trying each field does not matter).
fn culprit_field<T: DeserializeOwned>(v: &Value) -> Option<(String, String)> {
    let obj = v.as_object()?;
    for (k, val) in obj {
        let mut one = serde_json::Map::new();
        one.insert(k.clone(), val.clone());
        if let Err(e) = T::deserialize(&Value::Object(one)) {
            let msg = e.to_string();
            // A required field missing from the one-field object is not this field's fault.
            if !msg.starts_with("missing field") {
                return Some((k.clone(), msg));
            }
        }
    }
    None
}

/// The records of one response: the kept ones, the rejected ones and the drifts of the kept
/// ones.
#[derive(Debug)]
pub struct Records<T> {
    pub items: Vec<T>,
    pub rejected: Vec<Rejected>,
    pub drifts: Vec<Drift>,
}

impl<T> Default for Records<T> {
    fn default() -> Self {
        Records {
            items: Vec::new(),
            rejected: Vec::new(),
            drifts: Vec::new(),
        }
    }
}

/// Decodes each value with [`decode_record`].
pub fn decode_records<T: Record>(values: &[Value]) -> Records<T> {
    let mut out = Records {
        items: Vec::with_capacity(values.len()),
        ..Records::default()
    };
    for v in values {
        match decode_record::<T>(v) {
            Ok((t, drifts)) => {
                out.items.push(t);
                out.drifts.extend(drifts);
            }
            Err(r) => out.rejected.push(r),
        }
    }
    out
}

/// The text of string field `name` of a JSON object, when present and not empty.
pub fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[derive(Deserialize, Debug, Default)]
    #[serde(default)]
    struct Probe {
        #[serde(deserialize_with = "decimal_opt")]
        dec: Option<Decimal>,
        #[serde(deserialize_with = "f64_opt")]
        f: Option<f64>,
        #[serde(deserialize_with = "string_array_opt")]
        arr: Option<Vec<String>>,
        #[serde(deserialize_with = "decimal_array_opt")]
        prices: Option<Vec<Decimal>>,
        #[serde(deserialize_with = "ts_opt")]
        ts: Option<Ts>,
        #[serde(deserialize_with = "ts_ms_opt")]
        ms: Option<Ts>,
        #[serde(deserialize_with = "ts_secs_opt")]
        secs: Option<Ts>,
        #[serde(deserialize_with = "string_opt")]
        id: Option<String>,
        #[serde(deserialize_with = "bool_opt")]
        flag: Option<bool>,
    }

    impl Record for Probe {
        const WHAT: &'static str = "probe";
        const KEY: &'static [&'static str] = &["id"];
        const ESSENTIAL: &'static [&'static str] = &["dec"];
    }

    #[test]
    fn given_fields_of_the_wrong_type_when_decoded_then_each_is_none_and_a_drift_and_the_rest_kept()
    {
        let v = json!({
            "id": 1557558, "dec": "0.5", "ts": "yesterday", "flag": true,
            "f": true, "arr": {"not": "an array"}, "secs": 1729000180, "unknown": [1]
        });
        let (p, drifts) = decode_record::<Probe>(&v).unwrap();
        assert_eq!(p.dec, Some(d("0.5")));
        assert_eq!(p.flag, Some(true));
        assert_eq!(p.id.as_deref(), Some("1557558"));
        assert!(p.secs.is_some());
        assert_eq!((p.ts, p.f, p.arr), (None, None, None));
        let mut fields: Vec<&str> = drifts.iter().map(|d| d.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["arr", "f", "ts"], "each failing field once");
        assert!(drifts
            .iter()
            .all(|d| d.what == "probe" && d.key.as_deref() == Some("1557558")));
        let ts = drifts.iter().find(|d| d.field == "ts").unwrap();
        assert!(ts.reason.contains("yesterday"), "{}", ts.reason);
        assert_eq!(ts.stat_key(), "probe.ts");
        let (clean, none) = decode_record::<Probe>(&json!({"dec": 1})).unwrap();
        assert!(none.is_empty());
        assert_eq!(clean.dec, Some(Decimal::ONE));
    }

    #[test]
    fn given_an_essential_field_of_the_wrong_type_when_decoded_then_the_record_is_rejected() {
        let r = decode_record::<Probe>(&json!({"id": "7", "ts": "yesterday", "dec": true}))
            .unwrap_err();
        assert_eq!((r.what, r.key.as_deref()), ("probe", Some("7")));
        assert!(r.reason.starts_with("field `dec`"), "{}", r.reason);
        let r = decode_record::<Probe>(&json!(["not", "an", "object"])).unwrap_err();
        assert_eq!(r.key, None);
        let r = decode_record_str::<Probe>("{\"dec\": ").unwrap_err();
        assert_eq!(r.what, "probe");
    }

    #[test]
    fn given_record_text_when_decoded_from_str_then_the_same_as_from_a_value() {
        let v = json!({"id": "x", "dec": "0.25", "ms": {"oops": 1}, "flag": "maybe"});
        let (a, da) = decode_record::<Probe>(&v).unwrap();
        let (b, db) = decode_record_str::<Probe>(&v.to_string()).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(da, db);
        assert_eq!(da.len(), 2);
    }

    fn probe(v: serde_json::Value) -> Result<Probe, serde_json::Error> {
        Probe::deserialize(&v)
    }

    #[test]
    fn given_a_decimal_as_string_number_or_int_when_decoded_then_all_give_the_same_value() {
        assert_eq!(probe(json!({"dec": "9.99"})).unwrap().dec, Some(d("9.99")));
        assert_eq!(probe(json!({"dec": 9.99})).unwrap().dec, Some(d("9.99")));
        assert_eq!(probe(json!({"dec": 0})).unwrap().dec, Some(Decimal::ZERO));
        assert_eq!(probe(json!({"dec": 1})).unwrap().dec, Some(Decimal::ONE));
        assert_eq!(probe(json!({"dec": ".48"})).unwrap().dec, Some(d("0.48")));
        assert_eq!(probe(json!({"dec": ""})).unwrap().dec, None);
        assert_eq!(probe(json!({"dec": null})).unwrap().dec, None);
        assert_eq!(probe(json!({})).unwrap().dec, None);
    }

    #[test]
    fn given_a_34_digit_decimal_when_parsed_then_it_is_rounded_to_18_significant_digits() {
        assert_eq!(
            parse_decimal("0.5843311669077693146635445446077281").unwrap(),
            d("0.584331166907769315")
        );
        assert_eq!(
            parse_decimal("0.4156688330922306853364554553922719").unwrap(),
            d("0.415668833092230685")
        );
        // Integer digits are never rounded away.
        assert_eq!(
            parse_decimal("12232699.615479222123456").unwrap(),
            d("12232699.6154792221")
        );
        assert_eq!(parse_decimal("-0.01").unwrap(), d("-0.01"));
        assert_eq!(parse_decimal("1e-7").unwrap(), d("0.0000001"));
        assert_eq!(parse_decimal("0000").unwrap(), Decimal::ZERO);
    }

    #[test]
    fn given_garbage_when_parsing_a_decimal_then_the_reason_names_the_value() {
        assert!(parse_decimal("not a number")
            .unwrap_err()
            .contains("not a number"));
        assert!(parse_decimal("1.2.3").is_err());
        assert!(parse_decimal(".").is_err());
        assert!(parse_decimal("-").is_err());
        assert!(parse_decimal("99999999999999999999999999999999999999999").is_err());
        let e = probe(json!({"dec": {"oops": 1}})).unwrap_err().to_string();
        assert!(e.contains("string or number"), "{e}");
        assert!(probe(json!({"dec": true})).is_err());
    }

    #[test]
    fn given_f64_as_string_or_int_when_decoded_then_it_is_a_float() {
        assert_eq!(probe(json!({"f": "0.25"})).unwrap().f, Some(0.25));
        assert_eq!(probe(json!({"f": 0})).unwrap().f, Some(0.0));
        assert_eq!(
            probe(json!({"f": 0.9999750006249843})).unwrap().f,
            Some(0.9999750006249843)
        );
        assert!(probe(json!({"f": "abc"})).is_err());
    }

    #[test]
    fn given_arrays_in_strings_or_real_arrays_when_decoded_then_both_give_the_elements() {
        let p = probe(json!({"arr": "[\"Yes\", \"No\"]"})).unwrap();
        assert_eq!(p.arr, Some(vec!["Yes".to_string(), "No".to_string()]));
        let p = probe(json!({"arr": ["Yes", "No"]})).unwrap();
        assert_eq!(p.arr, Some(vec!["Yes".to_string(), "No".to_string()]));
        assert_eq!(probe(json!({"arr": ""})).unwrap().arr, Some(vec![]));
        assert_eq!(probe(json!({"arr": "[]"})).unwrap().arr, Some(vec![]));
        assert_eq!(probe(json!({"arr": null})).unwrap().arr, None);
        assert!(probe(json!({"arr": "[\"unterminated"})).is_err());
        let p = probe(json!({"prices": "[\"0.505\", \"0.495\"]"})).unwrap();
        assert_eq!(p.prices, Some(vec![d("0.505"), d("0.495")]));
        let p = probe(json!({"prices": [0.5, "0.5"]})).unwrap();
        assert_eq!(p.prices, Some(vec![d("0.5"), d("0.5")]));
        assert!(probe(json!({"prices": "[\"x\"]"})).is_err());
    }

    #[test]
    fn given_every_timestamp_shape_when_parsed_then_each_gives_the_utc_instant() {
        let at = |s: &str| -> Ts { s.parse().unwrap() };
        assert_eq!(
            parse_ts("2026-03-12T09:25:00Z").unwrap(),
            at("2026-03-12T09:25:00Z")
        );
        assert_eq!(
            parse_ts("2026-03-11T09:29:01.328428Z").unwrap(),
            at("2026-03-11T09:29:01.328428Z")
        );
        assert_eq!(
            parse_ts("2026-04-01T18:24:05.41Z").unwrap(),
            at("2026-04-01T18:24:05.410Z")
        );
        assert_eq!(
            parse_ts("2026-03-19 23:20:15+00").unwrap(),
            at("2026-03-19T23:20:15Z")
        );
        assert_eq!(
            parse_ts("2024-03-07 20:44:01.258+00").unwrap(),
            at("2024-03-07T20:44:01.258Z")
        );
        assert_eq!(
            parse_ts("2026-03-19 23:20:15+02:00").unwrap(),
            at("2026-03-19T21:20:15Z")
        );
        assert_eq!(parse_ts("2026-03-12").unwrap(), at("2026-03-12T00:00:00Z"));
        assert_eq!(
            parse_ts("2026-03-12T09:25:00").unwrap(),
            at("2026-03-12T09:25:00Z")
        );
        assert!(parse_ts("yesterday").is_err());
        assert!(parse_ts("2026-13-45").is_err());
    }

    #[test]
    fn given_ms_strings_and_epoch_seconds_when_decoded_then_units_are_respected() {
        let p = probe(json!({"ms": "1728799418260", "secs": 1729000180})).unwrap();
        assert_eq!(
            p.ms.unwrap(),
            "2024-10-13T06:03:38.260Z".parse::<Ts>().unwrap()
        );
        assert_eq!(
            p.secs.unwrap(),
            "2024-10-15T13:49:40Z".parse::<Ts>().unwrap()
        );
        assert_eq!(probe(json!({"ms": 1728799418260u64})).unwrap().ms, p.ms);
        assert!(probe(json!({"ms": "soon"})).is_err());
        assert!(probe(json!({"ts": 12})).is_err());
        assert_eq!(probe(json!({"ts": ""})).unwrap().ts, None);
    }

    #[test]
    fn given_ids_and_flags_in_either_type_when_decoded_then_they_are_normalised() {
        let p = probe(json!({"id": 1427074, "flag": "true"})).unwrap();
        assert_eq!(p.id.as_deref(), Some("1427074"));
        assert_eq!(p.flag, Some(true));
        assert_eq!(
            probe(json!({"id": "1557558"})).unwrap().id.as_deref(),
            Some("1557558")
        );
        assert!(probe(json!({"flag": "maybe"})).is_err());
    }
}
