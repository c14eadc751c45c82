#!/usr/bin/env bash
# The markdown table of a sweep (sweep.sh) from its JSON files; rerun it on any sweep directory.
#
# Usage: loadtest/scripts/sweep_summary.sh OUT_DIR
# Per connection count: /healthz, then the flash sale on one hot SKU and spread over many, with
# successful requests per second (orders/s for the sales), client p99, the ratio to /healthz at
# the same connections, server CPU per request (from /proc) and its ratio to /healthz.
set -euo pipefail

OUT=${1:?usage: sweep_summary.sh OUT_DIR}
command -v jq >/dev/null || { echo "sweep_summary.sh: jq not found" >&2; exit 2; }

# One tab-separated line per run: connections, kind, skus, ok/s, p99 ms, server us/request, errors, passed, secs.
rows() {
    for f in "$OUT"/*-health.json "$OUT"/*-hot.json "$OUT"/*-spread.json; do
        [ -e "$f" ] || continue
        local kind
        kind=$(basename "$f" .json)
        kind=${kind#*-}
        jq -r --arg kind "$kind" '[.mode.connections, $kind, (.extra.skus // 0), .ok_per_sec,
            .latency_all.p99_ms, (.server_cpu_us_per_request // "n/a"), .counts.errors, .passed,
            .elapsed_secs] | @tsv' "$f"
    done | sort -t$'\t' -k1,1n -k2,2
}

echo "| connections | scenario | ok/s | p99 ms | of /healthz | server CPU us/request | CPU vs /healthz | errors | checks |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
rows | awk -F'\t' '
    { line[NR] = $0 }
    $2 == "health" { health_ok[$1] = $4; health_cpu[$1] = $6 }
    END {
        for (i = 1; i <= NR; i++) {
            split(line[i], f, "\t")
            c = f[1]; kind = f[2]
            name = kind == "health" ? "`/healthz`" : (kind == "hot" ? "flash sale, 1 SKU" : "flash sale, " f[3] " SKUs")
            ratio = (c in health_ok && health_ok[c] > 0) ? sprintf("%.2f", f[4] / health_ok[c]) : "n/a"
            cpu = f[6] == "n/a" ? "n/a" : sprintf("%.1f", f[6])
            cpu_ratio = (f[6] != "n/a" && health_cpu[c] != "n/a" && health_cpu[c] > 0) ? sprintf("%.2fx", f[6] / health_cpu[c]) : "n/a"
            printf "| %s | %s | %.0f | %.2f | %s | %s | %s | %s | %s |\n", c, name, f[4], f[5], ratio, cpu, cpu_ratio, f[7], (f[8] == "true" ? "pass" : "FAIL")
        }
    }'

if [ -e "$OUT/pg-seed.json" ]; then
    pg=$(jq -r '.orders_per_sec' "$OUT/pg-seed.json")
    echo
    jq -r '"Seed design on PostgreSQL (pgbench, \(.clients) clients, \(.duration_secs) s, synchronous_commit=\(.synchronous_commit)): \(.orders_per_sec | floor) orders/s, latency average \(.latency_avg_ms) ms."' "$OUT/pg-seed.json"
    if [ -e "$OUT/64-hot.json" ]; then
        jq -r --argjson pg "$pg" '"Flash sale on 1 SKU at 64 connections: \(.ok_per_sec | floor) orders/s = \((.ok_per_sec / $pg * 10 | floor) / 10)x the seed design."' "$OUT/64-hot.json"
    fi
fi
