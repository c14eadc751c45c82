//! The HTTP layer's own bounds, each defined once: the handlers check with them and the
//! OpenAPI document states them. (The domain's bounds, on orders and their fields, are
//! `domain::order::limits`; the server's in-flight cap and timeout are `ApiConfig`.)

/// Largest request body accepted, in bytes (1 MiB).
pub const BODY_BYTES_MAX: usize = 1024 * 1024;

/// Longest `Idempotency-Key`, in characters.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;

/// Longest money literal accepted, in characters (sign, digits, point, exponent).
pub const MONEY_LITERAL_LEN_MAX: usize = 40;

/// Longest shipment or return id accepted in a path, in characters.
pub const CHILD_ID_LEN_MAX: usize = 64;

/// Default page size of lists.
pub const LIST_LIMIT_DEFAULT: usize = 50;
/// Largest page size of lists.
pub const LIST_LIMIT_MAX: usize = 500;
