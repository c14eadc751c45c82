//! Identifiers: client-chosen keys (`sku`, `warehouse_id`, `user_id`) and server-assigned ids
//! (orders, shipments, returns, refunds).
//!
//! Client keys are validated once, at the edge, into [`Key`]; everything inside the engine can then
//! rely on the pattern `[A-Za-z0-9._:-]{1,64}`. Server ids are numbers inside the engine and only
//! become `ORD-…` strings when rendered, which keeps orders small in memory and cheap to hash.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Longest client-chosen identifier, in characters.
pub const KEY_LEN_MAX: usize = 64;

/// A validated client-chosen identifier. Cloning is a reference-count increment.
/// Serialized as a plain string (the same bytes as a `String` in every format).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(Arc<str>);

impl Key {
    /// Validates `s` against `[A-Za-z0-9._:-]{1,64}`.
    pub fn parse(s: &str) -> Result<Key, &'static str> {
        if s.is_empty() {
            return Err("must not be empty");
        }
        if s.len() > KEY_LEN_MAX {
            return Err("must be at most 64 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err("may contain only A-Z, a-z, 0-9, '.', '_', ':' and '-'");
        }
        Ok(Key(Arc::from(s)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Key {
    type Error = &'static str;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Key::parse(&s)
    }
}

impl From<Key> for String {
    fn from(k: Key) -> String {
        k.0.to_string()
    }
}

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string of 1-64 characters from [A-Za-z0-9._:-]")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Key, E> {
                Key::parse(s).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub type Sku = Key;
pub type WarehouseId = Key;
pub type UserId = Key;

/// An order's number: dense and increasing in the order placements were decided, so "newest
/// first" is "highest number first". Rendered as `ORD-` and ten digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Debug)]
pub struct OrderId(pub u64);

impl OrderId {
    pub fn parse(s: &str) -> Option<OrderId> {
        let digits = s.strip_prefix("ORD-")?;
        if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(OrderId)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ORD-{:010}", self.0)
    }
}

/// Ids of an order's parts: `PREFIX-<order number>-<index + 1>`. They are derived, never
/// counted, so deciding them needs nothing but the order itself.
pub fn child_id(prefix: &str, order: OrderId, idx: usize) -> String {
    format!("{prefix}-{:010}-{}", order.0, idx + 1)
}

/// Inverse of [`child_id`]: the index named by `id` if it belongs to `order`.
pub fn parse_child_id(prefix: &str, order: OrderId, id: &str) -> Option<usize> {
    let rest = id.strip_prefix(prefix)?.strip_prefix('-')?;
    let (num, idx) = rest.split_once('-')?;
    if num.parse::<u64>().ok()? != order.0 {
        return None;
    }
    let idx: usize = idx.parse().ok()?;
    idx.checked_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_pattern() {
        assert!(Key::parse("sku-1:a_b.c").is_ok());
        assert!(Key::parse("").is_err());
        assert!(Key::parse(&"a".repeat(65)).is_err());
        assert!(Key::parse(&"a".repeat(64)).is_ok());
        assert!(Key::parse("a b").is_err());
        assert!(Key::parse("é").is_err());
    }

    #[test]
    fn order_ids_round_trip() {
        let id = OrderId(42);
        assert_eq!(id.to_string(), "ORD-0000000042");
        assert_eq!(OrderId::parse(&id.to_string()), Some(id));
        assert_eq!(OrderId::parse("ORD-"), None);
        assert_eq!(OrderId::parse("ORD-x1"), None);
        let shp = child_id("SHP", id, 0);
        assert_eq!(shp, "SHP-0000000042-1");
        assert_eq!(parse_child_id("SHP", id, &shp), Some(0));
        assert_eq!(parse_child_id("SHP", OrderId(43), &shp), None);
        assert_eq!(parse_child_id("RET", id, &shp), None);
    }
}
