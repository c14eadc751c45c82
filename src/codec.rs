//! The log's payload codec: one byte of format version, then the record in postcard.
//!
//! postcard is a maintained, compact serde format (the user's first choice, bincode, is
//! unmaintained and its last release does not compile). Keeping it behind this module means a
//! future format change is one new version byte here, and the fixture test below pins the bytes
//! of a known record so that renaming or reordering a domain field cannot silently change what
//! is on disk.

use crate::domain::{EngineState, Record};
use thiserror::Error;

/// Version byte of record payloads.
pub const RECORD_FORMAT_V1: u8 = 1;
/// Version byte of snapshot blobs.
pub const SNAPSHOT_FORMAT_V1: u8 = 1;

#[derive(Debug, Error)]
pub enum CodecError {
    /// The payload is empty or names a format version this build does not know.
    #[error("unknown payload format version {0}")]
    UnknownVersion(u8),
    /// The payload's checksum was right (the log checked it) but it does not decode.
    #[error("payload does not decode: {0}")]
    Decode(#[from] postcard::Error),
}

pub fn encode_record(record: &Record) -> Vec<u8> {
    let mut out = vec![RECORD_FORMAT_V1];
    postcard::to_io(record, &mut out).expect("writing to a Vec cannot fail");
    out
}

pub fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
    match bytes.first() {
        Some(&RECORD_FORMAT_V1) => Ok(postcard::from_bytes(&bytes[1..])?),
        Some(v) => Err(CodecError::UnknownVersion(*v)),
        None => Err(CodecError::UnknownVersion(0)),
    }
}

pub fn encode_snapshot(state: &EngineState) -> Vec<u8> {
    let mut out = vec![SNAPSHOT_FORMAT_V1];
    postcard::to_io(state, &mut out).expect("writing to a Vec cannot fail");
    out
}

pub fn decode_snapshot(bytes: &[u8]) -> Result<EngineState, CodecError> {
    match bytes.first() {
        Some(&SNAPSHOT_FORMAT_V1) => Ok(postcard::from_bytes(&bytes[1..])?),
        Some(v) => Err(CodecError::UnknownVersion(*v)),
        None => Err(CodecError::UnknownVersion(0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Entry, Key, Millis};

    fn fixture() -> Record {
        Record {
            entry: Entry::InventoryAdjusted {
                sku: Key::parse("sku-1").unwrap(),
                warehouse_id: Key::parse("wh-1").unwrap(),
                delta: -3,
                reason: "count".into(),
                at: Millis(1_700_000_000_000),
            },
            idempotency: None,
        }
    }

    /// The response body of an idempotency record is encoded as bytes; postcard writes bytes and
    /// a sequence of `u8` alike, so this is the version-1 layout of a record that carries one.
    #[test]
    fn idempotency_bodies_keep_the_version_1_layout() {
        let mut r = fixture();
        r.idempotency = Some(crate::domain::IdempotencyRecord {
            key: "k".into(),
            fingerprint: [7; 32],
            status: 201,
            body: b"{}".to_vec(),
            at: Millis(5),
        });
        let bytes = encode_record(&r);
        let tail: Vec<u8> = [&[1u8, 1, b'k'][..], &[7; 32], &[201, 1, 2, b'{', b'}', 5]].concat();
        assert!(bytes.ends_with(&tail), "{bytes:?}");
        assert_eq!(decode_record(&bytes).unwrap(), r);
    }

    #[test]
    fn records_round_trip() {
        let r = fixture();
        assert_eq!(decode_record(&encode_record(&r)).unwrap(), r);
        assert!(matches!(decode_record(&[9, 1, 2]), Err(CodecError::UnknownVersion(9))));
        assert!(matches!(decode_record(&[]), Err(CodecError::UnknownVersion(0))));
        assert!(decode_record(&[RECORD_FORMAT_V1, 200]).is_err());
    }

    /// The bytes of version 1 are frozen: if this fails, a domain type's encoding changed and
    /// old logs would no longer read. Add a new format version instead of editing this.
    #[test]
    fn version_1_bytes_are_pinned() {
        let hex: String = encode_record(&fixture()).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, PINNED_V1);
    }

    /// A whole placement: an order with decimals, an address, allocations and history. Pinned
    /// like the record above, so a change to any domain type an order contains shows here.
    fn placement_fixture() -> Record {
        use crate::domain::money::Currency;
        use crate::domain::order::{Address, Allocation, NewLine, NewOrder};
        use rust_decimal::Decimal;
        let new = NewOrder {
            user_id: Key::parse("u-1").unwrap(),
            currency: Currency::parse("USD").unwrap(),
            lines: vec![NewLine {
                sku: Key::parse("sku-1").unwrap(),
                quantity: 2,
                unit_price: Decimal::new(1999, 2),
                discount: Decimal::new(100, 2),
            }],
            tax_amount: Decimal::new(150, 2),
            shipping_amount: Decimal::ZERO,
            discount_amount: Decimal::ZERO,
            shipping_address: Address {
                line1: "1 Main St".into(),
                city: "Springfield".into(),
                country: "US".into(),
                lat: Some(40.5),
                lon: Some(-74.25),
                ..Default::default()
            },
            billing_address: None,
            reservation_ttl_ms: 900_000,
        };
        let alloc = vec![vec![Allocation {
            warehouse_id: Key::parse("wh-1").unwrap(),
            quantity: 2,
        }]];
        let order = new.into_order(crate::domain::OrderId(7), alloc, Millis(1_700_000_000_000));
        Record {
            entry: Entry::OrderPlaced {
                order: std::sync::Arc::new(order),
            },
            idempotency: None,
        }
    }

    #[test]
    fn version_1_placement_bytes_are_pinned() {
        let bytes = encode_record(&placement_fixture());
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, PINNED_PLACEMENT_V1);
        assert_eq!(decode_record(&bytes).unwrap(), placement_fixture());
    }

    const PINNED_PLACEMENT_V1: &str = "01020703752d315553440105736b752d31020531392e393904312e3030010477682d31020533382e393804312e3530013001300534302e3438000931204d61696e205374000b537072696e676669656c640000025553000100000000004044400100000000009052c0000180d095ffbc3180d095ffbc31a0c7ccffbc31013001300130000000000200000d6f726465722063726561746564000361706980d095ffbc3101000112696e76656e746f7279207265736572766564000673797374656d80d095ffbc3100";

    const PINNED_V1: &str = "010105736b752d310477682d310505636f756e7480d095ffbc3100";
}
