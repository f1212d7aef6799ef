//! Money is decimal from parse to Parquet. Prices, sizes and volumes are stored as
//! DECIMAL(18,6); this module holds that scale and the checks on prices and sizes.

use rust_decimal::Decimal;

/// Digits after the point of every price, size and volume column.
pub const SCALE: u32 = 6;
/// Total digits of those columns (fits Parquet's INT64-backed decimal).
pub const PRECISION: u8 = 18;

/// The largest absolute mantissa DECIMAL(18,6) can hold.
pub const MAX_MANTISSA: i128 = 999_999_999_999_999_999;

/// `d` rounded half-even to [`SCALE`] digits, as the i64 mantissa DECIMAL(18,6) stores; `None`
/// when it does not fit 18 digits (the caller stores NULL and counts it).
pub fn to_mantissa(d: Decimal) -> Option<i64> {
    let mut r =
        d.round_dp_with_strategy(SCALE, rust_decimal::RoundingStrategy::MidpointNearestEven);
    r.rescale(SCALE);
    let m = r.mantissa();
    if m.abs() > MAX_MANTISSA || r.scale() != SCALE {
        return None;
    }
    i64::try_from(m).ok()
}

/// A Decimal from a DECIMAL(18,6) mantissa.
pub fn from_mantissa(m: i64) -> Decimal {
    Decimal::new(m, SCALE)
}

/// True for a probability price: 0 ≤ p ≤ 1.
pub fn is_valid_price(p: Decimal) -> bool {
    p >= Decimal::ZERO && p <= Decimal::ONE
}

/// True when `d` can be stored in a DECIMAL(18,6) column: |d| below 10^12 once rounded to
/// [`SCALE`] digits. Larger values are refused at decode time, so nothing downstream sums
/// sizes near `Decimal::MAX` (which panics with "Addition overflowed").
pub fn fits_storage(d: Decimal) -> bool {
    to_mantissa(d).is_some()
}

/// True for a size or volume: not negative and storable ([`fits_storage`], so below 10^12).
pub fn is_valid_size(s: Decimal) -> bool {
    s >= Decimal::ZERO && fits_storage(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn rounds_to_six_places_and_refuses_overflow() {
        let d = Decimal::from_str("0.50000000000000000000000000001").unwrap();
        assert_eq!(to_mantissa(d), Some(500_000));
        assert_eq!(
            to_mantissa(Decimal::from_str("1234.5").unwrap()),
            Some(1_234_500_000)
        );
        assert_eq!(
            to_mantissa(Decimal::from_str("0.0000005").unwrap()),
            Some(0),
            "half-even"
        );
        assert_eq!(to_mantissa(Decimal::from_str("1e13").unwrap()), None);
        assert_eq!(
            from_mantissa(1_234_500_000),
            Decimal::from_str("1234.5").unwrap()
        );
    }

    #[test]
    fn prices_are_probabilities_and_sizes_are_not_negative() {
        assert!(is_valid_price(Decimal::ONE));
        assert!(!is_valid_price(Decimal::from_str("1.01").unwrap()));
        assert!(!is_valid_price(Decimal::from_str("-0.01").unwrap()));
        assert!(is_valid_size(Decimal::ZERO));
        assert!(!is_valid_size(Decimal::from_str("-1").unwrap()));
    }

    #[test]
    fn given_a_size_of_10_to_the_12_or_more_when_checked_then_it_is_not_valid() {
        assert!(is_valid_size(
            Decimal::from_str("999999999999.999999").unwrap()
        ));
        assert!(!is_valid_size(Decimal::from_str("1000000000000").unwrap()));
        assert!(!is_valid_size(
            Decimal::from_str("79000000000000000000000000000").unwrap()
        ));
        assert!(fits_storage(Decimal::from_str("-999999999999").unwrap()));
        assert!(!fits_storage(Decimal::from_str("-1000000000000").unwrap()));
    }
}
