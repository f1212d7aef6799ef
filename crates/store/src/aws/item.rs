//! DynamoDB attribute values to and from domain values: timestamps are epoch milliseconds
//! (`N`), decimals their exact string (`S`), tiers their number (`N`). Reading an item we
//! wrote can still fail (a hand edit, an older layout): the error names the item and the
//! attribute.

use crate::error::{Result, StoreError};
use aws_sdk_dynamodb::types::AttributeValue;
use polytape_core::{Tier, Ts};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::fmt::Display;
use std::str::FromStr;

/// One DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn n(v: impl Display) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// A timestamp as epoch milliseconds.
pub(crate) fn ms(t: Ts) -> AttributeValue {
    n(t.timestamp_millis())
}

/// Builds an item attribute by attribute, leaving out absent optional values (DynamoDB has
/// no use for a stored NULL and the reader treats a missing attribute as `None`).
#[derive(Default)]
pub(crate) struct ItemBuilder(Item);

impl ItemBuilder {
    pub fn set(mut self, name: &str, v: AttributeValue) -> Self {
        self.0.insert(name.to_string(), v);
        self
    }

    pub fn opt(self, name: &str, v: Option<AttributeValue>) -> Self {
        match v {
            Some(v) => self.set(name, v),
            None => self,
        }
    }

    pub fn build(self) -> Item {
        self.0
    }
}

/// Reads the attributes of one item; `what` names it in errors (`markets item 0xabc…`).
pub(crate) struct Read<'a> {
    pub item: &'a Item,
    pub what: String,
}

impl<'a> Read<'a> {
    pub fn new(item: &'a Item, what: impl Into<String>) -> Self {
        Read {
            item,
            what: what.into(),
        }
    }

    fn bad(&self, name: &str, why: impl Display) -> StoreError {
        StoreError::Encode(format!("{}: attribute {name}: {why}", self.what))
    }

    fn get(&self, name: &str) -> Option<&'a AttributeValue> {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => None,
            Some(v) => Some(v),
        }
    }

    fn req(&self, name: &str) -> Result<&'a AttributeValue> {
        self.get(name).ok_or_else(|| self.bad(name, "missing"))
    }

    pub fn opt_s(&self, name: &str) -> Result<Option<String>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(v)) => Ok(Some(v.clone())),
            Some(other) => Err(self.bad(name, format!("expected S, got {other:?}"))),
        }
    }

    pub fn s(&self, name: &str) -> Result<String> {
        self.opt_s(name)?.ok_or_else(|| self.bad(name, "missing"))
    }

    pub fn opt_n<T: FromStr>(&self, name: &str) -> Result<Option<T>>
    where
        T::Err: Display,
    {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|e| self.bad(name, format!("{v:?}: {e}"))),
            Some(other) => Err(self.bad(name, format!("expected N, got {other:?}"))),
        }
    }

    pub fn n<T: FromStr>(&self, name: &str) -> Result<T>
    where
        T::Err: Display,
    {
        self.opt_n(name)?.ok_or_else(|| self.bad(name, "missing"))
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(AttributeValue::Bool(v)) => Ok(Some(*v)),
            Some(other) => Err(self.bad(name, format!("expected BOOL, got {other:?}"))),
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool> {
        self.opt_bool(name)?
            .ok_or_else(|| self.bad(name, "missing"))
    }

    pub fn opt_ts(&self, name: &str) -> Result<Option<Ts>> {
        self.opt_n::<i64>(name)?
            .map(|v| {
                chrono::DateTime::from_timestamp_millis(v)
                    .ok_or_else(|| self.bad(name, format!("{v} is not a time")))
            })
            .transpose()
    }

    pub fn ts(&self, name: &str) -> Result<Ts> {
        self.opt_ts(name)?.ok_or_else(|| self.bad(name, "missing"))
    }

    pub fn opt_tier(&self, name: &str) -> Result<Option<Tier>> {
        self.opt_n::<u8>(name)?
            .map(|t| Tier::try_from(t).map_err(|e| self.bad(name, e)))
            .transpose()
    }

    pub fn tier(&self, name: &str) -> Result<Tier> {
        self.opt_tier(name)?
            .ok_or_else(|| self.bad(name, "missing"))
    }

    pub fn opt_dec(&self, name: &str) -> Result<Option<Decimal>> {
        self.opt_s(name)?
            .map(|v| Decimal::from_str(&v).map_err(|e| self.bad(name, format!("{v:?}: {e}"))))
            .transpose()
    }

    /// A list of exactly two strings.
    pub fn pair(&self, name: &str) -> Result<[String; 2]> {
        match self.req(name)? {
            AttributeValue::L(list) => match list.as_slice() {
                [AttributeValue::S(a), AttributeValue::S(b)] => Ok([a.clone(), b.clone()]),
                _ => Err(self.bad(name, "expected a list of two strings")),
            },
            other => Err(self.bad(name, format!("expected L, got {other:?}"))),
        }
    }
}

/// A tier as its number.
pub(crate) fn tier(t: Tier) -> AttributeValue {
    n(t.number())
}

/// The list of two strings [`Read::pair`] reads.
pub(crate) fn pair(v: &[String; 2]) -> AttributeValue {
    AttributeValue::L(vec![s(v[0].clone()), s(v[1].clone())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_bad_or_missing_attribute_then_the_error_names_item_and_attribute() {
        let item = ItemBuilder::default()
            .set("tier", n(9))
            .set("at", s("yesterday"))
            .set("ok", n(1_795_212_000_000_i64))
            .build();
        let r = Read::new(&item, "ops item run#20261120/x");
        assert_eq!(
            r.tier("tier").unwrap_err().to_string(),
            "encode: ops item run#20261120/x: attribute tier: unknown tier \"9\" (expected 0-4 or T0-T4)"
        );
        assert!(r.ts("at").unwrap_err().to_string().contains("expected N"));
        assert_eq!(
            r.s("slug").unwrap_err().to_string(),
            "encode: ops item run#20261120/x: attribute slug: missing"
        );
        assert_eq!(
            r.ts("ok").unwrap(),
            "2026-11-20T22:00:00Z".parse::<Ts>().unwrap()
        );
        assert_eq!(r.opt_dec("absent").unwrap(), None);
    }
}
