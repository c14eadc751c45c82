//! Identifiers: client-chosen keys (`sku`, `warehouse_id`, `user_id`) and server-assigned ids
//! (orders, shipments, returns, refunds).
//!
//! Client keys are validated once, at the edge, into [`Key`]; everything inside the engine can then
//! rely on the pattern `[A-Za-z0-9._:-]{1,64}`. Each kind of key has its own type ([`Sku`],
//! [`WarehouseId`], [`UserId`]), so one cannot be passed where another is meant; all three share
//! `Key`'s validation, its `Arc<str>` (a clone is a reference-count increment) and its encoding
//! (a plain string: the same bytes in the log as before they were types of their own). Server
//! ids are numbers inside the engine and only become `ORD-…` strings when rendered, which keeps
//! orders small in memory and cheap to hash.

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

/// A kind of client key: a newtype of [`Key`], serialized exactly as `Key` (a plain string).
macro_rules! client_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Key);

        impl $name {
            /// Validates `s` against `[A-Za-z0-9._:-]{1,64}`.
            pub fn parse(s: &str) -> Result<$name, &'static str> {
                Key::parse(s).map($name)
            }

            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl From<Key> for $name {
            fn from(key: Key) -> $name {
                $name(key)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

client_key!(
    /// A stock-keeping unit, as the client names it.
    Sku
);
client_key!(
    /// A warehouse's id, as the client chose it.
    WarehouseId
);
client_key!(
    /// A customer's id, as the client sends it.
    UserId
);
client_key!(
    /// A flash sale's id, as the client chose it (`PUT /v1/sales/{id}`).
    SaleId
);

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

    /// A key type's bytes are a `Key`'s, which are a `String`'s: logs written before the
    /// types existed read unchanged.
    #[test]
    fn key_types_encode_as_plain_strings() {
        let plain = postcard::to_allocvec("wh-1").unwrap();
        assert_eq!(postcard::to_allocvec(&Key::parse("wh-1").unwrap()).unwrap(), plain);
        assert_eq!(
            postcard::to_allocvec(&WarehouseId::parse("wh-1").unwrap()).unwrap(),
            plain
        );
        assert_eq!(postcard::to_allocvec(&Sku::parse("wh-1").unwrap()).unwrap(), plain);
        assert_eq!(postcard::to_allocvec(&UserId::parse("wh-1").unwrap()).unwrap(), plain);
        let back: Sku = postcard::from_bytes(&plain).unwrap();
        assert_eq!(back.as_str(), "wh-1");
        let bad = postcard::to_allocvec("a b").unwrap();
        assert!(postcard::from_bytes::<Sku>(&bad).is_err(), "decoding validates");
        assert_eq!(
            serde_json::to_string(&UserId::parse("u-1").unwrap()).unwrap(),
            "\"u-1\""
        );
        assert_eq!(
            format!("{:?} {}", Sku::parse("s").unwrap(), Sku::parse("s").unwrap()),
            "\"s\" s"
        );
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
