#!/usr/bin/env bash
# The OpenAPI document as a contract: a stock fuzzer (schemathesis, from PyPI, in
# a virtual environment made here) drives every operation of the embedded
# platform with an operator's token. It fails on a 5xx, a status the document
# does not list, a content type or a body outside the documented schema.
# Expects the debug binary built (scripts/test.sh has run cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/contract-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
    echo "contract: installing schemathesis into $venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check 'schemathesis>=4,<5'
fi

bin="$PWD/target/debug/portal"
[ -x "$bin" ] || cargo build --locked --bin portal
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export PORTAL_HTTP__BIND="127.0.0.1:$port" PORTAL_TELEMETRY__LOG_FILTER=warn
(cd "$dir" && exec "$bin" serve) > "$dir/portal.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health/ready', timeout=1)" 2>/dev/null && break
    sleep 0.2
done
token=$(cd "$dir" && "$bin" token --role operator_admin --subject contract-fuzzer)

# Run from the scratch directory: schemathesis keeps its caches beside it.
st="$PWD/$venv/bin/schemathesis"
cd "$dir"
"$st" run "http://127.0.0.1:$port/api/docs/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "${CONTRACT_MAX_EXAMPLES:-25}" \
    --seed "${CONTRACT_SEED:-1}" \
    --workers 2 \
    --no-color \
    --warnings off \
    --suppress-health-check all \
    --generation-database none
