#!/usr/bin/env bash
# The WSDLs as a contract: python zeep (from PyPI, in a virtual environment made
# here) loads each served WSDL and calls every operation against the real
# binary, which signs its answers with a ГОСТ key made here; then signxml and
# lxml with the openssl command sign requests the gateway must verify, and
# check the gateway's signatures (tests/soap/test_signatures.py). `scripts/soap.sh embedded`: one process, SQLite, in-process bus.
# `scripts/soap.sh distributed`: payments and gateway as separate processes on
# PostgreSQL and RabbitMQ (scripts/services.sh has started them).
# Expects the debug binary built (scripts/test.sh has run cargo test).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-embedded}"

venv=target/soap-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import zeep, signxml' 2>/dev/null; then
    echo "soap: installing zeep and signxml into $venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        rm -rf "$venv"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check 'zeep>=4.2,<5' 'signxml>=4,<5'
fi

bin="$PWD/target/debug/portal"
[ -x "$bin" ] || cargo build --locked --bin portal
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() {
    for _ in $(seq 1 150); do
        python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$1/health/ready', timeout=1)" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "soap: the platform on port $1 did not become ready"; cat "$dir"/*.log; return 1
}
export PORTAL_TELEMETRY__LOG_FILTER=warn
# The ГОСТ engine (scripts/build-deps.sh installs it), for the platform and the
# openssl command alike; the gateway signs with a ГОСТ key made here.
export OPENSSL_CONF="$PWD/deploy/openssl-gost.cnf"
openssl req -x509 -newkey gost2012_256 -pkeyopt paramset:A -md_gost12_256 -nodes -days 30 \
    -keyout "$dir/gateway.key" -out "$dir/gateway.pem" -subj "/CN=TMNPORTAL" >/dev/null 2>&1 || {
    echo "soap: openssl cannot make a ГОСТ key: is libengine-gost-openssl installed (bash scripts/build-deps.sh)?"
    exit 1
}
export PORTAL_GATEWAY__SIGNING_KEY_FILE="$dir/gateway.key"
export PORTAL_GATEWAY__SIGNING_CERT_FILE="$dir/gateway.pem"

if [ "$mode" = distributed ]; then
    run=$(date +%s)_$$
    export PORTAL_STORAGE__DATABASE_URL="${PORTAL_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/portal_test}"
    export PORTAL_BUS__BACKEND=rabbitmq
    export PORTAL_BUS__AMQP_URL="${PORTAL_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"
    export PORTAL_BUS__EXCHANGE="zeep_$run"
    export PORTAL_SERVICES__PAYMENTS__SCHEMA="zeep_payments_$run"
    export PORTAL_SERVICES__GATEWAY__SCHEMA="zeep_gateway_$run"
    export PORTAL_SERVICES__MEALS__SCHEMA="zeep_meals_$run"
    export PORTAL_SECRETS__KEYS__Z1="emVlcC10ZXN0LWtleS1vZi10aGlydHktdHdvLWJ5dGU"
    export PORTAL_SECRETS__CURRENT=z1
    payments_port=$(free_port)
    gateway_port=$(free_port)
    meals_port=$(free_port)
    (cd "$dir" && PORTAL_HTTP__BIND="127.0.0.1:$payments_port" exec "$bin" serve --service payments) > "$dir/payments.log" 2>&1 &
    pids+=($!)
    (cd "$dir" && PORTAL_HTTP__BIND="127.0.0.1:$meals_port" exec "$bin" serve --service meals) > "$dir/meals.log" 2>&1 &
    pids+=($!)
    (cd "$dir" && PORTAL_HTTP__BIND="127.0.0.1:$gateway_port" exec "$bin" serve --service gateway) > "$dir/gateway.log" 2>&1 &
    pids+=($!)
    wait_ready "$payments_port"
    wait_ready "$gateway_port"
    wait_ready "$meals_port"
else
    payments_port=$(free_port)
    gateway_port=$payments_port
    meals_port=$payments_port
    (cd "$dir" && PORTAL_HTTP__BIND="127.0.0.1:$payments_port" exec "$bin" serve) > "$dir/portal.log" 2>&1 &
    pids+=($!)
    wait_ready "$payments_port"
fi

operator=$(cd "$dir" && "$bin" token --role operator_admin --subject soap-test)
muni=$(cd "$dir" && "$bin" token --role municipal_officer --subject soap-muni --municipality tyumen)
admin=$(cd "$dir" && "$bin" token --role meal_admin --subject soap-admin --school zs1)
"$venv/bin/python" - "$payments_port" "$gateway_port" "$operator" "$meals_port" "$muni" "$admin" <<'PY'
import json, sys, urllib.request
pay_port, gw_port, operator, meals_port, muni, admin = sys.argv[1:7]
def call(port, method, path, token, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return r.status
call(pay_port, "POST", "/api/payments/accounts", operator, {"account": "ZEEP-1", "student_name": "Петров Пётр",
    "school": "school-z", "class_name": "1А", "municipality": "tyumen", "organizer": "org-z"})
call(gw_port, "PUT", "/api/gateway/participants/BANK01", operator, {"name": "Банк", "inn": "7707083893",
    "ogrn": "1027700132195", "kind": "bank", "contour": "production", "bank": "zeep-bank",
    "contacts": {"name": "Иванов Иван", "phone": "+7 345 200-00-00", "email": "it@bank.example"}})
for op in ("banks.Check", "banks.Pay", "banks.Cancel", "banks.UploadRegistry", "banks.RegistryState"):
    call(gw_port, "PUT", f"/api/gateway/participants/BANK01/rights/{op}", operator)
contacts = {"name": "Иванов Иван", "phone": "+7 345 200-00-00", "email": "it@agency.example"}
call(gw_port, "PUT", "/api/gateway/participants/AGENCY1", operator, {"name": "ИС Департамента", "inn": "7707083893",
    "ogrn": "1027700132195", "kind": "agency", "contour": "production", "contacts": contacts})
for op in ("unip.ImportCharge", "unip.CancelCharge", "unip.ExportPayments"):
    call(gw_port, "PUT", f"/api/gateway/participants/AGENCY1/rights/{op}", operator)
call(pay_port, "PUT", "/api/payments/unip/suppliers/AGENCY1", operator, {"prefix": "ZEEP0001"})
call(gw_port, "PUT", "/api/gateway/participants/CATERER1", operator, {"name": "Комбинат питания", "inn": "7707083893",
    "ogrn": "1027700132195", "kind": "caterer", "contour": "production", "organizer": "org-z", "contacts": contacts})
for op in ("caterers.UploadCatalog", "caterers.SetDayMenu", "caterers.Procurement", "caterers.ClassRequests"):
    call(gw_port, "PUT", f"/api/gateway/participants/CATERER1/rights/{op}", operator)
d = "/api/meals/municipalities/tyumen"
call(meals_port, "PUT", f"{d}/menu-types/standard", muni, {"name": "Основное"})
call(meals_port, "PUT", f"{d}/age-categories/7-11", muni, {"name": "7–11 лет", "min_age": 7, "max_age": 11})
call(meals_port, "PUT", "/api/meals/schools/zs1", muni, {"municipality": "tyumen", "name": "Школа zeep"})
call(meals_port, "PUT", "/api/meals/schools/zs1/organizer", admin, {"organizer": "org-z"})
PY
"$venv/bin/python" tests/soap/test_gateway.py "http://127.0.0.1:$gateway_port"
"$venv/bin/python" tests/soap/test_signatures.py "http://127.0.0.1:$gateway_port" "$operator" "$dir/gateway.pem"

# The log of what just happened is intact.
(cd "$dir" && "$bin" gateway verify-log)
