//! Stream tokens (the signing and checking; the endpoint is `stream_tokens.rs`): short-lived signed tokens that let a browser's `EventSource`, which cannot
//! send an `Authorization` header, follow an event stream. `POST /v1/stream-tokens` (with an
//! API key) mints one; the stream endpoints, and only they, accept it as `?access_token=`.
//!
//! A token is `st1.<expires_ms>.<key_id>.<mac>`: when it expires (milliseconds since the
//! epoch), which API key minted it (the first 8 bytes of the key's SHA-256, hex; removing the
//! key revokes its tokens), and HMAC-SHA256 over the rest under the server's secret, hex.
//! Nothing is stored: verifying is recomputing the MAC.
//!
//! The secret is per data directory (`stream-token.key`, 32 random bytes, created once with
//! mode 0600 next to the log): a token survives a restart, as the log does, and two servers
//! never share one by accident. Without a data directory (tests, embedding) it is random per
//! process. The token is a bearer credential in a URL (access logs, browser history): hence
//! the short lifetime (5 minutes by default) and the narrow scope: it opens streams, which only
//! read, and is refused everywhere else, also as an `Authorization` header.

use crate::domain::Millis;
use axum::http::{HeaderMap, header};
use sha2::{Digest, Sha256};
use std::io::{Read as _, Write as _};
use std::path::Path;
use subtle::ConstantTimeEq;

/// Default lifetime of a token, in milliseconds (5 minutes).
pub const STREAM_TOKEN_TTL_MS_DEFAULT: u64 = 300_000;
/// Longest lifetime a server may be configured with, in milliseconds (1 hour).
pub const STREAM_TOKEN_TTL_MS_MAX: u64 = 3_600_000;
/// The secret's file in the data directory.
pub const SECRET_FILE: &str = "stream-token.key";
/// Bytes of the secret.
pub const SECRET_LEN: usize = 32;
/// The format tag every token starts with.
const TOKEN_VERSION: &str = "st1";
/// Bytes of the key digest a token names its key by.
const KEY_ID_LEN: usize = 8;
/// Longest token accepted for checking, in bytes (a real one is about 100).
pub const TOKEN_LEN_MAX: usize = 256;

/// The server's signing secret and the lifetime of the tokens it mints.
#[derive(Clone)]
pub struct StreamTokens {
    secret: [u8; SECRET_LEN],
    ttl_ms: u64,
}

impl std::fmt::Debug for StreamTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("StreamTokens").field("ttl_ms", &self.ttl_ms).finish()
    }
}

/// Why a presented token was refused (all answered 401; the reason is logged at debug).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefused {
    #[error("not a stream token")]
    Malformed,
    #[error("the token expired")]
    Expired,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the API key that minted the token is no longer configured")]
    KeyRevoked,
}

impl StreamTokens {
    pub fn new(secret: [u8; SECRET_LEN], ttl_ms: u64) -> StreamTokens {
        assert!(
            (1..=STREAM_TOKEN_TTL_MS_MAX).contains(&ttl_ms),
            "stream token TTL out of range"
        );
        StreamTokens { secret, ttl_ms }
    }

    /// A random secret for this process only (no data directory to keep one in).
    pub fn random(ttl_ms: u64) -> std::io::Result<StreamTokens> {
        Ok(StreamTokens::new(random_secret()?, ttl_ms))
    }

    /// The data directory's secret, created on first use (0600, written and synced before it
    /// is renamed into place, so a crash leaves either no file or a whole one).
    pub fn in_dir(dir: &Path, ttl_ms: u64) -> std::io::Result<StreamTokens> {
        let path = dir.join(SECRET_FILE);
        let mut secret = [0u8; SECRET_LEN];
        match std::fs::File::open(&path) {
            Ok(mut f) => {
                f.read_exact(&mut secret)?;
                return Ok(StreamTokens::new(secret, ttl_ms));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        secret = random_secret()?;
        let temp = dir.join(format!("{SECRET_FILE}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&temp)?;
        f.write_all(&secret)?;
        f.sync_all()?;
        std::fs::rename(&temp, &path)?;
        std::fs::File::open(dir)?.sync_all()?;
        Ok(StreamTokens::new(secret, ttl_ms))
    }

    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
    }

    fn mac(&self, payload: &str) -> [u8; 32] {
        hmac_sha256(&self.secret, payload.as_bytes())
    }

    /// A token for the key with digest `key` (None without keys), valid until `now + ttl`.
    pub fn mint(&self, key: Option<&[u8; 32]>, now: Millis) -> (String, Millis) {
        let expires = Millis(now.0.saturating_add(self.ttl_ms));
        let key_id = key.map_or_else(|| "0".repeat(2 * KEY_ID_LEN), |k| hex(&k[..KEY_ID_LEN]));
        let payload = format!("{TOKEN_VERSION}.{}.{key_id}", expires.0);
        let mac = hex(&self.mac(&payload));
        (format!("{payload}.{mac}"), expires)
    }

    /// Checks a presented token at `now` against the configured key digests.
    pub fn verify(&self, token: &str, now: Millis, keys: &[[u8; 32]]) -> Result<(), TokenRefused> {
        if token.len() > TOKEN_LEN_MAX {
            return Err(TokenRefused::Malformed);
        }
        let (payload, mac) = token.rsplit_once('.').ok_or(TokenRefused::Malformed)?;
        let mut parts = payload.split('.');
        let (Some(TOKEN_VERSION), Some(expires), Some(key_id), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRefused::Malformed);
        };
        let expires: u64 = expires.parse().map_err(|_| TokenRefused::Malformed)?;
        let want = hex(&self.mac(payload));
        if !bool::from(want.as_bytes().ct_eq(mac.as_bytes())) {
            return Err(TokenRefused::BadSignature);
        }
        if now.0 >= expires {
            return Err(TokenRefused::Expired);
        }
        if !keys.is_empty() && !keys.iter().any(|k| hex(&k[..KEY_ID_LEN]) == key_id) {
            return Err(TokenRefused::KeyRevoked);
        }
        Ok(())
    }
}

/// SHA-256 of the key in `Authorization: Bearer KEY`, if the header has that form.
pub fn bearer_digest(headers: &HeaderMap) -> Option<[u8; 32]> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| <[u8; 32]>::from(Sha256::digest(key.trim().as_bytes())))
}

/// HMAC-SHA256 (RFC 2104) with a key of at most one block.
fn hmac_sha256(key: &[u8; SECRET_LEN], msg: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut ipad = [0x36u8; BLOCK];
    let mut opad = [0x5cu8; BLOCK];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let inner = Sha256::new().chain_update(ipad).chain_update(msg).finalize();
    Sha256::new().chain_update(opad).chain_update(inner).finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from the operating system's random source.
fn random_secret() -> std::io::Result<[u8; SECRET_LEN]> {
    let mut secret = [0u8; SECRET_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut secret)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> StreamTokens {
        StreamTokens::new([7u8; SECRET_LEN], 300_000)
    }

    #[test]
    fn hmac_matches_rfc_4231_case_1() {
        // RFC 4231 test case 1: key 0x0b * 20, "Hi There" (our key is 32 bytes: pad with zeros,
        // which HMAC does itself, so the known answer holds).
        let mut key = [0u8; SECRET_LEN];
        key[..20].copy_from_slice(&[0x0b; 20]);
        assert_eq!(
            hex(&hmac_sha256(&key, b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let t = tokens();
        let key = [1u8; 32];
        let (token, expires) = t.mint(Some(&key), Millis(1_000));
        assert_eq!(expires, Millis(301_000));
        assert_eq!(t.verify(&token, Millis(300_999), &[key]), Ok(()));
        assert_eq!(t.verify(&token, Millis(301_000), &[key]), Err(TokenRefused::Expired));
    }

    #[test]
    fn tampered_foreign_and_revoked_tokens_are_refused() {
        let t = tokens();
        let key = [1u8; 32];
        let (token, _) = t.mint(Some(&key), Millis(0));
        let later = token.replacen(".300000.", ".900000.", 1);
        assert_eq!(t.verify(&later, Millis(1), &[key]), Err(TokenRefused::BadSignature));
        let other = StreamTokens::new([8u8; SECRET_LEN], 300_000);
        assert_eq!(other.verify(&token, Millis(1), &[key]), Err(TokenRefused::BadSignature));
        assert_eq!(t.verify(&token, Millis(1), &[[2u8; 32]]), Err(TokenRefused::KeyRevoked));
        for bad in ["", "st1", "st1.1.2", "x.1.2.3", "st1.a.b.c.d"] {
            assert_eq!(t.verify(bad, Millis(1), &[key]), Err(TokenRefused::Malformed), "{bad}");
        }
    }

    #[test]
    fn the_secret_file_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!("oms-stream-token-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let a = StreamTokens::in_dir(&dir, 300_000).unwrap();
        let b = StreamTokens::in_dir(&dir, 300_000).unwrap();
        assert_eq!(a.secret, b.secret, "the second start reads the first one's secret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(SECRET_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
