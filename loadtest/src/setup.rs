//! Setup through the API before a measured phase: warehouses, stock, and
//! running many setup requests concurrently with a bounded number of workers.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use serde_json::json;
use tokio::task::JoinSet;

use crate::api::{Api, Req};
use crate::workload::WarehouseSpec;

/// Runs `f(0..n_items)` on `n_workers` concurrent workers; the first error
/// stops the others from taking new items and is returned.
pub(crate) async fn for_each_concurrent<F, Fut>(n_workers: usize, n_items: usize, f: F) -> Result<()>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send,
{
    let f = Arc::new(f);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..n_workers.clamp(1, n_items.max(1)) {
        let f = f.clone();
        let next = next.clone();
        workers.spawn(async move {
            loop {
                let idx = next.fetch_add(1, Ordering::Relaxed);
                if idx >= n_items {
                    return Ok(());
                }
                if let Err(e) = f(idx).await {
                    // Make the other workers stop at their next item.
                    next.store(n_items, Ordering::Relaxed);
                    return Err(e);
                }
            }
        });
    }
    let mut first_err = None;
    while let Some(joined) = workers.join_next().await {
        let result = joined.context("setup worker panicked")?;
        if let (Err(e), None) = (result, &first_err) {
            first_err = Some(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

pub(crate) async fn put_warehouse(api: &Api, wh: &WarehouseSpec) -> Result<()> {
    let path = format!("/v1/warehouses/{}", wh.id);
    api.must(&Req::put(&path, &wh.body())).await?;
    Ok(())
}

pub(crate) async fn put_stock(api: &Api, sku: &str, warehouse_id: &str, on_hand: u64) -> Result<()> {
    let path = format!("/v1/inventory/{sku}/{warehouse_id}");
    api.must(&Req::put(&path, &json!({ "on_hand": on_hand }))).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn visits_every_item_once() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        for_each_concurrent(4, 100, move |idx| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(idx);
                Ok(())
            }
        })
        .await
        .unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn returns_the_error() {
        let result = for_each_concurrent(2, 10, |idx| async move {
            if idx == 3 {
                anyhow::bail!("item 3 failed")
            }
            Ok(())
        })
        .await;
        assert!(result.unwrap_err().to_string().contains("item 3"));
    }
}
