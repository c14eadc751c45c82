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
/// Version byte of snapshot blobs without flash sales (still read: an older build wrote them).
pub const SNAPSHOT_FORMAT_V1: u8 = 1;
/// Version byte of snapshot blobs: the format-1 state, then the flash sales (`SalesState`).
pub const SNAPSHOT_FORMAT_V2: u8 = 2;

#[derive(Clone, Debug, Error)]
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

/// Format 1 while there is no sale (what older builds wrote and can read), else format 2.
pub fn encode_snapshot(state: &EngineState) -> Vec<u8> {
    let with_sales = !state.sales.is_empty();
    let version = if with_sales {
        SNAPSHOT_FORMAT_V2
    } else {
        SNAPSHOT_FORMAT_V1
    };
    let mut out = vec![version];
    postcard::to_io(state, &mut out).expect("writing to a Vec cannot fail");
    if with_sales {
        postcard::to_io(&state.sales, &mut out).expect("writing to a Vec cannot fail");
    }
    out
}

pub fn decode_snapshot(bytes: &[u8]) -> Result<EngineState, CodecError> {
    match bytes.first() {
        Some(&SNAPSHOT_FORMAT_V1) => Ok(postcard::from_bytes(&bytes[1..])?),
        Some(&SNAPSHOT_FORMAT_V2) => {
            let (mut state, rest): (EngineState, _) = postcard::take_from_bytes(&bytes[1..])?;
            state.sales = postcard::from_bytes(rest)?;
            Ok(state)
        }
        Some(v) => Err(CodecError::UnknownVersion(*v)),
        None => Err(CodecError::UnknownVersion(0)),
    }
}

#[cfg(test)]
mod sale_tests;
#[cfg(test)]
mod tests;
