"""One Settings object, read from the environment once and passed explicitly."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict

from embeddings.encoder import EncoderConfig
from embeddings.int8_check import INT8_BACKEND_MIN_COSINE
from search_service.db.secretbox import SecretBox, SecretKeyUnusable
from search_service.engine.facets import FacetConfig
from search_service.engine.vector_files import VectorCopyConfig
from search_service.envconfig import ConfigError, env_float, env_int
from search_service.events.config import EventsConfig
from search_service.ingest.config import IngestConfig
from search_service.ingest.connectors.config import ConnectorsConfig
from search_service.serverconfig import ServerConfig

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB_PORT = 54329
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")  # an HTTP token (RFC 9110 5.6.2), lower case


# What the CLI reports as a one-line error: any variable, the service's own or a package's.
SettingsError = ConfigError


def _database_url(url: str | None, connect_timeout: str | None) -> str | None:
    """DATABASE_URL, checked, and PGCONNECT_TIMEOUT: a malformed one was a traceback from whichever driver first
    read it."""
    _whole_seconds("PGCONNECT_TIMEOUT", connect_timeout)
    if url is None:
        return None
    if not url.strip():  # set but empty: acting on the embedded cluster instead surprised whoever meant to set it
        raise SettingsError(
            "DATABASE_URL is set but empty: give postgresql://user@host:port/dbname, or unset it for the embedded "
            "cluster"
        )
    try:
        split = urlsplit(url)
    except ValueError as exc:
        raise SettingsError(f"DATABASE_URL is not a valid URL ({exc})") from None
    try:
        split.port  # noqa: B018  (a port that is no number raises here)
    except ValueError:  # not Python's text: it quotes the port, the password's start where a '/' in it ended the host
        cut = "@" in url and "@" not in split.netloc
        hint = "; a '/', '?' or '#' in the password is written %2F, %3F, %23" if cut else ""
        raise SettingsError(
            f"DATABASE_URL is not a valid URL (its port is not a number from 0 to 65535{hint})"
        ) from None
    if split.scheme not in ("postgresql", "postgres") or not split.path.strip("/"):
        raise SettingsError(
            "DATABASE_URL must be a PostgreSQL URL naming its database: postgresql://user@host:port/dbname"
        )
    if split.netloc.count("@") > 1:  # libpq ends the password at the first '@', and named the rest as the host
        raise SettingsError("DATABASE_URL has an '@' in its user name or password: write it as %40")
    try:  # libpq's own reading: a parameter it does not know was a traceback in every database command
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        reason = _password_masked(str(exc).strip(), split)
        raise SettingsError(f"DATABASE_URL is not a usable PostgreSQL URL ({reason})") from None
    _whole_seconds("DATABASE_URL's connect_timeout", params.get("connect_timeout"))
    return url


def _password_masked(reason: str, split: SplitResult) -> str:
    """libpq's reason quotes the token it could not read (`unexpected spaces found in "<token>"`), which can be the
    password (or a `password=` / `sslpassword=` parameter): such a token is named, not shown."""
    query = (part.partition("=") for part in split.query.split("&"))
    secrets = [split.password, *(value for key, _, value in query if key in ("password", "sslpassword"))]
    for secret in filter(None, secrets):
        quoted = re.escape(f'"{secret}"')
        reason = re.sub(rf"(?::\s*| in ){quoted}", " in the password", reason)
        reason = re.sub(quoted, "the password", reason)
    return reason


def _whole_seconds(name: str, raw: object) -> None:
    """A connect timeout libpq and psycopg both read (PGCONNECT_TIMEOUT, a URL's connect_timeout): whole seconds."""
    if raw is None or str(raw).strip() == "":
        return
    try:
        value = int(str(raw))
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not 0 <= value <= 86_400:
        raise SettingsError(f"{name}={value} is out of range 0..86400")


@dataclass(frozen=True)
class Settings:
    external_database_url: str | None
    db_port: int
    pgdata: Path
    pg_bindir: Path | None
    cache_dir: Path
    encoder: EncoderConfig
    statement_timeout_ms: int = 2000
    pool_min_size: int = 2
    pool_max_size: int = 10
    pool_acquire_timeout_s: float = 1.0
    query_cache_size: int = 1024
    # The API embeds one short query at a time (or a micro-batch): a second ONNX thread costs more in
    # hand-offs than it saves (measured here: c=1 p50 15.6 vs 18.8 ms, CPU per request 9.9 vs 10.6 ms).
    query_encoder_threads: int = 1
    # How the API embeds queries: fp32, the products' model as is, or int8, the same model quantised for queries
    # only (~0.4× the CPU on AVX-512 VNNI, top 10 overlap 0.973; docs/performance.md). The stored vectors stay fp32.
    query_encoder: Literal["fp32", "int8"] = "fp32"
    # The API's in-memory vector copy (exact scan): off above this many vectors (~1.5 kB each per API
    # process; a 100k-product scan is ~7 ms on 2 cores, 1M would be ~70 ms), 0 turns it off.
    vector_cache_max: int = 1_000_000
    vector_cache_refresh_s: float = 1.0
    # Threads that score a large (shared, unpacked) copy's int8 rows for a search alone in its process: 1M rows in
    # 22 ms on two instead of 44 on one, for the same CPU (quantizer._rows_session); under load one thread.
    rank_threads: int = 2
    # The stores in a radius found in memory (engine/store_locator.py; 10k stores: ~1 MB an API process). Off (0):
    # search_context's radius query finds them per search.
    store_locator: bool = True
    # The native int8 rows kernel (engine/native_rows.py) where it was built and the CPU runs it. Off (0): SimSIMD
    # and MLAS only, as without it (a switch for operators, and the baseline of a benchmark run).
    native_kernel: bool = True
    # Under load a whole-copy ranking waits for other searches of its process to rank with it, up to this many
    # times what a lone one took (engine/batcher.py, at most 50 ms): 1M rows, four queries read the rows once for
    # about the cost of one. 0: a ranking never waits.
    rank_linger: float = 3.0
    # The suggestion index (~300 B a product in each API process, rebuilt by each after 200 changed products, so
    # not shared by the fork): above this many active products suggestions take the statement plans. 0: off.
    suggest_index_max: int = 300_000
    vector_copy: VectorCopyConfig = field(default_factory=VectorCopyConfig)  # one copy a machine (serve sets it)
    # Secrets stored encrypted (see search_service/db/secretbox.py).
    secret_key: str | None = field(default=None, repr=False)
    secret_key_file: Path = PROJECT_ROOT / ".secrets" / "plinqy.key"
    events: EventsConfig = field(default_factory=EventsConfig)  # webhooks (search_service/events/config.py)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    connectors: ConnectorsConfig = field(default_factory=ConnectorsConfig)
    facets: FacetConfig = field(default_factory=FacetConfig)  # PLINQY_FACET_DEPTH
    server: ServerConfig = field(default_factory=ServerConfig)  # the HTTP server's limits on its clients
    # Where vendors reach this API (https://search.example.com): `connect` prints full webhook URLs with it.
    public_base_url: str | None = None
    # Origins whose pages may call the API from a browser (CORS): `*` (the default: reads are open and writes carry
    # a bearer key, never a cookie), a list of origins, or none (PLINQY_CORS_ORIGINS=none: no CORS headers).
    cors_origins: tuple[str, ...] = ("*",)
    # Request headers a page may send past those always allowed (api/cors.py: authorization, content-type and the
    # tracing ones, traceparent, tracestate, baggage, sentry-trace, x-request-id, x-correlation-id); ("*",): any.
    cors_headers: tuple[str, ...] = ()
    # gzip level of answers of 1 KB and more to a client that accepts it (api/compression.py): a 100-hit search, 84 KB,
    # to 15 KB in 0.26 ms of CPU at 1, 12 KB in 0.64 ms at 6 (docs/performance.md). 0: off, behind a proxy that does it.
    gzip_level: int = 1
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        cache_dir = Path(env.get("PLINQY_CACHE_DIR") or PROJECT_ROOT / ".cache")
        backend, query_encoder = _encoders(env)
        return cls(
            external_database_url=_database_url(env.get("DATABASE_URL"), env.get("PGCONNECT_TIMEOUT")),
            db_port=env_int(env, "PLINQY_DB_PORT", DEFAULT_DB_PORT, 1, 65535),
            pgdata=Path(env.get("PLINQY_PGDATA") or PROJECT_ROOT / ".pgdata"),
            pg_bindir=Path(env["PLINQY_PG_BINDIR"]) if env.get("PLINQY_PG_BINDIR") else None,
            cache_dir=cache_dir,
            encoder=_products_encoder(env, cache_dir, backend),
            statement_timeout_ms=env_int(env, "PLINQY_STATEMENT_TIMEOUT_MS", 2000, 10, 600_000),
            pool_min_size=env_int(env, "PLINQY_POOL_MIN", 2, 1, 100),
            pool_max_size=env_int(env, "PLINQY_POOL_MAX", 10, 1, 200),
            pool_acquire_timeout_s=env_float(env, "PLINQY_POOL_TIMEOUT_S", 1.0, 0.01, 60.0),
            query_cache_size=env_int(env, "PLINQY_QUERY_CACHE_SIZE", 1024, 0, 1_000_000),
            query_encoder_threads=env_int(env, "PLINQY_QUERY_ENCODER_THREADS", 1, 0, 256),
            query_encoder=query_encoder,
            vector_cache_max=env_int(env, "PLINQY_VECTOR_CACHE_MAX", 1_000_000, 0, 100_000_000),
            vector_cache_refresh_s=env_float(env, "PLINQY_VECTOR_CACHE_REFRESH_S", 1.0, 0.05, 3600.0),
            rank_threads=env_int(env, "PLINQY_RANK_THREADS", 2, 1, 256),
            store_locator=env_int(env, "PLINQY_STORE_LOCATOR", 1, 0, 1) == 1,
            native_kernel=env_int(env, "PLINQY_NATIVE_KERNEL", 1, 0, 1) == 1,
            rank_linger=env_float(env, "PLINQY_RANK_LINGER", 3.0, 0.0, 20.0),
            suggest_index_max=env_int(env, "PLINQY_SUGGEST_INDEX_MAX", 300_000, 0, 100_000_000),
            vector_copy=VectorCopyConfig.from_env(env),
            secret_key=env.get("PLINQY_SECRET_KEY") or None,
            secret_key_file=Path(env.get("PLINQY_SECRET_KEY_FILE") or PROJECT_ROOT / ".secrets" / "plinqy.key"),
            events=_domain_config(EventsConfig, env),
            ingest=_domain_config(IngestConfig, env),
            connectors=_domain_config(ConnectorsConfig, env),
            facets=_domain_config(FacetConfig, env),
            server=_domain_config(ServerConfig, env),
            public_base_url=public_base_url(env.get("PLINQY_PUBLIC_BASE_URL")),
            cors_origins=cors_origins(env.get("PLINQY_CORS_ORIGINS")),
            cors_headers=cors_headers(env.get("PLINQY_CORS_HEADERS")),
            gzip_level=env_int(env, "PLINQY_GZIP_LEVEL", 1, 0, 9),
            env=env,
        )

    def secret_box(self) -> SecretBox:
        return SecretBox.from_settings(self.secret_key, self.secret_key_file)

    def secret_key_problem(self) -> str | None:
        """Why the secret key cannot be used (readiness says it), or None."""
        try:
            self.secret_box()
        except SecretKeyUnusable as exc:
            return str(exc)
        return None

    def public_url(self, path: str) -> str | None:
        """The address a vendor calls for this API path, or None when PLINQY_PUBLIC_BASE_URL is not set."""
        return f"{self.public_base_url}{path}" if self.public_base_url else None

    def query_encoder_config(self) -> EncoderConfig:
        """The API's query encoder (runtime.py, and prefork.py before the fork): the products' model and backend on
        its own threads, without ONNX Runtime's memory arena, in int8 where PLINQY_QUERY_ENCODER says so."""
        return replace(
            self.encoder,
            threads=self.query_encoder_threads,
            memory_arena=False,
            query_int8=self.query_encoder == "int8",
        )

    @property
    def uses_embedded_db(self) -> bool:
        return self.external_database_url is None

    @property
    def database_url(self) -> str:
        """DATABASE_URL when set, otherwise the embedded cluster's URL."""
        if self.external_database_url:
            return self.external_database_url
        return embedded_url(self.db_port)


def _products_encoder(env: Mapping[str, str], cache_dir: Path, backend: Any) -> EncoderConfig:
    """The encoder of the stored vectors (the worker's, reembed's; the API's query encoder is a form of it).
    PLINQY_ENCODER_INT8_MIN_COSINE, tests only, raises the onnx-int8 backend's load-check bound: never lowers it."""
    bound = env_float(env, "PLINQY_ENCODER_INT8_MIN_COSINE", INT8_BACKEND_MIN_COSINE, INT8_BACKEND_MIN_COSINE, 2.0)
    model_path = env.get("PLINQY_MODEL") or None
    return EncoderConfig(model_path=model_path, backend=backend, cache_dir=cache_dir / "models", int8_min_cosine=bound)


def _encoders(env: Mapping[str, str]) -> tuple[Any, Literal["fp32", "int8"]]:
    """PLINQY_ENCODER_BACKEND, and PLINQY_QUERY_ENCODER: how the API embeds queries (a form of the onnx backend)."""
    backend = env.get("PLINQY_ENCODER_BACKEND", "auto")
    if backend not in ("auto", "onnx", "torch", "onnx-int8"):
        raise SettingsError(f"PLINQY_ENCODER_BACKEND={backend!r}: use auto, onnx, torch or onnx-int8")
    query = env.get("PLINQY_QUERY_ENCODER", "fp32")
    if query not in ("fp32", "int8"):
        raise SettingsError(
            f"PLINQY_QUERY_ENCODER={query!r}: use fp32 (queries embedded as the products are, the default) or int8 "
            "(the same model quantised for queries: ~0.4× the CPU on AVX-512 VNNI, slower without int8 kernels; "
            "README.md, docs/performance.md)"
        )
    if query == "int8" and backend not in ("auto", "onnx"):
        raise SettingsError(
            f"PLINQY_QUERY_ENCODER=int8 embeds queries with the onnx backend, not {backend}: "
            "set PLINQY_ENCODER_BACKEND=auto or onnx, or PLINQY_QUERY_ENCODER=fp32"
        )
    return backend, query  # type: ignore[return-value]


def _domain_config(config: Any, env: Mapping[str, str]) -> Any:
    """A package's own settings (`<Domain>Config.from_env` raises a ValueError that names the variable)."""
    try:
        return config.from_env(env)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def public_base_url(value: str | None) -> str | None:
    """PLINQY_PUBLIC_BASE_URL: an http(s) origin with an optional path prefix (behind a proxy), no query."""
    if not value or not value.strip():
        return None
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingsError(
            f"PLINQY_PUBLIC_BASE_URL={value!r}: use the address vendors reach this API at, "
            "e.g. https://search.example.com (http or https, no query)"
        )
    return value.strip().rstrip("/")


def cors_origins(value: str | None) -> tuple[str, ...]:
    """PLINQY_CORS_ORIGINS: `*` (unset), `none`, or origins separated by commas (https://shop.example.com)."""
    if value is None or value.strip() in ("", "*"):
        return ("*",)
    if value.strip().lower() == "none":
        return ()
    return tuple(_origin(o.strip().rstrip("/")) for o in value.split(",") if o.strip())


def cors_headers(value: str | None) -> tuple[str, ...]:
    """PLINQY_CORS_HEADERS: request header names separated by commas (x-shop-id), or `*` for any."""
    names = tuple(dict.fromkeys(name.strip().lower() for name in (value or "").split(",") if name.strip()))
    if "*" in names:
        return ("*",)
    for name in names:
        if not HEADER_NAME.fullmatch(name):
            raise SettingsError(
                f"PLINQY_CORS_HEADERS: {name!r} is no header name: give names separated by commas (x-shop-id), "
                "or `*` for any"
            )
    return names


def _origin(text: str) -> str:
    """An origin as browsers send it (`Origin`): scheme and host in lower case, no default port; refused when it
    could never match one (a path, a query, user info, a port that is none)."""
    parts, port = urlsplit(text), None
    with contextlib.suppress(ValueError):
        port = parts.port
    port_written = ":" in parts.netloc.rsplit("]", 1)[-1]  # after an IPv6 literal's brackets
    usable = parts.scheme.lower() in ("http", "https") and parts.hostname and not parts.username
    usable = usable and not (parts.path or "?" in text or "#" in text) and (port is not None or not port_written)
    if not usable or (port is not None and not 0 < port < 65536):
        raise SettingsError(
            f"PLINQY_CORS_ORIGINS: {text!r} is no origin: give scheme://host[:port] separated by commas "
            "(https://shop.example.com), `*` for any, or `none`"
        )
    scheme, host = parts.scheme.lower(), _ascii_host(text, str(parts.hostname))
    # browsers send the port as a number (no `:0443`) and none when it is the scheme's
    shown_port = "" if port is None or port == {"http": 80, "https": 443}[scheme] else f":{port}"
    return f"{scheme}://{host}{shown_port}"


def _ascii_host(text: str, host: str) -> str:
    """The host as browsers send it: an internationalised name in its ASCII form (`bücher.example` is sent as
    `xn--bcher-kva.example`), an IPv6 literal in brackets."""
    if ":" in host:
        return f"[{host}]"
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise SettingsError(f"PLINQY_CORS_ORIGINS: {text!r} has a host name that is none") from None


def embedded_url(port: int, dbname: str = "plinqy") -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{dbname}"
