//! Any polytape Parquet file read back generically, for the status API: its rows as JSON
//! objects (the table browser, a market's recent snapshots), its row count from the footer, and
//! how many values of each column are not NULL per group of rows (data completeness). The
//! values keep their meaning: a timestamp is an RFC 3339 string, money (DECIMAL) is the exact
//! decimal string `rust_decimal` writes everywhere else, a ratio a JSON number (NaN and ±∞ as
//! `null`), lists and structs nest.

use super::read_batches;
use crate::error::{Result, StoreError};
use ::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataPushDecoder};
use ::parquet::DecodeResult;
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Decimal128Type, Decimal64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Int8Type, TimestampMillisecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use rust_decimal::Decimal;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One row: column name → value.
pub type JsonRow = Map<String, Value>;

/// Every row of the Parquet file `bytes`, in file order, as JSON objects.
pub fn rows(bytes: &[u8]) -> Result<Vec<JsonRow>> {
    let mut out = Vec::new();
    for batch in read_batches(bytes)? {
        out.extend(batch_rows(&batch)?);
    }
    Ok(out)
}

/// The rows of one record batch as JSON objects.
pub fn batch_rows(batch: &RecordBatch) -> Result<Vec<JsonRow>> {
    let schema = batch.schema();
    let mut out = Vec::with_capacity(batch.num_rows());
    for i in 0..batch.num_rows() {
        let mut row = Map::new();
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            row.insert(field.name().clone(), value(column.as_ref(), i)?);
        }
        out.push(row);
    }
    Ok(out)
}

/// The number of rows the file's footer declares (no page is decoded; only the footer is
/// copied).
pub fn row_count(bytes: &[u8]) -> Result<u64> {
    row_count_from_tail(bytes.len() as u64, bytes)
}

/// How many bytes at the end of a Parquet file hold its footer (the metadata, its length and
/// the `PAR1` magic), from at least the file's last 8 bytes.
pub fn footer_len(tail: &[u8]) -> Result<u64> {
    let n = tail.len();
    if n < 8 || &tail[n - 4..] != b"PAR1" {
        return Err(StoreError::Encode("parquet: no footer at the end".into()));
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&tail[n - 8..n - 4]);
    Ok(u64::from(u32::from_le_bytes(len)) + 8)
}

/// The number of rows the footer declares, from the last bytes (`tail`, at least
/// [`footer_len`] of them) of a file of `size` bytes: what a ranged read of the end returns.
pub fn row_count_from_tail(size: u64, tail: &[u8]) -> Result<u64> {
    let rows = footer_from_tail(size, tail)?.file_metadata().num_rows();
    u64::try_from(rows).map_err(|_| StoreError::Encode(format!("parquet: {rows} rows")))
}

/// The footer (without page indexes), from the last bytes (`tail`, at least [`footer_len`] of
/// them) of a file of `size` bytes.
pub fn footer_from_tail(size: u64, tail: &[u8]) -> Result<ParquetMetaData> {
    let need = footer_len(tail)?;
    let have = tail.len() as u64;
    if need > have || need > size {
        return Err(StoreError::Encode(format!(
            "parquet: the footer needs the last {need} bytes, {have} were read"
        )));
    }
    let footer = &tail[tail.len() - need as usize..];
    // Only the footer is wanted: the page indexes (before it) are not read.
    let mut meta = ParquetMetaDataPushDecoder::try_new(size)?
        .with_page_index_policy(::parquet::file::metadata::PageIndexPolicy::Skip);
    meta.push_range(size - need..size, footer.to_vec().into())?;
    match meta.try_decode()? {
        DecodeResult::Data(meta) => Ok(meta),
        _ => Err(StoreError::Encode(
            "parquet: the footer is incomplete".into(),
        )),
    }
}

/// Rows and non-NULL values per column of one group of rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NonNull {
    pub rows: u64,
    /// Column name → rows where it is not NULL, in file column order.
    pub columns: Vec<(String, u64)>,
}

impl NonNull {
    /// Adds `other` (same columns) into this group.
    pub fn add(&mut self, other: &NonNull) {
        self.rows += other.rows;
        for (name, n) in &other.columns {
            match self.columns.iter_mut().find(|(c, _)| c == name) {
                Some((_, m)) => *m += n,
                None => self.columns.push((name.clone(), *n)),
            }
        }
    }
}

/// Per value of the string column `group_by` (`None` for its NULLs), the rows and, for every
/// column, the rows where it is not NULL: completeness by category. A file without the column
/// puts every row in the `None` group.
pub fn non_null_by(bytes: &[u8], group_by: &str) -> Result<BTreeMap<Option<String>, NonNull>> {
    Ok(non_null_by_batches(&read_batches(bytes)?, group_by))
}

/// [`non_null_by`] over record batches already read.
pub fn non_null_by_batches(
    batches: &[RecordBatch],
    group_by: &str,
) -> BTreeMap<Option<String>, NonNull> {
    let mut out: BTreeMap<Option<String>, NonNull> = BTreeMap::new();
    for batch in batches {
        let schema = batch.schema();
        let groups: Vec<Option<String>> = match batch.column_by_name(group_by) {
            Some(c) => (0..batch.num_rows())
                .map(|i| match value(c.as_ref(), i) {
                    Ok(Value::String(s)) => Some(s),
                    _ => None,
                })
                .collect(),
            None => vec![None; batch.num_rows()],
        };
        for (field, column) in schema.fields().iter().zip(batch.columns()) {
            let mut counts: BTreeMap<&Option<String>, u64> = BTreeMap::new();
            for (i, g) in groups.iter().enumerate() {
                *counts.entry(g).or_default() += u64::from(column.is_valid(i));
            }
            for g in &groups {
                counts.entry(g).or_default();
            }
            for (g, n) in counts {
                let group = out.entry(g.clone()).or_default();
                match group.columns.iter_mut().find(|(c, _)| c == field.name()) {
                    Some((_, m)) => *m += n,
                    None => group.columns.push((field.name().clone(), n)),
                }
            }
        }
        for g in groups {
            out.entry(g).or_default().rows += 1;
        }
    }
    out
}

/// The value at row `i` of `array` as JSON.
pub fn value(array: &dyn Array, i: usize) -> Result<Value> {
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    let number = |n: f64| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number);
    Ok(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Value::from(array.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => Value::from(array.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => Value::from(array.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => Value::from(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Value::from(array.as_primitive::<UInt8Type>().value(i)),
        DataType::UInt16 => Value::from(array.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt32 => Value::from(array.as_primitive::<UInt32Type>().value(i)),
        DataType::UInt64 => Value::from(array.as_primitive::<UInt64Type>().value(i)),
        DataType::Float32 => number(f64::from(array.as_primitive::<Float32Type>().value(i))),
        DataType::Float64 => number(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(i).to_string()),
        DataType::Decimal64(_, scale) => {
            let m = array.as_primitive::<Decimal64Type>().value(i);
            decimal(i128::from(m), *scale)?
        }
        DataType::Decimal128(_, scale) => {
            let m = array.as_primitive::<Decimal128Type>().value(i);
            decimal(m, *scale)?
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            let ms = array.as_primitive::<TimestampMillisecondType>().value(i);
            let t = chrono::DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| StoreError::Encode(format!("parquet: timestamp {ms} ms")))?;
            serde_json::to_value(t).map_err(|e| StoreError::Encode(e.to_string()))?
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(i);
            Value::Array(
                (0..list.len())
                    .map(|j| value(list.as_ref(), j))
                    .collect::<Result<_>>()?,
            )
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut obj = Map::new();
            for (f, c) in fields.iter().zip(s.columns()) {
                obj.insert(f.name().clone(), value(c.as_ref(), i)?);
            }
            Value::Object(obj)
        }
        other => {
            return Err(StoreError::Encode(format!(
                "parquet: no JSON form for a {other} column"
            )))
        }
    })
}

/// A DECIMAL mantissa and scale as `rust_decimal` writes it: an exact string without trailing
/// zeros (`0.41`, as the other JSON of the status API has it, not the column's `0.410000`).
fn decimal(mantissa: i128, scale: i8) -> Result<Value> {
    let scale = u32::try_from(scale)
        .map_err(|_| StoreError::Encode(format!("parquet: decimal scale {scale}")))?;
    let d = Decimal::try_from_i128_with_scale(mantissa, scale)
        .map_err(|e| StoreError::Encode(format!("parquet: decimal: {e}")))?;
    serde_json::to_value(d.normalize()).map_err(|e| StoreError::Encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parquet::{encode_snapshots, encode_transitions};
    use polytape_core::ops::TierTransition;
    use polytape_core::Tier;

    fn at(s: &str) -> polytape_core::Ts {
        s.parse().expect("a time")
    }

    #[test]
    fn given_transitions_then_rows_read_back_as_json_with_exact_types() {
        let t = TierTransition {
            condition_id: "0xabc".into(),
            from_tier: Some(Tier::T1),
            to_tier: None,
            at: at("2026-11-20T10:00:15.250Z"),
            reason: "closed".into(),
            hours_to_close: Some(1.5),
        };
        let enc = encode_transitions(&[t]).expect("encode");
        let rows = rows(&enc.bytes).expect("rows");
        assert_eq!(
            Value::Object(rows[0].clone()),
            serde_json::json!({
                "condition_id": "0xabc", "at": "2026-11-20T10:00:15.250Z", "from_tier": 1,
                "to_tier": null, "reason": "closed", "hours_to_close": 1.5,
            })
        );
        assert_eq!(row_count(&enc.bytes).expect("count"), 1);
    }

    #[test]
    fn given_snapshots_then_money_is_an_exact_string_and_completeness_groups_by_category() {
        let market = crate::contract::market(1, Some(Tier::T2), true);
        let tick = polytape_core::TickId {
            tier: Tier::T2,
            tick_ts: at("2026-11-20T10:00:00Z"),
        };
        let mut a = polytape_core::Snapshot::build(polytape_core::snapshot::Observation {
            tick,
            fetched_at: tick.tick_ts,
            market: &market,
            quote: None,
            book: None,
            flow: None,
        });
        a.condition_id = "0xa".into();
        a.price = Some(Decimal::new(525, 3));
        a.category = Some("Sports".into());
        let mut b = a.clone();
        b.condition_id = "0xb".into();
        b.price = None;
        let mut c = a.clone();
        c.condition_id = "0xc".into();
        c.category = None;
        let enc = encode_snapshots(&[a, b, c]).expect("encode");
        let rows = rows(&enc.bytes).expect("rows");
        assert_eq!(rows[0]["price"], serde_json::json!("0.525"));
        assert_eq!(rows[1]["price"], Value::Null);
        let groups = non_null_by(&enc.bytes, "category").expect("groups");
        let sports = &groups[&Some("Sports".to_string())];
        let price = |g: &NonNull| g.columns.iter().find(|(c, _)| c == "price").map(|p| p.1);
        assert_eq!((sports.rows, price(sports)), (2, Some(1)));
        assert_eq!(
            (groups[&None].rows, price(&groups[&None])),
            (1, Some(1)),
            "a NULL category is its own group"
        );
    }
}
