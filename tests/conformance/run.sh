#!/usr/bin/env bash
# Contract conformance: runs schemathesis (every phase: examples, coverage, fuzzing, stateful;
# every check) against a real `oms` server and the OpenAPI document that server serves, twice:
# without API keys and with them. Exits non-zero on any failure.
#
#   tests/conformance/run.sh                # release build, 100 examples per operation
#   OMS_CONFORMANCE_EXAMPLES=20 OMS_CONFORMANCE_PROFILE=debug tests/conformance/run.sh   # CI
#
# Needs python3 (3.9+) with venv; installs the pinned schemathesis into target/conformance-venv.
set -euo pipefail
cd "$(dirname "$0")/../.."

SCHEMATHESIS_VERSION=4.32.5
EXAMPLES=${OMS_CONFORMANCE_EXAMPLES:-100}
PROFILE=${OMS_CONFORMANCE_PROFILE:-release}
SEED=${OMS_CONFORMANCE_SEED:-1}
VENV=target/conformance-venv

if [ ! -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/schemathesis" --version | grep -q "$SCHEMATHESIS_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ "$PROFILE" = release ]; then
  cargo build --release --bin oms
  BIN=target/release/oms
else
  cargo build --bin oms
  BIN=target/debug/oms
fi

WORK=$(mktemp -d)
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT

# Starts the server on a free port with data in $WORK/$1; sets PORT and SERVER_PID.
start_server() {
  local name=$1
  mkdir -p "$WORK/$name"
  "$BIN" serve --data-dir "$WORK/$name/data" --listen 127.0.0.1:0 --sync none \
    >"$WORK/$name/server.log" 2>&1 &
  SERVER_PID=$!
  PORT=
  for _ in $(seq 1 200); do
    PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$WORK/$name/server.log" | head -1 | cut -d: -f2 || true)
    if [ -n "$PORT" ] && curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; then
      return 0
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "the server did not become ready:" >&2
  cat "$WORK/$name/server.log" >&2
  return 1
}

# Runs schemathesis against the server; extra arguments go to schemathesis.
check() {
  local name=$1
  shift
  echo "== conformance: $name (schemathesis $SCHEMATHESIS_VERSION, $EXAMPLES examples per operation)"
  "$VENV/bin/schemathesis" --config-file tests/conformance/schemathesis.toml run \
    "http://127.0.0.1:$PORT/v1/openapi.json" \
    --phases examples,coverage,fuzzing,stateful --checks all \
    --max-examples "$EXAMPLES" --seed "$SEED" --generation-deterministic \
    --no-color --report junit --report-dir "$WORK/$name/report" "$@"
}

status=0
unset OMS_API_KEYS
start_server open
check "without API keys" || status=1
stop_server

KEY=conformance-key
export OMS_API_KEYS=$KEY
start_server protected
check "with API keys" -H "Authorization: Bearer $KEY" || status=1
stop_server
unset OMS_API_KEYS

exit $status
