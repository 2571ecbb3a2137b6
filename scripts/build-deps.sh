#!/usr/bin/env bash
# What the build needs from the system: libxml2's headers and pkg-config (the
# gateway validates SOAP requests against their XSDs with libxml2). Installs
# them from Debian's packages when missing. Idempotent.
set -euo pipefail
if ! pkg-config --exists libxml-2.0 2>/dev/null; then
    echo "build-deps: installing libxml2-dev and pkg-config" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq libxml2-dev pkg-config >/dev/null
fi
