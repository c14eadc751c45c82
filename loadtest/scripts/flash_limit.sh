#!/usr/bin/env bash
# What the flash-sale limit check costs (issue 16): the same flash sale with and without an
# engine sale around it, alternated on freshly started release servers within one run.
#
# Both variants: one hot SKU with ample stock, USERS customers (buyer i is customer i mod
# USERS), 64 connections, every request a sale. "plain" has no sale; "limited" sells the SKU in
# a flash sale with a per_customer_limit no customer reaches (so every request is still a
# sale and the only difference is the limit check). Then one run with a limit that binds
# ("binding": 2 units per customer) shows the refusals.
#
# Usage: loadtest/scripts/flash_limit.sh [OUT_DIR]     (default /tmp/oms-flash-limit-<time>)
# Env:   DURATION (10) seconds per run; PAIRS (3) plain/limited pairs; USERS (100000);
#        BINDING_USERS (1000) customers of the binding run;
#        CONNECTIONS (64); SYNC (always); PORT (18490); B (<repo>/target/release).
# Writes <variant>-<i>.json (loadtest --json-out) and summary.md (medians and the ratio).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=${1:-/tmp/oms-flash-limit-$(date -u +%Y%m%d-%H%M%S)}
DURATION=${DURATION:-10}
PAIRS=${PAIRS:-3}
USERS=${USERS:-100000}
CONNECTIONS=${CONNECTIONS:-64}
SYNC=${SYNC:-always}
PORT=${PORT:-18490}
B=${B:-$ROOT/target/release}
URL=http://127.0.0.1:$PORT
mkdir -p "$OUT"
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

start_server() {
    DATA=$(mktemp -d "$OUT/data.XXXXXX")
    "$B/oms" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --sync "$SYNC" 2>"$OUT/$1.server.log" &
    SERVER_PID=$!
    for _ in $(seq 600); do
        if curl -sf "$URL/readyz" >/dev/null; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited; see $OUT/$1.server.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "the server was not ready within 60 s" >&2
    exit 1
}

# run NAME [FLASH-SALE FLAGS...]
run() {
    local name=$1
    shift
    start_server "$name"
    "$B/loadtest" --url "$URL" --connections "$CONNECTIONS" --duration-secs "$DURATION" --quiet \
        --server-pid "$SERVER_PID" --json-out "$OUT/$name.json" \
        flash-sale --stock 1000000000 --buyers 1000000000 --users "${RUN_USERS:-$USERS}" "$@" >"$OUT/$name.txt" 2>&1 || true
    stop_server
    jq -r '"\(.scenario) ok/s=\(.ok_per_sec|floor) cpu_us/req=\(.server_cpu_us_per_request) passed=\(.passed)"' \
        "$OUT/$name.json" | sed "s/^/$name: /" >&2
}

for i in $(seq "$PAIRS"); do
    run "plain-$i"
    run "limited-$i" --per-customer-limit 1000000
done
RUN_USERS=${BINDING_USERS:-1000} run binding --per-customer-limit 2

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { for f in "$OUT"/"$1"-*.json; do jq -r "$2" "$f"; done | median; }
P_OK=$(field plain .ok_per_sec)
L_OK=$(field limited .ok_per_sec)
P_CPU=$(field plain .server_cpu_us_per_request)
L_CPU=$(field limited .server_cpu_us_per_request)
{
    echo "| variant | ok/s (median of $PAIRS) | server CPU us/request (median) |"
    echo "| --- | --- | --- |"
    echo "| plain (no sale) | $P_OK | $P_CPU |"
    echo "| limited (sale, limit not reached) | $L_OK | $L_CPU |"
    awk -v p="$P_OK" -v l="$L_OK" -v pc="$P_CPU" -v lc="$L_CPU" 'BEGIN {
        printf "\nthroughput cost %.1f %%, CPU cost %.1f %%\n", 100 * (p - l) / p, 100 * (lc - pc) / pc }'
    echo
    jq -r '"binding (limit 2, '"${BINDING_USERS:-1000}"' customers): ok/s \(.ok_per_sec|floor), requests/s \(.requests_per_sec|floor), rejected \(.counts.rejected), errors \(.counts.errors), passed \(.passed)"' "$OUT/binding.json"
} | tee "$OUT/summary.md"
