//! The log's payload codec: one byte of format version, then the record in postcard.
//!
//! postcard is a maintained, compact serde format (the user's first choice, bincode, is
//! unmaintained and its last release does not compile). Keeping it behind this module means a
//! future format change is one new version byte here, and the fixture test below pins the bytes
//! of a known record so that renaming or reordering a domain field cannot silently change what
//! is on disk.
//!
//! Record versions:
//! - **1**: the record in postcard.
//! - **2**: the version-1 bytes of the record, then a trailer with the extras of the order it
//!   places (`OrderPlaced` or `OrderPlacedInSale`; `domain::order::extras`: email, note, tags,
//!   metadata, cancelled units, as a list of attributes). The trailer must end the payload.
//!
//! Snapshot formats, each the one before it followed by one more section:
//! - **1**: the state in postcard.
//! - **2**: format 1, then the flash sales (`SalesState`).
//! - **3**: format 2 (its sales section possibly empty), then the sequence of
//!   `(order id, extras)` of every order that has any, by id. The trailer must end the payload.
//!
//! A value is written in the oldest version that holds it: a record or snapshot without extras
//! (and, for a snapshot, without sales) is written as version 1, byte for byte what earlier
//! builds wrote (the version-1 fixtures pin it), so a log only needs this build to read it if
//! it uses the new fields. Every version ever written is read.

use crate::domain::order::Extras;
use crate::domain::{EngineState, Entry, OrderId, Record};
use std::sync::Arc;
use thiserror::Error;

/// Version byte of record payloads without extras.
pub const RECORD_FORMAT_V1: u8 = 1;
/// Version byte of records whose placed order carries extras.
pub const RECORD_FORMAT_V2: u8 = 2;
/// Version byte of snapshot blobs without flash sales or extras (still read: an older build
/// wrote them).
pub const SNAPSHOT_FORMAT_V1: u8 = 1;
/// Version byte of snapshot blobs: the format-1 state, then the flash sales (`SalesState`).
pub const SNAPSHOT_FORMAT_V2: u8 = 2;
/// Version byte of snapshot blobs: format 2, then the extras of the orders that have any.
pub const SNAPSHOT_FORMAT_V3: u8 = 3;

#[derive(Clone, Debug, Error)]
pub enum CodecError {
    /// The payload is empty or names a format version this build does not know.
    #[error("unknown payload format version {0}")]
    UnknownVersion(u8),
    /// The payload's checksum was right (the log checked it) but it does not decode.
    #[error("payload does not decode: {0}")]
    Decode(#[from] postcard::Error),
    /// A version-2 record or format-3 snapshot whose trailer does not fit: extras on a record
    /// that places no order, extras of an order the snapshot does not hold, or bytes after
    /// the trailer.
    #[error("payload trailer does not fit: {0}")]
    Trailer(&'static str),
}

pub fn encode_record(record: &Record) -> Vec<u8> {
    let extras = record
        .entry
        .placed_order()
        .map(|order| &order.extras)
        .filter(|extras| !extras.is_empty());
    let mut out = vec![if extras.is_some() {
        RECORD_FORMAT_V2
    } else {
        RECORD_FORMAT_V1
    }];
    postcard::to_io(record, &mut out).expect("writing to a Vec cannot fail");
    if let Some(extras) = extras {
        postcard::to_io(extras, &mut out).expect("writing to a Vec cannot fail");
    }
    out
}

pub fn decode_record(bytes: &[u8]) -> Result<Record, CodecError> {
    match bytes.first() {
        Some(&RECORD_FORMAT_V1) => Ok(postcard::from_bytes(&bytes[1..])?),
        Some(&RECORD_FORMAT_V2) => {
            let (mut record, tail) = postcard::take_from_bytes::<Record>(&bytes[1..])?;
            let order = match &mut record.entry {
                Entry::OrderPlaced { order } | Entry::OrderPlacedInSale { order, .. } => order,
                _ => return Err(CodecError::Trailer("extras on a record that places no order")),
            };
            Arc::make_mut(order).extras = exact::<Extras>(tail)?;
            Ok(record)
        }
        Some(v) => Err(CodecError::UnknownVersion(*v)),
        None => Err(CodecError::UnknownVersion(0)),
    }
}

/// A value that must take up all of `bytes`.
fn exact<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, CodecError> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes)?;
    if !rest.is_empty() {
        return Err(CodecError::Trailer("bytes after the trailer"));
    }
    Ok(value)
}

/// Format 1 while there is no sale and no order with extras (what older builds wrote and can
/// read), format 2 with sales only, else format 3.
pub fn encode_snapshot(state: &EngineState) -> Vec<u8> {
    let mut extras: Vec<(OrderId, &Extras)> = state
        .orders
        .values()
        .filter(|o| !o.extras.is_empty())
        .map(|o| (o.id, &o.extras))
        .collect();
    extras.sort_by_key(|(id, _)| *id);
    let version = if !extras.is_empty() {
        SNAPSHOT_FORMAT_V3
    } else if !state.sales.is_empty() {
        SNAPSHOT_FORMAT_V2
    } else {
        SNAPSHOT_FORMAT_V1
    };
    let mut out = vec![version];
    postcard::to_io(state, &mut out).expect("writing to a Vec cannot fail");
    if version >= SNAPSHOT_FORMAT_V2 {
        postcard::to_io(&state.sales, &mut out).expect("writing to a Vec cannot fail");
    }
    if version >= SNAPSHOT_FORMAT_V3 {
        postcard::to_io(&extras, &mut out).expect("writing to a Vec cannot fail");
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
        Some(&SNAPSHOT_FORMAT_V3) => {
            let (mut state, rest): (EngineState, _) = postcard::take_from_bytes(&bytes[1..])?;
            let (sales, tail) = postcard::take_from_bytes(rest)?;
            state.sales = sales;
            for (id, extras) in exact::<Vec<(OrderId, Extras)>>(tail)? {
                let order = state
                    .orders
                    .get_mut(&id)
                    .ok_or(CodecError::Trailer("extras of an order the snapshot does not hold"))?;
                Arc::make_mut(order).extras = extras;
            }
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
#[cfg(test)]
mod tests_v2;
