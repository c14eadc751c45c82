//! Warehouses: the registry lives in the core (every pair shares its warehouse's name with
//! it); this module writes it. Upserts are rare and serialized, so created_at and updated_at
//! are decided on fresh state.

use super::core::Core;
use super::error::EngineError;
use super::idempotency::IdemSpec;
use crate::domain::{Entry, FieldError, Record, Rejection, Warehouse, WarehouseId};
use std::sync::Arc;

/// A warehouse as a caller asks for it: everything but its times, which the engine decides.
#[derive(Clone, Debug)]
pub struct WarehouseInput {
    pub id: WarehouseId,
    pub name: String,
    pub country: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub priority: i64,
    pub carrier: Option<String>,
}

/// Creates or updates a warehouse: appended, then visible once durable. Run it detached
/// (`core::run_detached`), so a caller going away cannot stop it between its append and the
/// registry's update.
pub(crate) async fn upsert(
    core: Arc<Core>,
    input: WarehouseInput,
    idem: Option<IdemSpec<Warehouse>>,
) -> Result<Warehouse, EngineError> {
    core.check_open()?;
    let _w = core.warehouse_write.lock().await;
    let now = core.clock.now();
    let created_at = core
        .warehouses
        .read()
        .get(&input.id)
        .map(|w| w.created_at)
        .unwrap_or(now);
    let warehouse = Warehouse {
        id: input.id,
        name: input.name,
        country: input.country,
        lat: input.lat,
        lon: input.lon,
        priority: input.priority,
        carrier: input.carrier,
        created_at,
        updated_at: now,
    };
    let idempotency = idem.map(|i| i.record(&warehouse, now));
    let record = Record {
        entry: Entry::WarehouseUpserted {
            warehouse: warehouse.clone(),
        },
        idempotency,
    };
    let durable = core.append(record).await?;
    core.warehouses.write().insert(warehouse.id.clone(), warehouse.clone());
    drop(durable);
    Ok(warehouse)
}

/// `Ok` if warehouse `id` exists, else a validation failure on `field`.
pub(crate) fn require(core: &Core, id: &WarehouseId, field: &str) -> Result<(), EngineError> {
    if core.warehouses.read().contains_key(id) {
        Ok(())
    } else {
        Err(Rejection::Validation(vec![FieldError::new(field, format!("unknown warehouse {id}"))]).into())
    }
}
