//! Query strings as the real services read them: repeated keys kept in order (`condition_ids=a&
//! condition_ids=b`), percent-decoding, ISO-8601 date parameters, and the opaque keyset cursor.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::SimError;

/// Decoded query pairs in order of appearance.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string (without the `?`).
    pub fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (decode(k), decode(v)),
                None => (decode(p), String::new()),
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether `key` appears at all.
    pub fn has(&self, key: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == key)
    }

    /// An unsigned integer parameter; absent or empty → `None`, garbage → 400.
    pub fn uint(&self, key: &str) -> Result<Option<u64>, SimError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| SimError::BadRequest(format!("invalid value for {key}: {v:?}"))),
        }
    }

    /// A signed integer parameter; absent or empty → `None`, garbage → 400.
    pub fn int(&self, key: &str) -> Result<Option<i64>, SimError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| SimError::BadRequest(format!("invalid value for {key}: {v:?}"))),
        }
    }

    /// A boolean parameter (`true`/`false`, any case); garbage → 400.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, SimError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(SimError::BadRequest(format!(
                "invalid value for {key}: {v:?}"
            ))),
        }
    }

    /// An ISO-8601 date-time parameter; garbage → 400.
    pub fn date(&self, key: &str) -> Result<Option<DateTime<Utc>>, SimError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => parse_iso(v)
                .map(Some)
                .ok_or_else(|| SimError::BadRequest(format!("invalid date for {key}: {v:?}"))),
        }
    }
}

/// Percent-decoding with `+` as space (form encoding), tolerant of stray `%`.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// ISO-8601 as Gamma accepts it: RFC 3339, a naive date-time (UTC), or a bare date (midnight UTC).
pub(crate) fn parse_iso(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// The opaque keyset cursor: URL-safe base64 (no padding) of `"<kind>:<last id>"`, then, when
/// shorter than `min_len` bytes, `.` and `p`s up to `min_len` (`.` is not base64, so
/// [`decode_cursor`] knows where the padding starts).
pub(crate) fn encode_cursor(kind: &str, last_id: u64, min_len: usize) -> String {
    let text = format!("{kind}:{last_id}");
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for k in 0..chars {
            out.push(char::from(B64[((n >> (18 - 6 * k)) & 63) as usize]));
        }
    }
    if out.len() < min_len {
        out.push('.');
        while out.len() < min_len {
            out.push('p');
        }
    }
    out
}

/// Where a keyset page of `kind` starts: `None` for the first page, else the id after which it
/// continues. Keyset endpoints refuse `offset` (400), as Polymarket's do.
pub(crate) fn keyset_after(q: &Query, kind: &str) -> Result<Option<u64>, SimError> {
    if q.has("offset") {
        return Err(SimError::BadRequest(
            "offset is not supported by keyset pagination; use after_cursor".into(),
        ));
    }
    match q.get("after_cursor") {
        None | Some("") => Ok(None),
        Some(c) => decode_cursor(kind, c).map(Some),
    }
}

/// Decodes a cursor made by [`encode_cursor`] for `kind`; anything else → 400.
pub(crate) fn decode_cursor(kind: &str, cursor: &str) -> Result<u64, SimError> {
    let bad = || SimError::BadRequest(format!("invalid after_cursor: {cursor:?}"));
    let cursor = cursor.split_once('.').map_or(cursor, |(c, _)| c);
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut bytes = Vec::with_capacity(cursor.len());
    for c in cursor.bytes() {
        let v = B64.iter().position(|&x| x == c).ok_or_else(bad)? as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push(((bits >> nbits) & 0xFF) as u8);
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (k, id) = text.split_once(':').ok_or_else(bad)?;
    if k != kind {
        return Err(bad());
    }
    id.parse::<u64>().map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_repeated_and_encoded_keys_when_parsed_then_all_values_in_order() {
        let q = Query::parse(Some(
            "condition_ids=0xa&condition_ids=0xb&end_date_min=2026-03-01T00%3A00%3A00%2B00%3A00&x",
        ));
        assert_eq!(q.all("condition_ids"), vec!["0xa", "0xb"]);
        assert_eq!(q.get("end_date_min"), Some("2026-03-01T00:00:00+00:00"));
        assert!(q.has("x"));
        assert_eq!(
            q.date("end_date_min").ok().flatten().map(|d| d.timestamp()),
            Some(1_772_323_200)
        );
    }

    #[test]
    fn given_cursor_when_round_tripped_then_same_id_and_garbage_is_rejected() {
        for id in [0u64, 7, 540_123, u64::MAX] {
            let c = encode_cursor("m", id, 0);
            assert_eq!(decode_cursor("m", &c), Ok(id));
            assert!(decode_cursor("e", &c).is_err());
            let long = encode_cursor("m", id, 9_000);
            assert_eq!(long.len(), 9_000);
            assert_eq!(decode_cursor("m", &long), Ok(id), "padding is ignored");
        }
        assert!(decode_cursor("m", "not a cursor!").is_err());
    }

    #[test]
    fn given_date_forms_when_parsed_then_utc_instants() {
        assert!(parse_iso("2026-03-11T09:29:01.328428Z").is_some());
        assert!(parse_iso("2026-03-11T09:29:01").is_some());
        assert_eq!(
            parse_iso("2026-03-11").map(|d| d.to_rfc3339()),
            Some("2026-03-11T00:00:00+00:00".to_string())
        );
        assert!(parse_iso("yesterday").is_none());
    }
}
