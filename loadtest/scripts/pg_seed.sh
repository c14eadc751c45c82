#!/usr/bin/env bash
# The seed design on PostgreSQL, for the "x times the seed" ratio of issue 12.
#
# The seed (shared/seed/) stores orders in PostgreSQL and places an order with two
# transactions: createOrder (insert the order, its item and its first state transition) and
# reserveInventory (lock the SKU's inventory row FOR UPDATE, decrement it, insert the
# reservation). This script creates the seed's tables (its MySQL-style inline INDEX clauses
# written as CREATE INDEX) in a schema of their own, stocks ONE hot SKU with ample stock, and
# has pgbench run exactly those two transactions per order: one pgbench "transaction" is one
# order placed and reserved, so pgbench's tps is orders/s. The seed's RabbitMQ publish is left
# out, which only flatters the seed. Durability as configured on the server
# (synchronous_commit and fsync are printed), like `oms --sync always`.
#
# Usage: loadtest/scripts/pg_seed.sh [--clients N] [--duration-secs S] [--json-out FILE]
# Env: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres), PGDATABASE (test): libpq's own;
#      SCHEMA (oms_seed_bench): dropped and re-created, so nothing else in the database is
#      touched; KEEP=1 keeps it afterwards.
set -euo pipefail

CLIENTS=64
DURATION_SECS=10
JSON_OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --clients) CLIENTS=$2; shift 2 ;;
        --duration-secs) DURATION_SECS=$2; shift 2 ;;
        --json-out) JSON_OUT=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "pg_seed.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGDATABASE=${PGDATABASE:-test}
SCHEMA=${SCHEMA:-oms_seed_bench}
case "$SCHEMA" in *[!a-z0-9_]*|"") echo "pg_seed.sh: SCHEMA must be [a-z0-9_]+" >&2; exit 2 ;; esac
for tool in psql pgbench; do
    command -v "$tool" >/dev/null || { echo "pg_seed.sh: $tool not found" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/oms-pg-seed.XXXXXX)
cleanup() {
    rm -rf "$WORK"
    if [ "${KEEP:-0}" != 1 ]; then
        psql -qX -v ON_ERROR_STOP=1 -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
    fi
}
trap cleanup EXIT

# The seed's schema (shared/seed, "Database Schema"), plus the `inventory` table its
# reserveInventory reads and writes (used there, not declared).
psql -qX -v ON_ERROR_STOP=1 >/dev/null <<SQL
SET client_min_messages = warning;
DROP SCHEMA IF EXISTS $SCHEMA CASCADE;
CREATE SCHEMA $SCHEMA;
SET search_path = $SCHEMA;
CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    order_number VARCHAR(50) UNIQUE NOT NULL,
    user_id BIGINT NOT NULL,
    status VARCHAR(50) DEFAULT 'pending',
    total_amount DECIMAL(10, 2) NOT NULL,
    tax_amount DECIMAL(10, 2) DEFAULT 0,
    shipping_amount DECIMAL(10, 2) DEFAULT 0,
    discount_amount DECIMAL(10, 2) DEFAULT 0,
    payment_method VARCHAR(50),
    payment_status VARCHAR(50) DEFAULT 'pending',
    shipping_address JSONB,
    billing_address JSONB,
    created_at TIMESTAMP DEFAULT NOW(),
    updated_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX orders_idx_user ON orders (user_id);
CREATE INDEX orders_idx_status ON orders (status);
CREATE INDEX orders_idx_created ON orders (created_at);
CREATE TABLE order_items (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT REFERENCES orders(id),
    product_id BIGINT NOT NULL,
    sku VARCHAR(100) NOT NULL,
    quantity INTEGER NOT NULL,
    unit_price DECIMAL(10, 2) NOT NULL,
    discount DECIMAL(10, 2) DEFAULT 0,
    warehouse_id BIGINT,
    fulfillment_status VARCHAR(50) DEFAULT 'pending',
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE TABLE order_state_transitions (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT REFERENCES orders(id),
    from_state VARCHAR(50),
    to_state VARCHAR(50) NOT NULL,
    reason TEXT,
    metadata JSONB,
    created_by BIGINT,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX transitions_idx_order ON order_state_transitions (order_id);
CREATE INDEX transitions_idx_created ON order_state_transitions (created_at);
CREATE TABLE inventory_reservations (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT REFERENCES orders(id),
    product_id BIGINT NOT NULL,
    warehouse_id BIGINT NOT NULL,
    quantity INTEGER NOT NULL,
    status VARCHAR(50) DEFAULT 'reserved',
    expires_at TIMESTAMP,
    created_at TIMESTAMP DEFAULT NOW()
);
CREATE INDEX reservations_idx_order ON inventory_reservations (order_id);
CREATE INDEX reservations_idx_expires ON inventory_reservations (expires_at);
CREATE TABLE inventory (
    product_id BIGINT NOT NULL,
    warehouse_id BIGINT NOT NULL,
    quantity BIGINT NOT NULL,
    PRIMARY KEY (product_id, warehouse_id)
);
-- The hot SKU, with stock for every order the run can place.
INSERT INTO inventory VALUES (1, 1, 1000000000000);
SQL

# One order: the seed's createOrder, then its reserveInventory for one unit of the hot SKU.
cat >"$WORK/order.sql" <<'SQL'
\set user_id random(1, 1000000)
BEGIN;
INSERT INTO orders (order_number, user_id, total_amount, tax_amount, shipping_amount,
                    shipping_address, billing_address, status)
    VALUES ('ORD-' || gen_random_uuid(), :user_id, 9.99, 0, 0,
            '{"line1": "1 Main St", "city": "Springfield", "country": "US"}', NULL, 'pending')
    RETURNING id AS order_id \gset
INSERT INTO order_items (order_id, product_id, sku, quantity, unit_price)
    VALUES (:order_id, 1, 'flash-sku', 1, 9.99);
INSERT INTO order_state_transitions (order_id, from_state, to_state, reason, metadata)
    VALUES (:order_id, NULL, 'pending', 'Order created', '{}');
COMMIT;
BEGIN;
SELECT quantity AS available FROM inventory WHERE product_id = 1 AND warehouse_id = 1 FOR UPDATE \gset
UPDATE inventory SET quantity = quantity - 1 WHERE product_id = 1 AND warehouse_id = 1 AND quantity >= 1;
INSERT INTO inventory_reservations (order_id, product_id, warehouse_id, quantity, expires_at)
    VALUES (:order_id, 1, 1, 1, NOW() + INTERVAL '15 minutes');
COMMIT;
SQL

SYNC_COMMIT=$(psql -AtX -c "SHOW synchronous_commit")
FSYNC=$(psql -AtX -c "SHOW fsync")
echo "pgbench: seed design, hot SKU, $CLIENTS clients, ${DURATION_SECS}s, synchronous_commit=$SYNC_COMMIT fsync=$FSYNC" >&2
PGOPTIONS="-c search_path=$SCHEMA" pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION_SECS" \
    -f "$WORK/order.sql" >"$WORK/pgbench.out" 2>"$WORK/pgbench.err" || {
    cat "$WORK/pgbench.err" >&2
    exit 1
}
cat "$WORK/pgbench.out"

field() { sed -n "s/^$1 = \([0-9.]*\).*/\1/p" "$WORK/pgbench.out" | head -1; }
TPS=$(field tps)
LATENCY_MS=$(field "latency average")
PROCESSED=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/pgbench.out")
FAILED=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$WORK/pgbench.out")
ORDERS=$(psql -AtX -c "SELECT count(*) FROM $SCHEMA.inventory_reservations")
[ -n "$TPS" ] || { echo "pg_seed.sh: no tps in pgbench's output" >&2; exit 1; }
echo "seed design on PostgreSQL: $TPS orders/s ($ORDERS orders reserved), latency average $LATENCY_MS ms"

if [ -n "$JSON_OUT" ]; then
    cat >"$JSON_OUT" <<JSON
{
  "scenario": "pg-seed",
  "clients": $CLIENTS,
  "duration_secs": $DURATION_SECS,
  "orders_per_sec": $TPS,
  "latency_avg_ms": ${LATENCY_MS:-null},
  "transactions": ${PROCESSED:-null},
  "failed_transactions": ${FAILED:-0},
  "orders_reserved": $ORDERS,
  "synchronous_commit": "$SYNC_COMMIT",
  "fsync": "$FSYNC"
}
JSON
fi
