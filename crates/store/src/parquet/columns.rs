//! One table per file kind says, for every column in order, its name, its Athena type and how
//! to read it from a row; the Arrow schema, the Glue column list and the encoder all derive from
//! that table, so they cannot drift apart. A decoder checks a file against the same table
//! ([`Rows`]) before it reads a value.

use super::Column;
use crate::error::Result;
use arrow_array::builder::{
    BooleanBuilder, Decimal64Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder,
    Int8Builder, OffsetBufferBuilder, StringBuilder,
};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Decimal64Array, Float64Array, Int32Array, Int64Array, Int8Array,
    ListArray, RecordBatch, StringArray, StructArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, FieldRef, Fields, TimeUnit};
use polytape_core::money::{from_mantissa, to_mantissa, MAX_MANTISSA, PRECISION, SCALE};
use polytape_core::{Level, Ts};
use rust_decimal::Decimal;
use std::sync::{Arc, OnceLock};

/// How to read one column's value from a row of type `R`, and so its type.
pub(crate) enum Get<R> {
    /// Required timestamp → `timestamp`.
    Ts(fn(&R) -> Ts),
    /// Optional timestamp → `timestamp`.
    OptTs(fn(&R) -> Option<Ts>),
    /// Required string → `string`.
    Str(fn(&R) -> &str),
    /// Optional string → `string`.
    OptStr(fn(&R) -> Option<&str>),
    /// Money → `decimal(18,6)`; a value over 18 digits is stored NULL and counted.
    Dec(fn(&R) -> Option<Decimal>),
    /// Ratio → `double`.
    F64(fn(&R) -> Option<f64>),
    /// Count → `int`; a value over `i32::MAX` is stored NULL and counted.
    I32(fn(&R) -> Option<u32>),
    /// Required count → `int`; a value over `i32::MAX` fails the encode.
    I32Req(fn(&R) -> u32),
    /// Required signed number → `int`.
    I32Signed(fn(&R) -> i32),
    /// Seconds → `bigint`.
    I64(fn(&R) -> Option<i64>),
    /// Required signed number (a run's start, epoch ms) → `bigint`.
    I64Req(fn(&R) -> i64),
    /// Sequence number → `bigint`; a value over `i64::MAX` is stored NULL and counted.
    U64(fn(&R) -> Option<u64>),
    /// Required sequence number → `bigint`; a value over `i64::MAX` fails the encode.
    U64Req(fn(&R) -> u64),
    /// Small number (day, hour) → `tinyint`; a value over 127 is stored NULL and counted.
    I8(fn(&R) -> Option<u8>),
    /// Small number (a tier) → `smallint`, the type of the `tier` partition column.
    I16(fn(&R) -> Option<u8>),
    /// Flag → `boolean`.
    Bool(fn(&R) -> Option<bool>),
    /// Book side, best first → `array<struct<price:decimal(18,6),size:decimal(18,6)>>`.
    Levels(fn(&R) -> &[Level]),
    /// Labels (outcomes, token ids) → `array<string>`.
    Strs(fn(&R) -> &[String]),
    /// Shares (a payout vector) → `array<double>`; empty when `None`-like.
    Ratios(fn(&R) -> &[Decimal]),
}

/// One column of a file: its Glue description and its accessor.
pub(crate) struct FieldSpec<R> {
    pub col: Column,
    pub get: Get<R>,
}

impl<R> FieldSpec<R> {
    /// Whether the writer should try a dictionary: not for ids and hashes, which are
    /// distinct on every row (hashing them is a fifth of the encode time for nothing).
    pub fn dictionary(&self) -> bool {
        !matches!(
            self.col.name,
            "condition_id"
                | "token_id"
                | "book_hash"
                | "question"
                | "slug"
                | "yes_token_id"
                | "no_token_id"
                | "trade_key"
                | "transaction_hash"
                | "text"
        )
    }
}

/// A column named `name` read by `get`; the Athena type follows from the accessor's kind.
pub(crate) const fn col<R>(name: &'static str, get: Get<R>) -> FieldSpec<R> {
    let athena_type = match &get {
        Get::Ts(_) | Get::OptTs(_) => "timestamp",
        Get::Str(_) | Get::OptStr(_) => "string",
        Get::Dec(_) => "decimal(18,6)",
        Get::F64(_) => "double",
        Get::I32(_) | Get::I32Req(_) | Get::I32Signed(_) => "int",
        Get::I64(_) | Get::I64Req(_) | Get::U64(_) | Get::U64Req(_) => "bigint",
        Get::I8(_) => "tinyint",
        Get::I16(_) => "smallint",
        Get::Bool(_) => "boolean",
        Get::Levels(_) => "array<struct<price:decimal(18,6),size:decimal(18,6)>>",
        Get::Strs(_) => "array<string>",
        Get::Ratios(_) => "array<double>",
    };
    FieldSpec {
        col: Column { name, athena_type },
        get,
    }
}

/// The [`Column`]s of a field table, in order (evaluated at compile time).
pub(crate) const fn columns_of<R, const N: usize>(fields: &[FieldSpec<R>; N]) -> [Column; N] {
    let mut out = [Column {
        name: "",
        athena_type: "",
    }; N];
    let mut i = 0;
    while i < N {
        out[i] = fields[i].col;
        i += 1;
    }
    out
}

const UTC: &str = "UTC";

fn decimal_type() -> DataType {
    DataType::Decimal64(PRECISION, SCALE as i8)
}

/// The `struct<price, size>` of one book level.
fn level_fields() -> Fields {
    Fields::from(vec![
        Field::new("price", decimal_type(), true),
        Field::new("size", decimal_type(), true),
    ])
}

/// The list item: named `element` as the Parquet LIST spec writes it.
fn level_item() -> FieldRef {
    static ITEM: OnceLock<FieldRef> = OnceLock::new();
    Arc::clone(ITEM.get_or_init(|| {
        Arc::new(Field::new(
            "element",
            DataType::Struct(level_fields()),
            false,
        ))
    }))
}

/// The non-null item of a plain list column, named `element` as the Parquet LIST spec writes it.
fn item_of(t: DataType) -> FieldRef {
    Arc::new(Field::new("element", t, false))
}

impl<R> Get<R> {
    fn data_type(&self) -> DataType {
        match self {
            Get::Ts(_) | Get::OptTs(_) => {
                DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
            }
            Get::Str(_) | Get::OptStr(_) => DataType::Utf8,
            Get::Dec(_) => decimal_type(),
            Get::F64(_) => DataType::Float64,
            Get::I32(_) | Get::I32Req(_) | Get::I32Signed(_) => DataType::Int32,
            Get::I64(_) | Get::I64Req(_) | Get::U64(_) | Get::U64Req(_) => DataType::Int64,
            Get::I8(_) => DataType::Int8,
            Get::I16(_) => DataType::Int16,
            Get::Bool(_) => DataType::Boolean,
            Get::Levels(_) => DataType::List(level_item()),
            Get::Strs(_) => DataType::List(item_of(DataType::Utf8)),
            Get::Ratios(_) => DataType::List(item_of(DataType::Float64)),
        }
    }

    fn nullable(&self) -> bool {
        !matches!(
            self,
            Get::Ts(_)
                | Get::Str(_)
                | Get::I32Req(_)
                | Get::I32Signed(_)
                | Get::I64Req(_)
                | Get::U64Req(_)
                | Get::Levels(_)
                | Get::Strs(_)
                | Get::Ratios(_)
        )
    }

    /// The column of `rows`, adding to `nulled` each value that did not fit its type.
    fn build(&self, name: &str, rows: &[R], nulled: &mut usize) -> Result<ArrayRef> {
        let n = rows.len();
        let array: ArrayRef = match *self {
            Get::Ts(f) => Arc::new(
                TimestampMillisecondArray::from_iter_values(
                    rows.iter().map(|r| f(r).timestamp_millis()),
                )
                .with_timezone(UTC),
            ),
            Get::OptTs(f) => Arc::new(
                rows.iter()
                    .map(|r| f(r).map(|t| t.timestamp_millis()))
                    .collect::<TimestampMillisecondArray>()
                    .with_timezone(UTC),
            ),
            Get::Str(f) => {
                let bytes = rows.iter().map(|r| f(r).len()).sum();
                let mut b = StringBuilder::with_capacity(n, bytes);
                for r in rows {
                    b.append_value(f(r));
                }
                Arc::new(b.finish())
            }
            Get::OptStr(f) => {
                let bytes = rows.iter().map(|r| f(r).map_or(0, str::len)).sum();
                let mut b = StringBuilder::with_capacity(n, bytes);
                for r in rows {
                    b.append_option(f(r));
                }
                Arc::new(b.finish())
            }
            Get::Dec(f) => {
                let mut b = Decimal64Builder::with_capacity(n);
                for r in rows {
                    b.append_option(f(r).and_then(|d| mantissa(d, nulled)));
                }
                Arc::new(
                    b.finish()
                        .with_precision_and_scale(PRECISION, SCALE as i8)?,
                )
            }
            Get::F64(f) => {
                let mut b = Float64Builder::with_capacity(n);
                for r in rows {
                    b.append_option(f(r));
                }
                Arc::new(b.finish())
            }
            Get::I32(f) => {
                let mut b = Int32Builder::with_capacity(n);
                for r in rows {
                    b.append_option(f(r).and_then(|v| fit(i32::try_from(v).ok(), nulled)));
                }
                Arc::new(b.finish())
            }
            Get::I32Req(f) => {
                let mut b = Int32Builder::with_capacity(n);
                for r in rows {
                    let v = f(r);
                    let v = i32::try_from(v).map_err(|_| {
                        crate::StoreError::Encode(format!("{name}: {v} does not fit int"))
                    })?;
                    b.append_value(v);
                }
                Arc::new(b.finish())
            }
            Get::I32Signed(f) => Arc::new(Int32Array::from_iter_values(rows.iter().map(f))),
            Get::I64(f) => {
                let mut b = Int64Builder::with_capacity(n);
                for r in rows {
                    b.append_option(f(r));
                }
                Arc::new(b.finish())
            }
            Get::I64Req(f) => Arc::new(Int64Array::from_iter_values(rows.iter().map(f))),
            Get::U64(f) => {
                let mut b = Int64Builder::with_capacity(n);
                for r in rows {
                    b.append_option(f(r).and_then(|v| fit(i64::try_from(v).ok(), nulled)));
                }
                Arc::new(b.finish())
            }
            Get::U64Req(f) => {
                let mut b = Int64Builder::with_capacity(n);
                for r in rows {
                    let v = f(r);
                    let v = i64::try_from(v).map_err(|_| {
                        crate::StoreError::Encode(format!("{name}: {v} does not fit bigint"))
                    })?;
                    b.append_value(v);
                }
                Arc::new(b.finish())
            }
            Get::I8(f) => {
                let mut b = Int8Builder::with_capacity(n);
                for r in rows {
                    b.append_option(f(r).and_then(|v| fit(i8::try_from(v).ok(), nulled)));
                }
                Arc::new(b.finish())
            }
            Get::I16(f) => {
                let mut b = Int16Builder::with_capacity(n);
                for r in rows {
                    b.append_option(f(r).map(i16::from));
                }
                Arc::new(b.finish())
            }
            Get::Bool(f) => {
                let mut b = BooleanBuilder::with_capacity(n);
                for r in rows {
                    b.append_option(f(r));
                }
                Arc::new(b.finish())
            }
            Get::Levels(f) => levels(rows, f, nulled)?,
            Get::Strs(f) => {
                let mut offsets = OffsetBufferBuilder::<i32>::new(n);
                let mut b = StringBuilder::new();
                for r in rows {
                    offsets.push_length(f(r).len());
                    for v in f(r) {
                        b.append_value(v);
                    }
                }
                Arc::new(ListArray::try_new(
                    item_of(DataType::Utf8),
                    offsets.finish(),
                    Arc::new(b.finish()),
                    None,
                )?)
            }
            Get::Ratios(f) => {
                let mut offsets = OffsetBufferBuilder::<i32>::new(n);
                let mut b = Float64Builder::new();
                for r in rows {
                    offsets.push_length(f(r).len());
                    for v in f(r) {
                        b.append_value(f64::try_from(*v).unwrap_or(f64::NAN));
                    }
                }
                Arc::new(ListArray::try_new(
                    item_of(DataType::Float64),
                    offsets.finish(),
                    Arc::new(b.finish()),
                    None,
                )?)
            }
        };
        Ok(array)
    }
}

/// The DECIMAL(18,6) mantissa of `d`, or `None` (counted) when it has more than 18 digits.
fn mantissa(d: Decimal, nulled: &mut usize) -> Option<i64> {
    fit(fast_mantissa(d), nulled)
}

/// [`to_mantissa`] without its rounding and rescaling work in the common case: a value with
/// at most 6 places (every price and size Polymarket sends) only needs its mantissa scaled up.
/// Same result as `to_mantissa` for every input (a test checks); it is the encoder's hot path.
pub(crate) fn fast_mantissa(d: Decimal) -> Option<i64> {
    const POW10: [i128; 7] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];
    let scale = d.scale();
    if scale > SCALE {
        return to_mantissa(d);
    }
    let m = d.mantissa().checked_mul(POW10[(SCALE - scale) as usize])?;
    if m.abs() > MAX_MANTISSA {
        return None;
    }
    i64::try_from(m).ok()
}

fn fit<T>(v: Option<T>, nulled: &mut usize) -> Option<T> {
    if v.is_none() {
        *nulled += 1;
    }
    v
}

/// A `list<struct<price, size>>` column: offsets plus two flat decimal children, built
/// directly rather than through nested builders (this is the hot loop of order-book files).
fn levels<R>(rows: &[R], f: fn(&R) -> &[Level], nulled: &mut usize) -> Result<ArrayRef> {
    let total: usize = rows.iter().map(|r| f(r).len()).sum();
    let mut offsets = OffsetBufferBuilder::<i32>::new(rows.len());
    let mut price = Decimal64Builder::with_capacity(total);
    let mut size = Decimal64Builder::with_capacity(total);
    for r in rows {
        let side = f(r);
        offsets.push_length(side.len());
        for l in side {
            price.append_option(mantissa(l.price, nulled));
            size.append_option(mantissa(l.size, nulled));
        }
    }
    let children: Vec<ArrayRef> = vec![
        Arc::new(
            price
                .finish()
                .with_precision_and_scale(PRECISION, SCALE as i8)?,
        ),
        Arc::new(
            size.finish()
                .with_precision_and_scale(PRECISION, SCALE as i8)?,
        ),
    ];
    let levels = StructArray::try_new(level_fields(), children, None)?;
    Ok(Arc::new(ListArray::try_new(
        level_item(),
        offsets.finish(),
        Arc::new(levels),
        None,
    )?))
}

/// The Arrow schema of a field table.
pub(crate) fn schema_of<R>(fields: &[FieldSpec<R>]) -> arrow_schema::Schema {
    arrow_schema::Schema::new(
        fields
            .iter()
            .map(|f| Field::new(f.col.name, f.get.data_type(), f.get.nullable()))
            .collect::<Vec<_>>(),
    )
}

/// Every column of `rows`, in the table's order.
pub(crate) fn arrays_of<R>(
    fields: &[FieldSpec<R>],
    rows: &[R],
    nulled: &mut usize,
) -> Result<Vec<ArrayRef>> {
    fields
        .iter()
        .map(|f| f.get.build(f.col.name, rows, nulled))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading a file back: the same field table says what a file must hold
// ---------------------------------------------------------------------------------------------

/// A decoded batch checked against a field table: every column the table declares is there
/// with the type the table gives it, so a typed read ([`Rows::col`]) can only meet bad values
/// (a NULL where the row needs one, a number out of range), each an error naming the table,
/// the row and the column.
pub(crate) struct Rows<'a> {
    table: &'static str,
    batch: &'a RecordBatch,
}

impl<'a> Rows<'a> {
    /// `batch` as a file of `table`, or an error naming the first column that is missing or
    /// of another type than `fields` gives it.
    pub fn new<R>(
        table: &'static str,
        fields: &[FieldSpec<R>],
        batch: &'a RecordBatch,
    ) -> Result<Self> {
        Self::only(table, fields, None, batch)
    }

    /// [`Rows::new`] checking only the columns named in `names` (all of them: `None`), for a
    /// reader of a few columns that a file written before a column was added still holds.
    pub fn only<R>(
        table: &'static str,
        fields: &[FieldSpec<R>],
        names: Option<&[&str]>,
        batch: &'a RecordBatch,
    ) -> Result<Self> {
        let schema = batch.schema();
        let wanted = |f: &&FieldSpec<R>| names.is_none_or(|n| n.contains(&f.col.name));
        for f in fields.iter().filter(wanted) {
            let want = f.get.data_type();
            match schema.field_with_name(f.col.name) {
                Err(_) => return Err(bad_file(table, format!("no column `{}`", f.col.name))),
                Ok(found) if found.data_type() != &want => {
                    return Err(bad_file(
                        table,
                        format!(
                            "column `{}` is {}, polytape writes {want}",
                            f.col.name,
                            found.data_type()
                        ),
                    ))
                }
                Ok(_) => {}
            }
        }
        Ok(Rows { table, batch })
    }

    pub fn len(&self) -> usize {
        self.batch.num_rows()
    }

    /// The column `name` as the Arrow array type `A`.
    pub fn col<A: Cell + 'static>(&self, name: &'static str) -> Result<Col<'a, A>> {
        let array = self
            .batch
            .column_by_name(name)
            .ok_or_else(|| bad_file(self.table, format!("no column `{name}`")))?;
        let array = array.as_any().downcast_ref::<A>().ok_or_else(|| {
            bad_file(
                self.table,
                format!("column `{name}` is {}", array.data_type()),
            )
        })?;
        Ok(Col {
            table: self.table,
            name,
            array,
        })
    }
}

fn bad_file(table: &str, what: String) -> crate::StoreError {
    crate::StoreError::Encode(format!("{table} file: {what}"))
}

/// One value of an Arrow array as the domain type its column holds.
pub(crate) trait Cell: Array {
    type Out<'b>
    where
        Self: 'b;
    /// The value of row `i`: `None` for NULL, an error for a value that has no domain meaning.
    fn cell(&self, i: usize) -> std::result::Result<Option<Self::Out<'_>>, String>;
}

impl Cell for TimestampMillisecondArray {
    type Out<'b> = Ts;
    fn cell(&self, i: usize) -> std::result::Result<Option<Ts>, String> {
        if self.is_null(i) {
            return Ok(None);
        }
        let ms = self.value(i);
        chrono::DateTime::from_timestamp_millis(ms)
            .map(Some)
            .ok_or_else(|| format!("{ms} ms is not a time"))
    }
}

impl Cell for StringArray {
    type Out<'b> = &'b str;
    fn cell(&self, i: usize) -> std::result::Result<Option<&str>, String> {
        Ok((!self.is_null(i)).then(|| self.value(i)))
    }
}

impl Cell for Decimal64Array {
    type Out<'b> = Decimal;
    fn cell(&self, i: usize) -> std::result::Result<Option<Decimal>, String> {
        // The schema check made the scale 6.
        Ok((!self.is_null(i)).then(|| from_mantissa(self.value(i))))
    }
}

impl Cell for BooleanArray {
    type Out<'b> = bool;
    fn cell(&self, i: usize) -> std::result::Result<Option<bool>, String> {
        Ok((!self.is_null(i)).then(|| self.value(i)))
    }
}

macro_rules! integer_cell {
    ($($array:ty => $t:ty),*) => {$(
        impl Cell for $array {
            type Out<'b> = $t;
            fn cell(&self, i: usize) -> std::result::Result<Option<$t>, String> {
                Ok((!self.is_null(i)).then(|| self.value(i)))
            }
        }
    )*};
}
integer_cell!(Int8Array => i8, Int32Array => i32, Int64Array => i64, Float64Array => f64);

/// One typed column of a batch being decoded, named for its errors.
pub(crate) struct Col<'a, A> {
    table: &'static str,
    name: &'static str,
    array: &'a A,
}

impl<'a, A: Cell> Col<'a, A> {
    fn bad(&self, i: usize, what: impl std::fmt::Display) -> crate::StoreError {
        crate::StoreError::Encode(format!(
            "{} file, row {i}: `{}` {what}",
            self.table, self.name
        ))
    }

    /// Row `i`'s value, `None` when NULL.
    pub fn opt(&self, i: usize) -> Result<Option<A::Out<'a>>> {
        self.array.cell(i).map_err(|e| self.bad(i, e))
    }

    /// Row `i`'s value, an error when NULL.
    pub fn req(&self, i: usize) -> Result<A::Out<'a>> {
        self.opt(i)?.ok_or_else(|| self.bad(i, "is NULL"))
    }

    /// Row `i`'s value as `T` (a stored signed number back to its unsigned type), `None` when
    /// NULL, an error when it does not fit.
    pub fn opt_as<T>(&self, i: usize) -> Result<Option<T>>
    where
        T: TryFrom<A::Out<'a>>,
        A::Out<'a>: Copy + std::fmt::Display,
    {
        match self.opt(i)? {
            None => Ok(None),
            Some(v) => T::try_from(v)
                .map(Some)
                .map_err(|_| self.bad(i, format_args!("is {v}, out of range"))),
        }
    }

    /// [`Col::opt_as`], an error when NULL.
    pub fn req_as<T>(&self, i: usize) -> Result<T>
    where
        T: TryFrom<A::Out<'a>>,
        A::Out<'a>: Copy + std::fmt::Display,
    {
        self.opt_as(i)?.ok_or_else(|| self.bad(i, "is NULL"))
    }
}

impl Col<'_, StringArray> {
    /// Row `i` as the one of `all` whose name (`as_str`) it is; an error when NULL or another
    /// name. Written as the encoder writes it (`as_str`), so the two cannot disagree.
    pub fn one_of<T: Copy>(&self, i: usize, all: &[T], as_str: fn(T) -> &'static str) -> Result<T> {
        let v = self.req(i)?;
        all.iter()
            .copied()
            .find(|t| as_str(*t) == v)
            .ok_or_else(|| {
                let names: Vec<&str> = all.iter().map(|t| as_str(*t)).collect();
                self.bad(i, format_args!("is {v:?}, not one of {}", names.join(", ")))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn fast_mantissa_agrees_with_core_to_mantissa_on_every_kind_of_value() {
        let mut values: Vec<Decimal> = [
            "0",
            "-0",
            "1",
            "-1",
            "0.5",
            "0.123456",
            "0.1234565",
            "0.1234575",
            "-0.0000005",
            "999999999999.999999",
            "-999999999999.999999",
            "1000000000000",
            "999999999999.9999995",
            "1e13",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "0.0000000000000000000000000001",
            "123.4500",
            "5e-7",
            "1.000000000001",
        ]
        .iter()
        .map(|s| {
            Decimal::from_str(s)
                .or_else(|_| Decimal::from_scientific(s))
                .unwrap()
        })
        .collect();
        for scale in 0..=12u32 {
            for m in [
                0i64,
                1,
                7,
                999_999,
                123_456_789,
                999_999_999_999_999_999,
                i64::MAX,
            ] {
                values.push(Decimal::new(m, scale));
                values.push(Decimal::new(-m, scale));
            }
        }
        for d in values {
            assert_eq!(
                fast_mantissa(d),
                to_mantissa(d),
                "{d} (scale {})",
                d.scale()
            );
        }
    }
}
