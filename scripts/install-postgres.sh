#!/usr/bin/env bash
# Installs PostgreSQL 15, PostGIS 3, pgvector >= 0.8.0, citext, uuid-ossp, pg_trgm, unaccent, fuzzystrmatch (Debian 12).
# Idempotent: every step checks before it acts. Runs as root, or re-executes itself with sudo.
set -euo pipefail

PG_MAJOR=15
PGVECTOR_MIN=0.8.0
PG_BIN=/usr/lib/postgresql/${PG_MAJOR}/bin
EXT_DIR=/usr/share/postgresql/${PG_MAJOR}/extension

if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then exec sudo -E bash "$0" "$@"; fi
  echo "install-postgres.sh must run as root (or with sudo available)." >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

log() { printf '[install-postgres] %s\n' "$*"; }

apt_updated=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated -eq 0 ]; then apt-get update -qq; apt_updated=1; fi
  log "apt-get install ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

installed_pgvector_version() {
  [ -f "$EXT_DIR/vector.control" ] || { echo ""; return; }
  sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$EXT_DIR/vector.control"
}

apt_install postgresql-${PG_MAJOR} postgresql-contrib postgresql-${PG_MAJOR}-postgis-3 postgresql-${PG_MAJOR}-postgis-3-scripts

current=$(installed_pgvector_version)
if [ -n "$current" ] && version_ge "$current" "$PGVECTOR_MIN"; then
  log "pgvector $current already installed"
else
  # A binary package wins where the distribution has one; bookworm has none, so fall back to the source build.
  if [ $apt_updated -eq 0 ]; then apt-get update -qq; apt_updated=1; fi
  if apt-cache show postgresql-${PG_MAJOR}-pgvector >/dev/null 2>&1 \
     && apt-get install -y -qq --no-install-recommends postgresql-${PG_MAJOR}-pgvector >/dev/null 2>&1 \
     && version_ge "$(installed_pgvector_version)" "$PGVECTOR_MIN"; then
    log "pgvector installed from the binary package"
  else
    log "building pgvector from Debian trixie's source package"
    src_list=/etc/apt/sources.list.d/plinqy-trixie-src.list
    if [ ! -f "$src_list" ]; then
      echo "deb-src http://deb.debian.org/debian trixie main" > "$src_list"
      apt-get update -qq
    fi
    apt_install postgresql-server-dev-${PG_MAJOR} build-essential dpkg-dev
    build_dir=$(mktemp -d)
    trap 'rm -rf "$build_dir"' EXIT
    (
      cd "$build_dir"
      apt-get source -qq pgvector >/dev/null 2>&1
      cd "$(find . -maxdepth 1 -type d -name 'pgvector-*' | head -n1)"
      # OPTFLAGS="" drops -march=native, so the library runs on any x86-64 host.
      make -s OPTFLAGS="" PG_CONFIG=${PG_BIN}/pg_config >/dev/null
      make -s OPTFLAGS="" PG_CONFIG=${PG_BIN}/pg_config install >/dev/null
    )
    log "pgvector $(installed_pgvector_version) built and installed"
  fi
fi

# Proof: a throwaway cluster must accept CREATE EXTENSION for each one the migrations create.
proof_dir=$(mktemp -d)
chown postgres:postgres "$proof_dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg() { runuser -u postgres -- "$@"; }
cleanup_proof() { as_pg "$PG_BIN/pg_ctl" -D "$proof_dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$proof_dir"; }
trap cleanup_proof EXIT
as_pg "$PG_BIN/initdb" -D "$proof_dir/data" -A trust -U postgres >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$proof_dir/data" -w -l "$proof_dir/log" \
  -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=''" start >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres <<SQL
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE EXTENSION IF NOT EXISTS citext;
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE EXTENSION IF NOT EXISTS vector;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;
SQL
versions=$(psql -X -At -h 127.0.0.1 -p "$port" -U postgres -d postgres \
  -c "SELECT string_agg(extname || ' ' || extversion, ', ' ORDER BY extname) FROM pg_extension WHERE extname <> 'plpgsql'")
log "CREATE EXTENSION works: $versions"
