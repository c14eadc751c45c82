//! A warehouse: where stock is kept, where it ships from, and how placement ranks it.

use super::Millis;
use super::ids::WarehouseId;
use serde::{Deserialize, Serialize};

/// Serialized field by field in this order (postcard): part of every `WarehouseUpserted`
/// record and every snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warehouse {
    pub id: WarehouseId,
    pub name: String,
    pub country: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Lower numbers are preferred when distance does not decide.
    pub priority: i64,
    /// Carrier for shipments from this warehouse; `standard` when unset.
    pub carrier: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}
