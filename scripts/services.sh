#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ run on this machine for the distributed
# tests: starts them if installed, installs them from Debian's packages if not,
# then waits until both answer. Idempotent.
set -euo pipefail

log() { echo "services: $*" >&2; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! command -v rabbitmq-server >/dev/null 2>&1; then
    log "installing postgresql and rabbitmq-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql rabbitmq-server >/dev/null
fi

pg_ready() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_ready; then
    log "starting PostgreSQL"
    for version in $(ls /etc/postgresql); do
        pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
fi
for _ in $(seq 1 60); do pg_ready && break; sleep 1; done
pg_ready || { log "PostgreSQL does not answer"; exit 1; }

# A password for TCP logins (a fresh install asks for one), and the test database.
su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
if ! su postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname = 'portal_test'\"" | grep -q 1; then
    su postgres -c "createdb portal_test"
fi

rabbit_ready() { rabbitmq-diagnostics -q ping >/dev/null 2>&1; }
if ! rabbit_ready; then
    log "starting RabbitMQ"
    rabbitmq-server -detached >/dev/null 2>&1 || true
fi
for _ in $(seq 1 120); do rabbit_ready && break; sleep 1; done
rabbit_ready || { log "RabbitMQ does not answer"; exit 1; }
rabbitmqctl await_startup >/dev/null
log "PostgreSQL and RabbitMQ are up"
