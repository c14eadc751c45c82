//! The PostgreSQL side: connect, migrate, and write a batch of [`Changes`] together with the
//! log position it reaches, in one transaction.
//!
//! Exactly once: the position row is locked (`FOR UPDATE`) at the start of every transaction
//! and must be where the projector believes it is; rows and the new position commit together
//! or not at all. So after a crash the stored position names exactly the records whose rows
//! are in the tables, and a second projector writing to the same database (a mistake) finds
//! the position moved and stops instead of applying records twice.

use super::ReadModelError;
use super::projection::Changes;
use super::statements::statements;
use tokio_postgres::{Client, NoTls, Transaction};

mod embedded {
    refinery::embed_migrations!("src/read_model/migrations");
}

/// The row of `read_model_position` this engine's projection uses.
pub const POSITION_NAME: &str = "oms";

/// Every table of the read model, children first (the order `TRUNCATE` needs none, but a
/// reader does: the same list is the documentation's).
pub const TABLES: [&str; 12] = [
    "refunds",
    "return_items",
    "returns",
    "shipment_items",
    "shipments",
    "payments",
    "order_status_history",
    "order_item_allocations",
    "order_items",
    "orders",
    "inventory",
    "warehouses",
];

/// A connection to the read model's database.
pub struct Writer {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Writer {
    /// Connects (without TLS: the database is expected on a private network or socket).
    pub async fn connect(url: &str) -> Result<Writer, ReadModelError> {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "read model: connection to PostgreSQL ended");
            }
        });
        Ok(Writer { client, connection })
    }

    /// Applies the migrations this build has and the database lacks (refinery's history
    /// table records which ran).
    pub async fn migrate(&mut self) -> Result<(), ReadModelError> {
        let report = embedded::migrations::runner().run_async(&mut self.client).await?;
        for m in report.applied_migrations() {
            tracing::info!(migration = %m, "read model: migration applied");
        }
        Ok(())
    }

    /// The stored position: the last LSN whose rows are in the tables, `None` if the read
    /// model was never written (or was reset for a rebuild).
    pub async fn position(&self) -> Result<Option<u64>, ReadModelError> {
        let row = self
            .client
            .query_opt("SELECT lsn FROM read_model_position WHERE name = $1", &[&POSITION_NAME])
            .await?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    /// Writes `changes` and moves the position from `from` to `changes.last_lsn`, in one
    /// transaction. `from` is `None` when no position is stored yet.
    pub async fn write(&mut self, from: Option<u64>, changes: &Changes) -> Result<(), ReadModelError> {
        self.write_all(from, std::slice::from_ref(changes)).await
    }

    /// Writes every piece of `chunks` and moves the position from `from` to the last piece's
    /// `last_lsn`, in one transaction.
    pub async fn write_all(&mut self, from: Option<u64>, chunks: &[Changes]) -> Result<(), ReadModelError> {
        let tx = self.client.transaction().await?;
        check_position(&tx, from).await?;
        for c in chunks {
            run(&tx, c).await?;
        }
        store_position(&tx, chunks.last().map_or(0, |c| c.last_lsn)).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Empties every table and writes `chunks` (a whole state, in pieces), with the position
    /// of the last, in one transaction: readers see the old tables until it commits.
    pub async fn rebuild(&mut self, chunks: &[Changes]) -> Result<(), ReadModelError> {
        let tx = self.client.transaction().await?;
        tx.batch_execute(&format!("TRUNCATE {}", TABLES.join(", "))).await?;
        tx.execute("DELETE FROM read_model_position WHERE name = $1", &[&POSITION_NAME])
            .await?;
        for c in chunks {
            run(&tx, c).await?;
        }
        store_position(&tx, chunks.last().map_or(0, |c| c.last_lsn)).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn check_position(tx: &Transaction<'_>, from: Option<u64>) -> Result<(), ReadModelError> {
    let row = tx
        .query_opt(
            "SELECT lsn FROM read_model_position WHERE name = $1 FOR UPDATE",
            &[&POSITION_NAME],
        )
        .await?;
    let found = row.map(|r| r.get::<_, i64>(0) as u64);
    if found != from {
        return Err(ReadModelError::PositionMoved { expected: from, found });
    }
    Ok(())
}

async fn store_position(tx: &Transaction<'_>, lsn: u64) -> Result<(), ReadModelError> {
    let lsn = i64::try_from(lsn).expect("an LSN fits in bigint");
    tx.execute(
        "INSERT INTO read_model_position (name, lsn) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET lsn = EXCLUDED.lsn, updated_at = now()",
        &[&POSITION_NAME, &lsn],
    )
    .await?;
    Ok(())
}

async fn run(tx: &Transaction<'_>, changes: &Changes) -> Result<(), ReadModelError> {
    for s in statements(changes) {
        tx.execute(s.sql, &s.args()).await?;
    }
    Ok(())
}
