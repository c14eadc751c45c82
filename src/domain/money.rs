//! Money: exact decimals (`rust_decimal`) and ISO 4217 currencies with their minor units.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

pub type Amount = Decimal;

/// Largest amount accepted anywhere: 10^[`AMOUNT_MAX_EXPONENT`]. The bound keeps every sum an
/// order can form (500 lines of 10^6 units) far inside `Decimal`'s 96-bit range.
pub const AMOUNT_MAX: Decimal = Decimal::from_parts(0xA4C6_8000, 0x3_8D7E, 0, false, 0);
/// [`AMOUNT_MAX`] is 10 to this power (messages and the API's schema say it so).
pub const AMOUNT_MAX_EXPONENT: u32 = 15;

/// Most decimals any currency has (its minor unit, e.g. KWD's fils).
pub const MINOR_UNITS_MAX: u32 = 3;

/// An ISO 4217 code: three upper-case ASCII letters. New ones come only from [`Currency::parse`],
/// which accepts the active codes of `iso4217::ACTIVE`; a code decoded from the log is taken as
/// it is (an order placed before the list was enforced still replays).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Currency([u8; 3]);

impl Currency {
    /// The currency of an active ISO 4217 code (`iso4217::ACTIVE`); `None` for anything else.
    pub fn parse(s: &str) -> Option<Currency> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(|c| c.is_ascii_uppercase()) && super::iso4217::minor_units(s).is_some() {
            Some(Currency([b[0], b[1], b[2]]))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Decimal places of the currency's minor unit (ISO 4217), at most [`MINOR_UNITS_MAX`].
    /// A code not on the active list (only an order placed before the list was enforced has
    /// one) has 2, as every code did then unless it was one of today's 0- or 3-decimal codes.
    pub fn minor_units(&self) -> u32 {
        super::iso4217::minor_units(self.as_str()).unwrap_or(2)
    }

    /// True if `amount` is non-negative, below [`AMOUNT_MAX`] and has no more decimals than the
    /// currency's minor unit.
    pub fn accepts(&self, amount: Decimal) -> bool {
        !amount.is_sign_negative() && amount <= AMOUNT_MAX && amount.normalize().scale() <= self.minor_units()
    }

    /// `amount` rendered with exactly the currency's decimals.
    pub fn render(&self, amount: Decimal) -> String {
        let mut a = amount;
        a.rescale(self.minor_units());
        a.to_string()
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn the_largest_amount_is_ten_to_its_exponent() {
        assert_eq!(AMOUNT_MAX, Decimal::from(10u64.pow(AMOUNT_MAX_EXPONENT)));
    }

    #[test]
    fn no_active_currency_has_more_decimals_than_amounts_may() {
        assert!(super::super::iso4217::ACTIVE.iter().all(|(_, u)| *u <= MINOR_UNITS_MAX));
    }

    #[test]
    fn minor_units_bound_decimals() {
        let usd = Currency::parse("USD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        assert!(usd.accepts(Decimal::from_str("19.99").unwrap()));
        assert!(usd.accepts(Decimal::from_str("19.90").unwrap()));
        assert!(!usd.accepts(Decimal::from_str("19.999").unwrap()));
        assert!(!usd.accepts(Decimal::from_str("-1").unwrap()));
        assert!(jpy.accepts(Decimal::from_str("100").unwrap()));
        assert!(jpy.accepts(Decimal::from_str("100.0").unwrap()));
        assert!(!jpy.accepts(Decimal::from_str("100.5").unwrap()));
        assert_eq!(usd.render(Decimal::from_str("5").unwrap()), "5.00");
        assert_eq!(jpy.render(Decimal::from_str("5").unwrap()), "5");
        assert!(Currency::parse("usd").is_none());
        assert!(Currency::parse("US").is_none());
        assert!(Currency::parse("XYZ").is_none(), "not an ISO 4217 code");
        assert_eq!(Currency::parse("KWD").map(|c| c.minor_units()), Some(3));
    }
}
