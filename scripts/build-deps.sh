#!/usr/bin/env bash
# What the build and the tests need from the system: libxml2's headers and
# pkg-config (the gateway validates SOAP requests against their XSDs with
# libxml2), and the ГОСТ engine for OpenSSL (libengine-gost-openssl: the
# gateway verifies and makes ГОСТ Р 34.10-2012 XML signatures; the tests make
# their ГОСТ keys with it). Installs them from Debian's packages when missing.
# Idempotent.
set -euo pipefail
missing=()
pkg-config --exists libxml-2.0 2>/dev/null || missing+=(libxml2-dev pkg-config)
dpkg -s libengine-gost-openssl >/dev/null 2>&1 || missing+=(libengine-gost-openssl)
if [ ${#missing[@]} -gt 0 ]; then
    echo "build-deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
