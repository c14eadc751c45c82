//! Every bound on what an order may hold and what a client may send about one, and the field
//! checks that enforce them, messages included. Each bound is defined here once: `decide`,
//! `NewOrder::validate` and the API layer (which checks fields early, to report every invalid
//! field at once) all call these functions, and the API's schema reads the constants.

use crate::domain::FieldError;
use crate::domain::money::{AMOUNT_MAX_EXPONENT, Currency};

/// Most lines one order (or one return) may have.
pub const LINES_MAX: usize = 500;
/// Largest quantity of one line.
pub const QUANTITY_MAX: u64 = 1_000_000;
/// Most returns one order may have over its life.
pub const RETURNS_MAX: usize = 100;
/// Most refunds one order may have over its life.
pub const REFUNDS_MAX: usize = 100;
/// Most payment attempts one order may have.
pub const PAYMENT_ATTEMPTS_MAX: usize = 20;
/// Longest free-text field (reasons, address lines, carrier, tracking numbers), in bytes.
pub const TEXT_LEN_MAX: usize = 500;
/// Longest payment token, in bytes.
pub const TOKEN_LEN_MAX: usize = 256;
/// Longest reservation an order may ask for: 7 days.
pub const RESERVATION_TTL_MS_MAX: u64 = 7 * 24 * 3600 * 1000;
/// Default reservation: 15 minutes.
pub const RESERVATION_TTL_MS_DEFAULT: u64 = 15 * 60 * 1000;
/// Longest email address, in bytes (RFC 5321's path limit).
pub const EMAIL_LEN_MAX: usize = 254;
/// Longest note, in bytes.
pub const NOTE_LEN_MAX: usize = 2000;
/// Most tags on one order.
pub const TAGS_MAX: usize = 20;
/// Longest tag, in bytes.
pub const TAG_LEN_MAX: usize = 40;
/// Most metadata keys on one order.
pub const METADATA_KEYS_MAX: usize = 50;
/// Longest metadata key, in bytes (`[A-Za-z0-9._:-]`).
pub const METADATA_KEY_LEN_MAX: usize = 40;
/// Longest metadata value, in bytes.
pub const METADATA_VALUE_LEN_MAX: usize = 500;

/// Free text: at most [`TEXT_LEN_MAX`] bytes.
pub fn text(field: &str, value: &str, errs: &mut Vec<FieldError>) {
    if value.len() > TEXT_LEN_MAX {
        errs.push(FieldError::new(field, format!("must be at most {TEXT_LEN_MAX} bytes")));
    }
}

/// Free text that must say something: not blank, at most [`TEXT_LEN_MAX`] bytes.
pub fn required_text(field: &str, value: &str, errs: &mut Vec<FieldError>) {
    if value.trim().is_empty() {
        errs.push(FieldError::new(field, "must not be empty"));
    } else {
        text(field, value, errs);
    }
}

/// The number of lines of an order or a return: 1 to [`LINES_MAX`], reported on `items`.
pub fn line_count(n_lines: usize, errs: &mut Vec<FieldError>) {
    if n_lines == 0 {
        errs.push(FieldError::new("items", "must contain at least one line"));
    }
    if n_lines > LINES_MAX {
        errs.push(FieldError::new(
            "items",
            format!("must contain at most {LINES_MAX} lines"),
        ));
    }
}

/// One line's quantity: 1 to [`QUANTITY_MAX`].
pub fn quantity(field: String, quantity: u64, errs: &mut Vec<FieldError>) {
    if quantity == 0 || quantity > QUANTITY_MAX {
        errs.push(FieldError::new(field, format!("must be between 1 and {QUANTITY_MAX}")));
    }
}

/// A payment token: 1 to [`TOKEN_LEN_MAX`] bytes.
pub fn token(value: &str, errs: &mut Vec<FieldError>) {
    if value.is_empty() || value.len() > TOKEN_LEN_MAX {
        errs.push(FieldError::new(
            "token",
            format!("must be 1 to {TOKEN_LEN_MAX} characters"),
        ));
    }
}

/// The reservation's length: 1 ms to [`RESERVATION_TTL_MS_MAX`], named as the client sends
/// it, in seconds.
pub fn reservation_ttl(ttl_ms: u64, errs: &mut Vec<FieldError>) {
    if ttl_ms == 0 || ttl_ms > RESERVATION_TTL_MS_MAX {
        errs.push(FieldError::new(
            "reservation_ttl_seconds",
            format!("must be between 1 and {}", RESERVATION_TTL_MS_MAX / 1000),
        ));
    }
}

/// An email address as stores take them: `local@domain`, the local part 1-64 characters of
/// RFC 5322's dot-atom, the domain two or more DNS labels, at most [`EMAIL_LEN_MAX`] bytes.
pub fn email(field: &str, value: &str, errs: &mut Vec<FieldError>) {
    if !is_email(value) {
        errs.push(FieldError::new(
            field,
            format!("must be an email address like name@example.com, at most {EMAIL_LEN_MAX} bytes"),
        ));
    }
}

fn is_email(value: &str) -> bool {
    let Some((local, domain)) = value.rsplit_once('@') else {
        return false;
    };
    let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~-".contains(c);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|part| !part.is_empty() && part.chars().all(atext));
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let domain_ok = domain.split('.').count() >= 2 && domain.split('.').all(label_ok);
    value.len() <= EMAIL_LEN_MAX && local_ok && domain_ok
}

/// A note: at most [`NOTE_LEN_MAX`] bytes.
pub fn note(field: &str, value: &str, errs: &mut Vec<FieldError>) {
    if value.len() > NOTE_LEN_MAX {
        errs.push(FieldError::new(field, format!("must be at most {NOTE_LEN_MAX} bytes")));
    }
}

/// Tags: at most [`TAGS_MAX`], distinct, each 1 to [`TAG_LEN_MAX`] bytes without control
/// characters, commas or surrounding spaces.
pub fn tags(field: &str, tags: &[String], errs: &mut Vec<FieldError>) {
    if tags.len() > TAGS_MAX {
        errs.push(FieldError::new(field, format!("must hold at most {TAGS_MAX} tags")));
        return;
    }
    for (i, t) in tags.iter().enumerate() {
        let shape_ok =
            !t.is_empty() && t.len() <= TAG_LEN_MAX && t.trim() == t && !t.chars().any(|c| c.is_control() || c == ',');
        if !shape_ok {
            errs.push(FieldError::new(
                format!("{field}[{i}]"),
                format!("must be 1 to {TAG_LEN_MAX} bytes, without commas, control characters or surrounding spaces"),
            ));
        } else if tags[..i].contains(t) {
            errs.push(FieldError::new(format!("{field}[{i}]"), "repeats an earlier tag"));
        }
    }
}

/// Metadata: at most [`METADATA_KEYS_MAX`] keys of 1 to [`METADATA_KEY_LEN_MAX`] characters
/// from `[A-Za-z0-9._:-]`, values of at most [`METADATA_VALUE_LEN_MAX`] bytes.
pub fn metadata<'a>(
    field: &str,
    entries: impl ExactSizeIterator<Item = (&'a str, &'a str)>,
    errs: &mut Vec<FieldError>,
) {
    if entries.len() > METADATA_KEYS_MAX {
        errs.push(FieldError::new(
            field,
            format!("must hold at most {METADATA_KEYS_MAX} keys"),
        ));
    }
    for (k, v) in entries {
        let key_ok = !k.is_empty()
            && k.len() <= METADATA_KEY_LEN_MAX
            && k.chars().all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
        if !key_ok {
            errs.push(FieldError::new(
                format!("{field}.{k}"),
                format!("keys must be 1 to {METADATA_KEY_LEN_MAX} characters from [A-Za-z0-9._:-]"),
            ));
        } else if v.len() > METADATA_VALUE_LEN_MAX {
            errs.push(FieldError::new(
                format!("{field}.{k}"),
                format!("must be at most {METADATA_VALUE_LEN_MAX} bytes"),
            ));
        }
    }
}

/// An amount the currency does not accept (negative, too precise, too large).
pub fn money_error(field: String, cur: Currency) -> FieldError {
    FieldError::new(
        field,
        format!(
            "must be a non-negative amount of at most {} decimals for {cur}, below 10^{AMOUNT_MAX_EXPONENT}",
            cur.minor_units()
        ),
    )
}

/// The result of a check that collected `errs`: `Ok` if there are none.
pub(crate) fn finish(errs: Vec<FieldError>) -> Result<(), crate::domain::Rejection> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(crate::domain::Rejection::Validation(errs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(check: impl FnOnce(&mut Vec<FieldError>)) -> Vec<String> {
        let mut errs = Vec::new();
        check(&mut errs);
        errs.into_iter().map(|e| format!("{} {}", e.field, e.message)).collect()
    }

    /// The messages name the bounds the constants hold (the API's clients read them).
    #[test]
    fn messages_name_the_bounds() {
        let long = "x".repeat(TEXT_LEN_MAX + 1);
        assert_eq!(run(|e| text("reason", &long, e)), ["reason must be at most 500 bytes"]);
        assert!(run(|e| text("reason", &long[1..], e)).is_empty());
        assert_eq!(run(|e| required_text("reason", " ", e)), ["reason must not be empty"]);
        assert_eq!(run(|e| line_count(0, e)), ["items must contain at least one line"]);
        assert_eq!(
            run(|e| line_count(LINES_MAX + 1, e)),
            ["items must contain at most 500 lines"]
        );
        assert!(run(|e| line_count(LINES_MAX, e)).is_empty());
        let q = |n| run(move |e| quantity("items[0].quantity".into(), n, e));
        assert_eq!(q(0), ["items[0].quantity must be between 1 and 1000000"]);
        assert_eq!(q(QUANTITY_MAX + 1), q(0));
        assert!(q(QUANTITY_MAX).is_empty());
        assert_eq!(run(|e| token("", e)), ["token must be 1 to 256 characters"]);
        assert!(run(|e| token(&"t".repeat(TOKEN_LEN_MAX), e)).is_empty());
        assert_eq!(
            run(|e| reservation_ttl(RESERVATION_TTL_MS_MAX + 1, e)),
            ["reservation_ttl_seconds must be between 1 and 604800"]
        );
        let e = |v: &'static str| run(move |errs| email("email", v, errs)).is_empty();
        assert!(e("ada@example.com") && e("a.b+c@mail.example.co.uk"));
        assert!(!e("ada") && !e("ada@example") && !e("@example.com") && !e("a..b@example.com"));
        assert!(!e("ada@-example.com") && !e("a b@example.com") && !e(""));
        let tag_errs = |t: &[&str]| run(|e| tags("tags", &t.iter().map(|s| s.to_string()).collect::<Vec<_>>(), e));
        assert!(tag_errs(&["vip", "gift wrap"]).is_empty());
        assert_eq!(tag_errs(&["vip", "vip"]), ["tags[1] repeats an earlier tag"]);
        assert_eq!(tag_errs(&[" vip"]).len(), 1);
        assert_eq!(tag_errs(&["a,b"]).len(), 1);
        assert_eq!(tag_errs(&[""]).len(), 1);
        assert_eq!(
            tag_errs(&["t"; TAGS_MAX + 1]).first().map(String::as_str),
            Some("tags must hold at most 20 tags")
        );
        let meta = |k: &'static str, v: &'static str| run(move |e| metadata("metadata", [(k, v)].into_iter(), e));
        assert!(meta("erp.id", "42").is_empty());
        assert_eq!(meta("bad key", "x").len(), 1);
        let long_value = "v".repeat(METADATA_VALUE_LEN_MAX + 1);
        assert_eq!(
            run(|e| metadata("metadata", [("k", long_value.as_str())].into_iter(), e)),
            ["metadata.k must be at most 500 bytes"]
        );
        let usd = Currency::parse("USD").unwrap();
        assert_eq!(
            money_error("amount".into(), usd).message,
            "must be a non-negative amount of at most 2 decimals for USD, below 10^15"
        );
    }
}
