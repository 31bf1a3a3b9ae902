"""The embedded PostgreSQL cluster that lives in the project (`.pgdata/`).

PostgreSQL refuses to run as root, so when we are root every server-side binary runs as the `postgres` OS user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

PG_MAJOR = 15
INSTALL_HINT = "run `sudo bash scripts/install-postgres.sh` (or `make run`, which does it)"

# Tuned for a search workload on a small machine: JIT only slows short queries, HNSW builds want memory.
SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "max_connections": "200",
    "work_mem": "16MB",
    "maintenance_work_mem": "1GB",
    "max_parallel_maintenance_workers": "2",
    "jit": "off",
    "random_page_cost": "1.1",
    "logging_collector": "off",
}
# A restart serves from a warm cache: pg_prewarm's autoprewarm worker records which blocks shared buffers hold
# (every 5 minutes and at shutdown) and reads them back at start-up. At 1M products after a reboot, a 0.5 km
# search's first pass took 16.0 ms (p50) cold against 4.7 prewarmed (benchmarks/results/restart-2026-12-05.md).
PREWARM_SETTINGS: dict[str, str] = {
    "shared_preload_libraries": "pg_prewarm",
    "pg_prewarm.autoprewarm": "on",
    "pg_prewarm.autoprewarm_interval": "300s",
}
# Our settings live in a file of their own, rewritten at every start (a cluster made by an older version gets the
# new ones); postgresql.conf includes it last, so they win over its own lines (ALTER SYSTEM still wins over both).
SETTINGS_FILE = "plinqy-search.conf"
INCLUDE_LINE = f"include_if_exists = '{SETTINGS_FILE}'"


def shared_buffers(memory_bytes: int) -> str:
    """A quarter of the machine's memory (PostgreSQL's own advice), from 512 MB to 8 GB. At 1M products the pages
    searches read (the listings' index, the products' rows) outgrow 512 MB: each miss is a read from the OS's cache;
    with 4 GB a search's statements took 18 % less CPU at 2 km, 8 % less at 5 km (docs/scale.md)."""
    mb = min(max(memory_bytes // 4 // 2**20, 512), 8192)
    return f"{mb}MB"


def server_settings(bin_dir: Path, memory_bytes: int) -> dict[str, str]:
    """SERVER_SETTINGS, shared_buffers for this memory, and autoprewarm where the server has pg_prewarm (a
    contrib module, in Debian's server package; a server that lacks it would not start with it preloaded)."""
    settings = SERVER_SETTINGS | {"shared_buffers": shared_buffers(memory_bytes)}
    if (bin_dir.parent / "lib" / "pg_prewarm.so").exists():
        settings |= PREWARM_SETTINGS
    return settings


def machine_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


class ClusterError(RuntimeError):
    """A one-line, user-facing problem with the embedded cluster."""


@dataclass(frozen=True)
class ClusterStatus:
    initialised: bool
    running: bool
    port: int
    data_dir: Path

    def describe(self) -> str:
        if not self.initialised:
            return f"not initialised ({self.data_dir}); run `plinqy-search db up`"
        if not self.running:
            return f"stopped ({self.data_dir}); run `plinqy-search db up`"
        return f"running on 127.0.0.1:{self.port} ({self.data_dir})"


def pg_bin_dir(override: Path | None = None) -> Path:
    if override is not None:
        if (override / "initdb").exists() and (override / "pg_ctl").exists():
            return override
        raise ClusterError(f"PostgreSQL server binaries not found in {override} (PLINQY_PG_BINDIR): {INSTALL_HINT}")
    candidates = [Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise ClusterError(f"PostgreSQL {PG_MAJOR} server binaries (initdb, pg_ctl) not found: {INSTALL_HINT}")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    def __init__(self, data_dir: Path, port: int, dbname: str = "plinqy", bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir
        self.data_dir = data_dir.resolve()
        self.port = port
        self.dbname = dbname
        self.log_file = self.data_dir.parent / f"{self.data_dir.name}.log"

    def url(self, dbname: str | None = None) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname or self.dbname}"

    # -- running binaries -------------------------------------------------------------------------------------
    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise ClusterError(f"running as root needs the `postgres` OS user: {INSTALL_HINT}") from None
        return ["runuser", "-u", "postgres", "--", *argv]

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = self._as_server_user([str(pg_bin_dir(self.bin_dir) / tool), *args])
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise ClusterError(f"{tool} failed: {detail[-1] if detail else proc.returncode}")
        return proc

    # -- state ------------------------------------------------------------------------------------------------
    @property
    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def status(self) -> ClusterStatus:
        running = False
        if self.initialised:
            proc = self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False)
            running = proc.returncode == 0
        return ClusterStatus(self.initialised, running, self._running_port() if running else self.port, self.data_dir)

    def _running_port(self) -> int:
        # postmaster.pid line 4 holds the port the server really listens on.
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return self.port

    # -- lifecycle --------------------------------------------------------------------------------------------
    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            probe = subprocess.run(
                ["runuser", "-u", "postgres", "--", "test", "-x", str(self.data_dir.parent)],
                capture_output=True,
                check=False,
            )
            if probe.returncode != 0:
                raise ClusterError(
                    f"the `postgres` OS user cannot enter {self.data_dir.parent}: "
                    "set PLINQY_PGDATA to a directory whose parents it can traverse"
                )
            shutil.chown(self.data_dir, "postgres", "postgres")
            self.data_dir.chmod(0o700)
        self._run("initdb", "-D", str(self.data_dir), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8")

    def _write_settings(self) -> None:
        """Rewrite SETTINGS_FILE (before a start) and make sure postgresql.conf includes it."""
        settings = server_settings(pg_bin_dir(self.bin_dir), machine_memory())
        path = self.data_dir / SETTINGS_FILE
        path.write_text(
            "# Written by plinqy-search at every `db up`: edits here are lost (use ALTER SYSTEM).\n"
            + "".join(f"{key} = '{value}'\n" for key, value in settings.items())
        )
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
        conf = self.data_dir / "postgresql.conf"
        if INCLUDE_LINE not in conf.read_text().splitlines():
            with conf.open("a") as out:
                out.write(f"\n# plinqy-search embedded cluster\n{INCLUDE_LINE}\n")

    def up(self) -> str:
        """Initialise (once) and start the cluster, and create the database. Safe to run twice."""
        pg_bin_dir(self.bin_dir)
        if self.initialised and self.status().running:
            running_port = self._running_port()
            if running_port != self.port:
                raise ClusterError(
                    f"the embedded cluster already runs on port {running_port}, not {self.port}: "
                    "run `plinqy-search db down` first, or set PLINQY_DB_PORT to match"
                )
            self._ensure_database()
            return f"already running on 127.0.0.1:{self.port}"
        if not port_is_free(self.port):
            raise ClusterError(
                f"port {self.port} on 127.0.0.1 is taken by another process: "
                "set PLINQY_DB_PORT to a free port, or stop that process"
            )
        if not self.initialised:
            self._initdb()
        self._write_settings()
        if os.geteuid() == 0 and not self.log_file.exists():
            self.log_file.touch()
            shutil.chown(self.log_file, "postgres", "postgres")
        log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        proc = self._run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            f"-p {self.port}",
            check=False,
        )
        if proc.returncode != 0:
            reason = self._start_failure(log_offset)
            raise ClusterError(f"PostgreSQL did not start{': ' + reason if reason else ''}; see {self.log_file}")
        self._ensure_database()
        return f"started on 127.0.0.1:{self.port}"

    def _start_failure(self, offset: int) -> str:
        """The server's own words for a failed start: its last FATAL line in the log written since `offset`, with
        the line before when that names the bad setting (`invalid value for parameter …`)."""
        try:
            with self.log_file.open("rb") as log:
                log.seek(offset)
                lines = log.read().decode(errors="replace").splitlines()
        except OSError:
            return ""
        fatal = [i for i, line in enumerate(lines) if "FATAL:" in line]
        if not fatal:
            return ""
        words = [lines[fatal[-1]].split("FATAL:", 1)[1].strip()]
        before = lines[fatal[-1] - 1] if fatal[-1] > 0 else ""
        if "parameter" in before and "LOG:" in before:
            words.insert(0, before.split("LOG:", 1)[1].strip())
        return "; ".join(words)

    def down(self) -> str:
        if not self.initialised or not self.status().running:
            return "not running"
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data_dir))
        return "stopped"

    def destroy(self) -> None:
        """Stop the server immediately and delete its data (throwaway test clusters only)."""
        if self.initialised and self.status().running:
            self._run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", str(self.data_dir), check=False)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.log_file.unlink(missing_ok=True)

    def _ensure_database(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
                    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{self.dbname}"')  # name is ours, not user input
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise ClusterError(f"PostgreSQL started but accepts no connections; see {self.log_file}") from None
                time.sleep(0.2)
