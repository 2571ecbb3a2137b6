#!/usr/bin/env bash
# The whole test suite in both modes: embedded (SQLite, in-process bus) and
# distributed (PostgreSQL, RabbitMQ, services as separate processes). Brings up
# PostgreSQL and RabbitMQ itself.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/build-deps.sh
bash scripts/services.sh

export PORTAL_TEST_DATABASE_URL="${PORTAL_TEST_DATABASE_URL:-postgres://postgres:postgres@127.0.0.1:5432/portal_test}"
export PORTAL_TEST_AMQP_URL="${PORTAL_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}"

echo "== embedded mode: SQLite and the in-process bus"
PORTAL_TEST_MODE=embedded cargo test --workspace --locked

echo "== the OpenAPI document as a contract: schemathesis against the embedded platform"
bash scripts/contract.sh

echo "== the WSDLs as a contract: zeep against the embedded platform"
bash scripts/soap.sh embedded

echo "== distributed mode: PostgreSQL and RabbitMQ"
PORTAL_TEST_MODE=distributed cargo test --workspace --locked

echo "== the WSDLs as a contract: zeep against payments, meals and gateway as separate processes"
bash scripts/soap.sh distributed
