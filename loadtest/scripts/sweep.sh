#!/usr/bin/env bash
# How cost grows with work (issue 12): the flash sale against /healthz, at 1, 16, 64 and 256
# connections, on one hot SKU and spread over many SKUs, each run on a freshly started release
# server with a fresh data directory; optionally the seed design on PostgreSQL at 64 clients
# (pg_seed.sh) right after the 64-connection runs, so every ratio is taken within one sweep.
#
# Every flash sale has ample stock, so every request is a sale (orders/s = ok/s); runs stop at
# --duration-secs. The load generator reads the server's CPU time from /proc (--server-pid).
#
# Usage: loadtest/scripts/sweep.sh [OUT_DIR]        (default /tmp/oms-sweep-<time>)
# Env:   DURATION (10) seconds per run; CONNECTIONS ("1 16 64 256"); SPREAD_SKUS (1000);
#        SYNC (always) the server's --sync; PORT (18480); B (<repo>/target/release) where the
#        oms and loadtest binaries are; BUILD (1) builds them first (cargo build --release);
#        PG (auto) runs pg_seed.sh when psql and pgbench reach PostgreSQL, 1 requires it, 0 skips.
# Writes one JSON per run (<connections>-<scenario>.json, the loadtest --json-out), its text
# output, the server's log, and summary.md (the table). Exit status 1 if any run failed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-/tmp/oms-sweep-$(date -u +%Y%m%d-%H%M%S)}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-"1 16 64 256"}
SPREAD_SKUS=${SPREAD_SKUS:-1000}
SYNC=${SYNC:-always}
PORT=${PORT:-18480}
B=${B:-$ROOT/target/release}
BUILD=${BUILD:-1}
PG=${PG:-auto}
# Stock and buyers far beyond what a run can sell: every request is a sale, the time bound ends it.
STOCK=1000000000
BUYERS=1000000000

for tool in curl jq; do
    command -v "$tool" >/dev/null || { echo "sweep.sh: $tool not found" >&2; exit 2; }
done
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release -p oms -p loadtest)
fi
mkdir -p "$OUT"
URL=http://127.0.0.1:$PORT
SERVER_PID=""
DATA=""

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
    if [ -n "$DATA" ]; then
        rm -rf "$DATA"
        DATA=""
    fi
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

# A fresh server on a fresh data directory; waits (at most 60 s) until /readyz answers 200.
start_server() {
    DATA=$(mktemp -d "$OUT/data.XXXXXX")
    "$B/oms" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --sync "$SYNC" 2>"$OUT/$1.server.log" &
    SERVER_PID=$!
    for _ in $(seq 600); do
        if curl -sf "$URL/readyz" >/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "sweep.sh: the server exited; see $OUT/$1.server.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "sweep.sh: the server was not ready within 60 s" >&2
    exit 1
}

FAILED=0
# run NAME CONNECTIONS SCENARIO [FLAGS...]: one loadtest run on a fresh server.
run() {
    local name=$1 connections=$2
    shift 2
    start_server "$name"
    echo "sweep: $name" >&2
    local rc=0
    "$B/loadtest" --url "$URL" --quiet --server-pid "$SERVER_PID" --connections "$connections" \
        --duration-secs "$DURATION" --json-out "$OUT/$name.json" "$@" >"$OUT/$name.txt" || rc=$?
    stop_server
    if [ "$rc" != 0 ]; then
        echo "sweep: $name exited with $rc (see $OUT/$name.txt)" >&2
        FAILED=1
    fi
}

pg_available() {
    command -v pgbench >/dev/null && command -v psql >/dev/null &&
        PGHOST=${PGHOST:-127.0.0.1} PGUSER=${PGUSER:-postgres} PGDATABASE=${PGDATABASE:-test} \
            psql -AtX -c "SELECT 1" >/dev/null 2>&1
}

run_pg() {
    if [ "$PG" = 0 ]; then return 0; fi
    if [ "$PG" = auto ] && ! pg_available; then
        echo "sweep: PostgreSQL not reachable, seed comparison skipped (PG=1 to require it)" >&2
        return 0
    fi
    echo "sweep: pg-seed" >&2
    "$HERE/pg_seed.sh" --clients 64 --duration-secs "$DURATION" --json-out "$OUT/pg-seed.json" \
        >"$OUT/pg-seed.txt" || { echo "sweep: pg_seed.sh failed (see $OUT/pg-seed.txt)" >&2; FAILED=1; }
}

PG_DONE=0
for c in $CONNECTIONS; do
    run "$c-health" "$c" health
    run "$c-hot" "$c" flash-sale --skus 1 --stock "$STOCK" --buyers "$BUYERS"
    run "$c-spread" "$c" flash-sale --skus "$SPREAD_SKUS" --stock "$STOCK" --buyers "$BUYERS"
    if [ "$c" = 64 ]; then run_pg; PG_DONE=1; fi
done
if [ "$PG_DONE" = 0 ]; then run_pg; fi

"$HERE/sweep_summary.sh" "$OUT" >"$OUT/summary.md"
cat "$OUT/summary.md"
echo "sweep: results in $OUT" >&2
exit "$FAILED"
