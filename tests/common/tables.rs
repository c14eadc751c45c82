//! The read model's tables as lines of text, one per row, sorted: what a test compares with
//! the same lines built from what the engine or the API reports. Shared by two test binaries
//! (`tests/engine`, `tests/http`), each using part of it.
#![allow(dead_code)]

use rust_decimal::Decimal;
use tokio_postgres::Client;

fn d(v: Decimal) -> String {
    v.normalize().to_string()
}

/// Orders with their figures and the number of their history rows.
pub async fn orders(db: &Client) -> Vec<String> {
    let rows = db
        .query(
            "SELECT o.id, o.status, o.subtotal_amount, o.total_amount, o.captured_amount, o.refunded_amount,
                    (SELECT count(*) FROM order_status_history h WHERE h.order_id = o.id)
             FROM orders o ORDER BY o.id",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let (id, status): (String, String) = (r.get(0), r.get(1));
            let history: i64 = r.get(6);
            order_line(&id, &status, [r.get(2), r.get(3), r.get(4), r.get(5)], history as usize)
        })
        .collect()
}

/// `id status subtotal total captured refunded history=N`.
pub fn order_line(id: &str, status: &str, amounts: [Decimal; 4], history: usize) -> String {
    let [sub, total, captured, refunded] = amounts.map(d);
    format!("{id} {status} sub={sub} total={total} captured={captured} refunded={refunded} history={history}")
}

/// Lines and their allocations: `order line sku qty [wh:qty …]`.
pub async fn items(db: &Client) -> Vec<String> {
    let rows = db
        .query(
            "SELECT i.order_id, i.line_no, i.sku, i.quantity,
                    coalesce(string_agg(a.warehouse_id || ':' || a.quantity, ' ' ORDER BY a.alloc_no), '')
             FROM order_items i LEFT JOIN order_item_allocations a
               ON a.order_id = i.order_id AND a.line_no = i.line_no
             GROUP BY i.order_id, i.line_no, i.sku, i.quantity ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let (o, n, sku, q, a): (String, i32, String, i64, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            format!("{o} {n} {sku} {q} [{a}]")
        })
        .collect()
}

/// Shipments with their items: `id order wh status [sku:qty …]`.
pub async fn shipments(db: &Client) -> Vec<String> {
    let rows = db
        .query(
            "SELECT s.id, s.order_id, s.warehouse_id, s.status,
                    coalesce(string_agg(i.sku || ':' || i.quantity, ' ' ORDER BY i.line_no), '')
             FROM shipments s LEFT JOIN shipment_items i ON i.shipment_id = s.id
             GROUP BY s.id, s.order_id, s.warehouse_id, s.status ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let (id, o, wh, st, items): (String, String, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            format!("{id} {o} {wh} {st} [{items}]")
        })
        .collect()
}

/// Refunds: `id order amount status`.
pub async fn refunds(db: &Client) -> Vec<String> {
    let rows = db
        .query("SELECT id, order_id, amount, status FROM refunds ORDER BY id", &[])
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let (id, o, amount, st): (String, String, Decimal, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
            format!("{id} {o} {} {st}", d(amount))
        })
        .collect()
}

/// Pairs: `sku@wh on_hand reserved available`, zero pairs left out.
pub async fn inventory(db: &Client) -> Vec<String> {
    let rows = db
        .query(
            "SELECT sku, warehouse_id, on_hand, reserved, available FROM inventory
             WHERE on_hand <> 0 OR reserved <> 0 ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            let (sku, wh, on_hand, reserved, available): (String, String, i64, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            inventory_line(&sku, &wh, on_hand as u64, reserved as u64, available as u64)
        })
        .collect()
}

pub fn inventory_line(sku: &str, wh: &str, on_hand: u64, reserved: u64, available: u64) -> String {
    format!("{sku}@{wh} {on_hand} {reserved} {available}")
}

/// History rows that share an order and position: 0 expected (the key forbids them; a
/// transition applied twice would show as a count that differs from the order's history).
pub async fn duplicated_history(db: &Client) -> i64 {
    let row = db
        .query_one(
            "SELECT count(*) FROM (SELECT order_id, seq FROM order_status_history
               GROUP BY 1, 2 HAVING count(*) > 1) d",
            &[],
        )
        .await
        .unwrap();
    row.get(0)
}

/// The stored position.
pub async fn position(db: &Client) -> Option<u64> {
    db.query_opt("SELECT lsn FROM read_model_position WHERE name = 'oms'", &[])
        .await
        .unwrap()
        .map(|r| r.get::<_, i64>(0) as u64)
}
