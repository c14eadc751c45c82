//! The domain: pure state machines for inventory pairs and orders, the allocation planner, and
//! the records the log stores.
//!
//! Architecture invariant: nothing here does I/O, reads a clock, draws a random number or
//! spawns a task. Time comes in as [`Millis`] arguments and is stored in events, which is what
//! makes replay equal to live running. `decide` functions return events or a [`Rejection`];
//! `apply` functions cannot fail, only assert.

pub mod ids;
pub mod inventory;
pub mod iso4217;
pub mod ledger;
pub mod money;
pub mod order;
pub mod placement;
pub mod record;
pub mod rejection;
pub mod sale;
pub mod state;
pub mod stock_changes;
pub mod warehouse;

use serde::{Deserialize, Serialize};

pub use ids::{Key, OrderId, SaleId, Sku, UserId, WarehouseId};
pub use inventory::{Inventory, InventoryEffect};
pub use ledger::PairLedger;
pub use order::{Order, OrderCommand, OrderEvent, OrderStatus, StatusChange, apply_order_events};
pub use placement::ShortLine;
pub use record::{Entry, IdempotencyRecord, Record};
pub use rejection::{FieldError, Rejection};
pub use state::{EngineState, InvariantViolation};
pub use warehouse::Warehouse;

/// A hash map with foldhash: several times faster than SipHash on the short keys used here
/// (order numbers, SKU names), and still seeded per process against collision attacks.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Milliseconds since the Unix epoch, UTC. The only notion of time the domain knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Millis(pub u64);

impl Millis {
    /// RFC 3339 with millisecond precision, `Z` suffix.
    pub fn rfc3339(self) -> String {
        let secs = (self.0 / 1000) as i64;
        let nanos = ((self.0 % 1000) * 1_000_000) as u32;
        match chrono::DateTime::from_timestamp(secs, nanos) {
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            None => "invalid-time".into(),
        }
    }
}
