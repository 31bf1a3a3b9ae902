#!/usr/bin/env bash
# Brings a fresh Debian 12 machine to a working checkout: system packages, the virtualenv, the dependencies.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.deps-stamp

log() { printf '[setup] %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. PostgreSQL 15 + PostGIS + pgvector (its own script checks before acting).
if ! [ -f /usr/share/postgresql/15/extension/vector.control ] \
   || ! [ -f /usr/share/postgresql/15/extension/postgis.control ] \
   || ! [ -x /usr/lib/postgresql/15/bin/initdb ]; then
  log "installing PostgreSQL 15, PostGIS and pgvector"
  as_root bash scripts/install-postgres.sh
fi

# 2. Headless Chromium for the browser test of the search page.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  log "installing chromium and chromium-driver"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

# 3. A C compiler for the native int8 rows kernel (setup.py; optional at install, but `make test` checks it).
if ! command -v cc >/dev/null 2>&1; then
  log "installing gcc (the native rows kernel)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
fi

# 3b. jq, which the README's walkthrough pipes the API's answers through.
if ! command -v jq >/dev/null 2>&1; then
  log "installing jq (the README's walkthrough)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends jq >/dev/null
fi

# 4. The virtualenv. torch comes first and pinned: any other torch pulls several GB of CUDA wheels.
if [ ! -x $VENV/bin/python ]; then
  log "creating $VENV"
  "$PYTHON" -m venv $VENV
  $VENV/bin/pip install -q --upgrade pip
fi
# the compiled kernel is rebuilt with the dependencies whenever its source or setup.py changes
deps_hash=$(cat pyproject.toml setup.py search_service/engine/native/*.c | sha256sum | cut -d' ' -f1)
if [ ! -f $STAMP ] || [ "$(cat $STAMP)" != "$deps_hash" ]; then
  log "installing Python dependencies (torch 2.13.0 CPU first)"
  $VENV/bin/pip install -q torch==2.13.0
  $VENV/bin/pip install -q -e '.[dev]'
  echo "$deps_hash" > $STAMP
fi
log "ready"
