"""The documented deployment, `docker compose up` (docker-compose.yml on the Dockerfile's image). There is no Docker
here: the shipped files are read as Docker reads them, and the containers' start-up steps run on this machine."""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography.fernet import Fernet

from search_service import healthcheck
from search_service.api.app import create_app
from search_service.api.routes import health
from search_service.db.secretbox import SecretBox
from search_service.settings import PROJECT_ROOT, Settings
from tests.ingest_helpers import ingest_settings, serve
from tests.test_api import load_test_encoder

APP_SERVICES = ("migrate", "api", "worker")  # the containers of the image
# what an api container checks for /readyz, printing a secret it stored as the worker's jobs would read it
READY = "from search_service.settings import Settings as S; print(S.from_env().secret_box().encrypt('s').decode())"


def _runtime_stage() -> list[tuple[str, str]]:
    """The instructions of the Dockerfile's last stage (the image compose runs), continued lines joined."""
    text = re.sub(r"\\\n", " ", (PROJECT_ROOT / "Dockerfile").read_text())
    lines = [line.split(None, 1) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    last = max(n for n, words in enumerate(lines) if words[0].upper() == "FROM")
    return [(words[0].upper(), words[1] if len(words) > 1 else "") for words in lines[last + 1 :]]


def _last(stage: list[tuple[str, str]], op: str) -> str:
    return [args for name, args in stage if name == op][-1].strip()


def _owned_by(stage: list[tuple[str, str]], user: str) -> list[PurePosixPath]:
    """Directories the image gives its user: `COPY --chown=user`, `install -d -o user`, `chown user` in a RUN."""
    owned: list[PurePosixPath] = []
    for op, args in stage:
        words = shlex.split(args)
        if op == "COPY" and any(w.split("=", 1)[-1].split(":")[0] == user for w in words if w.startswith("--chown")):
            owned.append(PurePosixPath(words[-1]))
        for command in " ".join(words).split("&&") if op == "RUN" else []:
            cmd = command.split()
            if cmd[:1] == ["install"] and "-d" in cmd and cmd[cmd.index("-o") + 1] == user:
                values = {cmd[n + 1] for n, w in enumerate(cmd) if w in ("-o", "-g", "-m")}
                owned += [PurePosixPath(w) for w in cmd[1:] if not w.startswith("-") and w not in values]
            elif cmd[:1] == ["chown"] and cmd[-2].split(":")[0] == user:
                owned.append(PurePosixPath(cmd[-1]))
    return owned


def _compose_env(environment: dict[str, Any], shell: dict[str, str]) -> dict[str, str]:
    """A service's environment as compose passes it, `${VAR:-default}` read from the shell it was started from."""

    def value(match: re.Match[str]) -> str:
        return shell.get(match[1]) or match[2] or ""

    return {k: re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", value, str(v or "")) for k, v in environment.items()}


def _container_key_file(env: dict[str, str], workdir: str) -> PurePosixPath:
    """Where the service in the container reads its key file (a default under the checkout is under WORKDIR)."""
    key_file = Settings.from_env(env).secret_key_file
    if key_file.is_relative_to(PROJECT_ROOT):
        return PurePosixPath(workdir) / key_file.relative_to(PROJECT_ROOT).as_posix()
    return PurePosixPath(key_file.as_posix())


def test_compose_gives_its_containers_one_key_the_image_user_can_make_and_keep(
    fresh_db_url: str, tmp_path: Path
) -> None:
    """compose set no key: the key file defaulted to /app/.secrets/plinqy.key, in /app (root's) under `USER plinqy`,
    so the worker exited 1 at start and /readyz said 503; and api and worker would each have made its own key, a new
    one every time a container was re-created, so no stored secret opened in the other."""
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    stage = _runtime_stage()
    image_env = dict(w.split("=", 1) for op, args in stage if op == "ENV" for w in shlex.split(args))
    user, workdir = _last(stage, "USER").split(":")[0], _last(stage, "WORKDIR")
    shell = {k: v for k, v in os.environ.items() if k != "PLINQY_SECRET_KEY"}  # `docker compose up`, as documented
    sources = set()
    for name in APP_SERVICES:
        service = compose["services"][name]
        passed = _compose_env(service.get("environment") or {}, shell)
        key_file = _container_key_file({**image_env, **passed}, workdir)
        assert any(key_file.parent.is_relative_to(d) for d in _owned_by(stage, user)), (name, key_file, user)
        mounts = dict(reversed(m.split(":")[:2]) for m in service.get("volumes") or [])
        volume = mounts.get(str(key_file.parent))
        assert volume in (compose.get("volumes") or {}), (name, key_file, mounts)  # named: shared, outlives containers
        sources.add((volume, key_file))
    assert len(sources) == 1, sources
    [(_, key_file)] = sources
    # the containers start together on the fresh volume: the worker (its jobs that need the key) and api processes
    host_key = tmp_path / "volume" / key_file.name
    host_key.parent.mkdir(mode=0o700)
    env = {**shell, **passed, "DATABASE_URL": fresh_db_url, "PLINQY_SECRET_KEY_FILE": str(host_key)}
    worker = [sys.executable, "-m", "search_service", "worker", "--only", "sync", "--only", "events", "--drain"]
    started = [subprocess.Popen(worker, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    started += [subprocess.Popen([sys.executable, "-c", READY], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(3)]  # fmt: skip
    ended = [(p.wait(timeout=120), *p.communicate()) for p in started]
    assert [rc for rc, _, _ in ended] == [0] * 4, ended
    box = Fernet(host_key.read_bytes().strip())  # one key, made once: every process's secret opens with it
    assert [box.decrypt(out.strip().encode()) for _, out, _ in ended[1:]] == [b"s"] * 3
    assert stat.S_IMODE(host_key.stat().st_mode) == 0o600 and os.listdir(host_key.parent) == [host_key.name]


def test_a_process_starting_while_another_makes_the_key_file_reads_the_same_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose's api and worker start together on one new volume: the one that came second while the first was
    making the key read the file it had created but not yet written (`not a Fernet key`), or was refused by its
    O_EXCL (`cannot be read or created`), and exited 1. Here the second starts exactly then."""
    key_file = tmp_path / "secrets" / "plinqy.key"
    generate, second, calls = Fernet.generate_key, [], []

    def key_while_another_starts() -> bytes:
        calls.append(1)
        if len(calls) == 1:  # the other process, at the moment this one makes its key
            second.append(SecretBox.from_settings(None, key_file))
        return generate()

    monkeypatch.setattr(Fernet, "generate_key", staticmethod(key_while_another_starts))
    first = SecretBox.from_settings(None, key_file)
    assert second[0].decrypt(first.encrypt("s")) == "s" and first.decrypt(second[0].encrypt("t")) == "t"
    assert os.listdir(key_file.parent) == ["plinqy.key"] and stat.S_IMODE(key_file.stat().st_mode) == 0o600


def _healthcheck(stage: list[tuple[str, str]]) -> tuple[dict[str, float], list[str]]:
    """The image's HEALTHCHECK: its options in seconds (retries a count) and its command (exec form)."""
    options, command = _last(stage, "HEALTHCHECK").split(" CMD ", 1)
    values = dict(o.removeprefix("--").split("=", 1) for o in options.split())
    return {k: float(v.removesuffix("s")) for k, v in values.items()}, json.loads(command)


def _compose() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_the_image_is_healthy_when_the_api_it_serves_is_ready(tmp_path: Path) -> None:
    """The HEALTHCHECK asked /healthz, which answers with the database down: healthy, while every search answered
    503, and `depends_on: condition: service_healthy` (or `up --wait`) went on. It asks the route the app serves
    as /readyz, on the port the image's and compose's `serve` listen on, and a blip shorter than 45 s (a database
    restart) cannot turn it unhealthy."""
    stage = _runtime_stage()
    options, command = _healthcheck(stage)
    url = urlsplit(next(word for word in command if word.startswith("http://")))
    assert command[:3] == ["python", "-m", "search_service.healthcheck"] and url.hostname == "127.0.0.1", command
    assert _last(stage, "EXPOSE") == str(url.port)
    for serve_command in (json.loads(_last(stage, "CMD")), _compose()["services"]["api"]["command"]):
        assert serve_command[0] == "serve" and serve_command[serve_command.index("--port") + 1] == str(url.port)
    app = create_app(ingest_settings("postgresql://plinqy@127.0.0.1:1/none", tmp_path))  # built, not started
    [route] = [r for r in app.routes if r.path == url.path]
    assert [h.fn for h in route.route_handlers if "GET" in h.http_methods] == [health.readyz.fn], url.path
    api_env = _compose_env(_compose()["services"]["api"].get("environment") or {}, {})  # no timeout set there
    readyz_bound_s = Settings.from_env(api_env).statement_timeout_ms / 1000 + 0.5  # it answers by then (readiness)
    assert readyz_bound_s < healthcheck.TIMEOUT_S < options["timeout"], options  # a slow answer is read, and shown
    assert options["interval"] * (options["retries"] - 1) >= 45 and options["start-period"] >= 60, options


@pytest.fixture(scope="module")
def encoder() -> Any:
    return load_test_encoder()


def _check(command: list[str], base: str) -> subprocess.CompletedProcess[str]:
    """The image's check as Docker runs it, against `base` for the container's own API."""
    argv = [sys.executable if w == "python" else re.sub(r"^http://127\.0\.0\.1:\d+", base, w) for w in command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=PROJECT_ROOT)


def test_the_healthcheck_passes_only_while_the_api_is_ready(
    fresh_db_url: str, make_database: Callable[..., str], encoder: Any, tmp_path: Path
) -> None:
    """Exit 0 only for a ready API; 1 (Docker's unhealthy, never 2) for one that is up but not ready, printing
    /readyz's reasons for `docker inspect`, and for none listening (starting, or ended)."""
    _, command = _healthcheck(_runtime_stage())
    with serve(ingest_settings(fresh_db_url, tmp_path), encoder) as base:
        ready = _check(command, base)
    assert ready.returncode == 0 and '"status":"ready"' in ready.stdout, ready
    unmigrated = ingest_settings(make_database(migrated=False), tmp_path)
    with serve(unmigrated, encoder, until_ready=False) as base:
        not_ready = _check(command, base)
    assert not_ready.returncode == 1 and not_ready.stdout.startswith("503 "), not_ready
    assert "run `plinqy-search migrate`" in not_ready.stdout and not not_ready.stderr, not_ready
    gone = _check(command, base)  # that server has stopped
    assert gone.returncode == 1 and gone.stdout.startswith(f"no answer from {base}/readyz"), gone


def test_the_long_running_services_restart_and_only_the_api_has_the_images_healthcheck() -> None:
    """compose had no restart policy: an API, worker or database that exited (or a reboot) stayed down. The
    one-shot `migrate` must not get one (`unless-stopped` runs it again once it succeeded). The image's check asks
    the API: a worker's container (no HTTP) was unhealthy for ever."""
    services = _compose()["services"]
    one_shots = {
        name
        for service in services.values()
        for name, needs in (service.get("depends_on") or {}).items()
        if needs.get("condition") == "service_completed_successfully"
    }
    assert one_shots == {"migrate"}, one_shots
    for name, service in services.items():
        policy = service.get("restart", "no")
        assert policy in (("no", "on-failure") if name in one_shots else ("always", "unless-stopped")), (name, policy)
        if service.get("build") == ".":  # the image
            serves = service["command"][0] == "serve"
            assert service.get("healthcheck") == (None if serves else {"disable": True}), name
