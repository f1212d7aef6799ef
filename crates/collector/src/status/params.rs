//! Query parameters, checked against the endpoint's entry in [`super::routes::ROUTES`]: a
//! name the endpoint does not take, a repeated name or a value out of its type or bounds is a
//! `400` that says what was expected.

use super::routes::{Id, Kind, Param, Route};
use super::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::StatusCode;
use polytape_core::Tier;

/// The query string of a request, as name/value pairs.
pub type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// An endpoint's checked parameters.
pub struct Params {
    route: &'static Route,
    values: Vec<(String, String)>,
}

impl Params {
    /// Checks `raw` against the entry of `id`.
    pub fn of(id: Id, raw: RawQuery) -> Result<Params, ApiError> {
        let route = super::routes::route(id);
        let Query(values) = raw.map_err(|e| ApiError::bad(format!("query string: {e}")))?;
        for (i, (name, _)) in values.iter().enumerate() {
            if !route.query.iter().any(|p| p.name == name) {
                let accepted: Vec<&str> = route.query.iter().map(|p| p.name).collect();
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unknown_parameter",
                    format!(
                        "{} takes no parameter {name:?} (it takes: {})",
                        route.path,
                        if accepted.is_empty() {
                            "none".to_string()
                        } else {
                            accepted.join(", ")
                        }
                    ),
                ));
            }
            if values[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::bad(format!("{name}: given more than once")));
            }
        }
        let params = Params { route, values };
        // Every value is checked up front, so a bad one is refused whatever the handler reads.
        for p in route.query {
            params.check(p)?;
        }
        Ok(params)
    }

    fn param(&self, name: &str) -> &Param {
        self.route
            .query
            .iter()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("{} lists no parameter {name}", self.route.path))
    }

    fn raw(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn check(&self, p: &Param) -> Result<(), ApiError> {
        let Some(v) = self.raw(p.name) else {
            return Ok(());
        };
        match p.kind {
            Kind::Int { min, max, .. } => match v.trim().parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(()),
                _ => Err(ApiError::bad(format!(
                    "{}: expected an integer from {min} to {max}, got {v:?}",
                    p.name
                ))),
            },
            Kind::Tier => v.parse::<Tier>().map(|_| ()).map_err(|_| {
                ApiError::bad(format!("{}: expected 0-4 or T0-T4, got {v:?}", p.name))
            }),
            Kind::Text { max_len } => {
                if v.is_empty() || v.chars().count() > max_len {
                    Err(ApiError::bad(format!(
                        "{}: expected 1 to {max_len} characters",
                        p.name
                    )))
                } else {
                    Ok(())
                }
            }
            Kind::Enum { values, .. } => {
                if values.contains(&v) {
                    Ok(())
                } else {
                    Err(ApiError::bad(format!(
                        "{}: expected one of {}, got {v:?}",
                        p.name,
                        values.join(", ")
                    )))
                }
            }
            Kind::Bool => match v {
                "true" | "false" => Ok(()),
                _ => Err(ApiError::bad(format!(
                    "{}: expected true or false, got {v:?}",
                    p.name
                ))),
            },
            Kind::Cursor => {
                if v.is_empty() || v.len() > 512 {
                    Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "bad_cursor",
                        "cursor: not a cursor this API gave",
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// An integer parameter (its default when absent).
    pub fn int(&self, name: &str) -> u64 {
        let Kind::Int { default, .. } = self.param(name).kind else {
            panic!("{name} is not an integer parameter");
        };
        self.raw(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    /// [`Params::int`] as a `usize`.
    pub fn count(&self, name: &str) -> usize {
        usize::try_from(self.int(name)).unwrap_or(usize::MAX)
    }

    /// A tier parameter.
    pub fn tier(&self, name: &str) -> Option<Tier> {
        self.raw(name).and_then(|v| v.parse().ok())
    }

    /// The tiers asked for: the one named by `tier`, else all.
    pub fn tiers(&self) -> Vec<Tier> {
        match self.tier("tier") {
            Some(t) => vec![t],
            None => Tier::ALL.to_vec(),
        }
    }

    /// A text parameter.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.raw(name)
    }

    /// An enumerated parameter (its default when absent; `None` when it has none).
    pub fn choice(&self, name: &str) -> Option<&str> {
        let Kind::Enum { default, .. } = self.param(name).kind else {
            panic!("{name} is not an enumerated parameter");
        };
        self.raw(name).or((!default.is_empty()).then_some(default))
    }

    /// The cursor, decoded by `decode` (a value it refuses is `400 bad_cursor`).
    pub fn cursor<T>(&self, decode: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ApiError> {
        match self.raw("cursor") {
            None => Ok(None),
            Some(v) => decode(v).map(Some).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_cursor",
                    "cursor: not a cursor this API gave",
                )
            }),
        }
    }
}

/// A page of `items` from `offset`: the page and the cursor of the next one.
pub fn page<T: Clone>(items: &[T], offset: usize, limit: usize) -> (Vec<T>, Option<String>) {
    let end = offset.saturating_add(limit).min(items.len());
    let page = items.get(offset.min(end)..end).unwrap_or_default().to_vec();
    let next = (end < items.len()).then(|| format!("o{end}"));
    (page, next)
}

/// `k<hex of the last item's sort key>`: where a [`page_after`] goes on.
pub fn key_cursor(v: &str) -> Option<String> {
    from_hex_cursor(v.strip_prefix('k')?)
}

/// A page of `items` (sorted by `key` descending, keys unique) after the item whose key is
/// `after`: the page and the cursor of the next one. Unlike an offset, the cursor stays on its
/// item however many newer ones arrive between the calls: nothing is served twice or skipped.
pub fn page_after<T: Clone>(
    items: &[T],
    key: impl Fn(&T) -> String,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let start = after.map_or(0, |a| items.partition_point(|t| key(t).as_str() >= a));
    let end = start.saturating_add(limit).min(items.len());
    let page = items[start..end].to_vec();
    let next = (end < items.len())
        .then(|| page.last().map(|t| format!("k{}", hex_cursor(&key(t)))))
        .flatten();
    (page, next)
}

/// `text` as a cursor that needs no escaping in a URL: its bytes in hex.
pub fn hex_cursor(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The text of a [`hex_cursor`].
pub fn from_hex_cursor(v: &str) -> Option<String> {
    if !v.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..v.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(v.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}
