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

    const PINNED_V1: &str = "010105736b752d310477682d310505636f756e7480d095ffbc3100";
}
