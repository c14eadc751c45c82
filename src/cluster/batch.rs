//! One stream message = one batch of consecutive log records (pure). Headers: `Oms-First-Lsn`
//! (the LSN of the first record), `Oms-Node` (the writer); a takeover marker has no records and
//! `Oms-Kind: takeover`. Payload: each record as a u32 little-endian length and its bytes.

/// LSN of the batch's first record.
pub const FIRST_LSN: &str = "Oms-First-Lsn";
/// The node that wrote the message.
pub const NODE: &str = "Oms-Node";
/// `takeover` on a new primary's fencing marker.
pub const KIND: &str = "Oms-Kind";
pub const KIND_TAKEOVER: &str = "takeover";
/// JetStream's optimistic concurrency header.
pub const EXPECTED_LAST_SEQUENCE: &str = "Nats-Expected-Last-Sequence";

/// Appends `record` to a batch payload.
pub fn push(payload: &mut Vec<u8>, record: &[u8]) {
    let len = u32::try_from(record.len()).expect("a record is far below 4 GiB");
    payload.extend_from_slice(&len.to_le_bytes());
    payload.extend_from_slice(record);
}

/// The records of a batch payload.
pub fn records(mut payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    while !payload.is_empty() {
        let Some((len, rest)) = payload.split_first_chunk::<4>() else {
            return Err(format!("{} stray bytes at the end", payload.len()));
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return Err(format!("a record of {len} bytes with {} left", rest.len()));
        }
        out.push(rest[..len].to_vec());
        payload = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_truncation_is_caught() {
        let mut p = Vec::new();
        for r in [b"a".as_slice(), b"", b"hello"] {
            push(&mut p, r);
        }
        assert_eq!(p, b"\x01\0\0\0a\0\0\0\0\x05\0\0\0hello");
        assert_eq!(records(&p).unwrap(), vec![b"a".to_vec(), vec![], b"hello".to_vec()]);
        assert!(records(&p[..p.len() - 1]).is_err());
        assert!(records(&p[..2]).is_err());
        assert!(records(&[]).unwrap().is_empty());
    }
}
