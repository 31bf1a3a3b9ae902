"""What every command shares: one-line errors, the database URL, a connection, durations."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, TextIO, TypeVar

import asyncpg
import click
import psycopg

from search_service.controlchars import escape_control_chars
from search_service.db import cluster as cluster_mod
from search_service.db import migrate as migrate_mod
from search_service.db.faults import DatabaseRefused, DatabaseSilent
from search_service.db.secretbox import SecretBox, SecretKeyUnusable
from search_service.db.sql import statement
from search_service.errortext import first_line
from search_service.logformat import LOG_FORMAT
from search_service.settings import Settings, SettingsError

if TYPE_CHECKING:
    from tqdm import tqdm

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
# Connecting failed: no server at the address, no answer, no such database, refused credentials (psycopg, asyncpg).
UNREACHABLE_DATABASE: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    DatabaseSilent,
    DatabaseRefused,
    asyncpg.InvalidCatalogNameError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.CannotConnectNowError,
    ConnectionRefusedError,
)

# A table or column the code needs is missing: the database may be at an older migration than the code.
OLDER_SCHEMA: tuple[type[BaseException], ...] = (
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
    asyncpg.UndefinedTableError,
    asyncpg.UndefinedColumnError,
)


def lost_mid_run(exc: BaseException, again: str = "run the same command again") -> str:
    """A connection that worked, lost mid-run (a restart, a failover): the URL is not to blame. `again` is how to
    resume: a command whose options start over (`reembed --all --restart`) says to run it without them."""
    reason = first_line(exc)
    return f"lost the database connection mid-run ({reason}): the batches it finished are saved; {again} to resume"


def echo(*columns: object, err: bool = False) -> None:
    """Every line the CLI prints: its columns (one, or several joined by tabs), each with its control characters
    escaped. A value from outside (a file name, a receiver's or a vendor's error, a store's text, a connection
    error) then adds no line and no column, and cannot drive the terminal (ESC sequences set its title or cleared
    it)."""
    try:
        click.echo("\t".join(escape_control_chars(str(column)) for column in columns), err=err)
    except OSError as exc:
        raise OutputUnwritable(exc) from None


def write_output(text: str, file: TextIO | None = None) -> None:
    """`text` as it is (a CSV) to `file` (an --output) or stdout, flushed: a failure is OutputUnwritable."""
    out = sys.stdout if file is None else file
    try:
        out.write(text)
        out.flush()
    except click.FileError as exc:  # a lazy --output opened at the first write: click's own "Error: Could not…"
        raise OutputUnwritable(OSError(f"cannot open {exc.ui_filename}: {exc.message}")) from None
    except OSError as exc:
        if file is not None and getattr(file, "should_close", True):  # click's close would flush it again
            with contextlib.suppress(OSError):
                file.close()
        raise OutputUnwritable(exc) from None


class OutputUnwritable(Exception):
    """The output could not be written (a full disk, `| head` closing the pipe): the CLI's main says so in one
    line, exit 1, for every command. `undone` says what the command took back (a secret nobody saw)."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(cause.strerror or str(cause))
        self.cause = cause
        self.undone = ""


@contextmanager
def shown_once(undone: str) -> Iterator[None]:
    """Around making a secret that is printed once and the printing, inside the transaction storing it: output
    that failed rolls the secret back (a key listed active was never seen), and the error says `undone`."""
    try:
        yield
    except OutputUnwritable as exc:
        exc.undone = undone
        raise


def bars_drawn() -> bool:
    """Whether progress bars are drawn: only on a terminal. A log or a pipe got every redraw, `\r`-separated."""
    return sys.stderr.isatty()


def progress_bar(desc: str, unit: str, total: float | None = None, *, shown: bool = True) -> tqdm[Any]:
    """Every command's progress bar, on stderr, drawn when `shown` and bars_drawn(). Close it before the
    command's last line: closing draws it once more."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=not (shown and bars_drawn()))


class UserFacingError(click.ClickException):
    """Printed as one line, exit code 1 (a failure; UsageMistake: 2), never a traceback."""

    def show(self, file: Any = None) -> None:
        echo(f"error: {self.format_message()}", err=True)


class UsageMistake(UserFacingError):
    """The command was called wrongly (options missing, clashing or malformed): one line, exit code 2 as click's own
    usage errors; UserFacingError's 1 stays for a command that failed."""

    exit_code = 2


def option_mistake(field: str, message: str) -> UsageMistake:
    """A command's own check of an option's value failing (exit 2), naming the option as typed: a field the
    command's option stores under another name (`country_code`) is its flag (`--country`)."""
    flag = named_as_typed(field)
    if message.startswith(f"{field} "):  # "currency 'XXX' is not ...": the flag in the field's place
        return UsageMistake(f"{flag} {message.removeprefix(f'{field} ')}")
    return UsageMistake(f"{flag}: {message}")


def named_as_typed(field: str) -> str:
    """A field as the running command takes it: an option's flag (`store_id`: `--store`), an argument's name
    (`WEBHOOK_ID`); a message naming the API's field told an operator of no option by that name."""
    context = click.get_current_context(silent=True)
    params = context.command.params if context is not None else []
    for param in params:
        if param.name == field:
            return param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
    return "--" + field.replace("_", "-")


def user_errors(func: F) -> F:
    """Turn the project's known failure types into one-line messages."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (cluster_mod.ClusterError, migrate_mod.MigrationError, SettingsError) as exc:
            raise UserFacingError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def embedded_cluster(settings: Settings) -> cluster_mod.Cluster:
    return cluster_mod.Cluster(settings.pgdata, settings.db_port, bin_dir=settings.pg_bindir)


def database_url(settings: Settings) -> str:
    """The URL every command uses: DATABASE_URL when set, else the running embedded cluster."""
    if settings.uses_embedded_db:
        status = embedded_cluster(settings).status()
        if not status.running:
            raise UserFacingError("the embedded database is not running: run `plinqy-search db up` (or `make run`)")
    return settings.database_url


def exit_on_sigterm_while_starting() -> None:
    """Until a job installs its own handlers, SIGTERM exits 0: nothing is in hand yet (a fleet stopping a worker
    it had just restarted saw it die of the signal, exit -15, while it imported and checked the database)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))


def run_stoppable(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run for a command whose coroutine says where a Ctrl-C (its task cancelled) stopped it; SIGTERM
    cancels the task too where SIGINT is ignored (a shell's `cmd &`). asyncio installs its Ctrl-C handler only
    over Python's default one: SIGTERM was then a KeyboardInterrupt inside the loop, whose shutdown cancelled the
    task and printed what it raised as a traceback, followed by a bare `interrupted`."""
    if callable(signal.getsignal(signal.SIGINT)):  # SIGTERM calls it (cli._stop_as_ctrl_c): asyncio's, at run
        return asyncio.run(main)
    return asyncio.run(_cancelled_by_sigterm(main))


async def _cancelled_by_sigterm(main: Coroutine[Any, Any, T]) -> T:
    task, loop = asyncio.current_task(), asyncio.get_running_loop()
    assert task is not None
    stops = 0

    def stop(_signum: int, _frame: FrameType | None) -> None:  # as asyncio's Ctrl-C handler
        nonlocal stops
        stops += 1
        if stops > 1:  # a second one: at once
            raise KeyboardInterrupt
        task.cancel()
        loop.call_soon_threadsafe(lambda: None)  # wakes a loop waiting in select()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return await main
    except asyncio.CancelledError:
        if stops and task.uncancel() == 0:  # the command's own line not said: `interrupted`, as asyncio.run does
            raise KeyboardInterrupt from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def current_database_url(settings: Settings) -> str:
    """`database_url`, once the database is at this code's migration head (MigrationError, one line, otherwise):
    a job on an older schema would fail midway on a missing column, with a traceback."""
    url = database_url(settings)
    migrate_mod.require_current_schema(url)
    return url


def usable_secret_box(settings: Settings) -> SecretBox:
    """The secret box, or one line (UserFacingError) when the key cannot be used: checked before a job is forked,
    which otherwise failed at its start and was restarted for ever."""
    try:
        return settings.secret_box()
    except SecretKeyUnusable as exc:
        raise UserFacingError(f"{exc}; set PLINQY_SECRET_KEY or PLINQY_SECRET_KEY_FILE to a usable key") from None


def refuse_a_wrong_secret_key(settings: Settings) -> None:
    """Before storing a secret or starting a job that reads them: one line (UserFacingError) when the key opens
    none of a few stored secrets of any kind, the ones /readyz tries (a mistyped key file makes a new key there: a
    secret stored under it could not be opened by the API, a delivery could not be signed)."""
    box = usable_secret_box(settings)
    with connect(settings) as conn:
        stored = conn.execute(statement("engine/catalog", "some_stored_secrets").psycopg)
        tried = box.opens_none_of(bytes(row[0]) for row in stored)
    if tried:
        raise UserFacingError(
            f"the secret key ({box.source}) opens none of the {tried} stored secrets tried (connections' and "
            f"webhooks' signing secrets, vendor credentials), so what it stored or signed could not be read back: "
            f"{box.fix}, then run again"
        )


def require_writable_dir(variable: str, path: Path, unset_note: str) -> None:
    """One line (UserFacingError) naming `variable` when `path` cannot be made a writable directory: it was a
    traceback from deep in `serve`, or blamed on the model under `worker` and `reembed`."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(path, os.W_OK | os.X_OK) else "is not writable by this user"
    except FileExistsError:
        problem = "is not a directory"
    except OSError as exc:
        problem = f"cannot be made a directory ({exc.strerror or exc})"
    if problem is not None:
        raise UserFacingError(
            f"{variable}={path} {problem}: point it at a writable directory (made if missing){unset_note}"
        )


def require_cache_dir(settings: Settings) -> None:
    """PLINQY_CACHE_DIR (the model's converted files, `serve`'s vector copy) and, under `serve`,
    PLINQY_VECTOR_SHARED_DIR: usable directories, or one line."""
    require_writable_dir("PLINQY_CACHE_DIR", settings.cache_dir, ", or unset it for the project's .cache")
    if settings.vector_copy.shared_dir is not None:
        require_writable_dir("PLINQY_VECTOR_SHARED_DIR", settings.vector_copy.shared_dir, ", or unset it")


def connect(settings: Settings) -> Any:
    import psycopg

    return psycopg.connect(database_url(settings), autocommit=True)


def echo_webhook_url(settings: Settings, connection_id: Any, note: str) -> None:
    """The address to configure at the vendor: a full URL with PLINQY_PUBLIC_BASE_URL, else the path and how to
    make it one."""
    path = f"/v1/ingest/{connection_id}"
    url = settings.public_url(path)
    echo(f"webhook URL: POST {url or path} ({note})")
    if url is None:
        echo(
            "this is the path only: set PLINQY_PUBLIC_BASE_URL (the address vendors reach this API at, e.g. "
            "https://search.example.com) to print the full URL, or prefix the path with it yourself",
            err=True,
        )


class WholeNumber(click.IntRange):
    """click.IntRange saying "'abc' is not a whole number" (click said "is not a valid integer range")."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, int):
            try:
                int(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a whole number", param, ctx)
        return super().convert(value, param, ctx)


class FiniteFloatRange(click.FloatRange):
    """click.FloatRange that refuses NaN, which compares false with both bounds and so passed, and infinities."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


# Said in every duration option's help: a reader took `1m` for a month (it is a minute).
DURATION_UNITS = "a number and a unit in lowercase, s, m (minutes, not months), h or d"


class Duration(click.ParamType):
    """A span of time as a number and a lowercase unit: 90s, 30m, 12h, 7d (`30D`, `6M` are refused, not guessed)."""

    name = "duration"
    UNITS: ClassVar[dict[str, float]] = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    LONGEST_S: ClassVar[float] = 36500 * 86400.0

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        # Case kept: `6M` (a month to most, as in ISO 8601) was folded to `6m`, and a prune deleted all but 6 minutes.
        text = str(value).strip()
        if text[-1:] == "M":
            self.fail(f"{value!r}: months are not a unit (m is minutes); give {DURATION_UNITS}, e.g. 180d", param, ctx)
        try:
            seconds = float(text[:-1]) * self.UNITS[text[-1:]]
        except (KeyError, ValueError):
            self.fail(f"{value!r} is not a duration: give {DURATION_UNITS}, e.g. 90s, 30m, 12h or 7d", param, ctx)
        if seconds < 0:
            self.fail(f"{value!r}: a duration cannot be negative", param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a duration: give {DURATION_UNITS}, e.g. 90s, 30m, 12h or 7d", param, ctx)
        if seconds > self.LONGEST_S:  # 1e12s reached the database as a timestamp out of range (a traceback)
            self.fail(f"{value!r}: give a duration of at most 100 years (36500d)", param, ctx)
        return seconds


def uvicorn_log_config() -> dict[str, object]:
    """uvicorn's own lines in the same format ('INFO:     Started server process' had no time; an access line
    had no time either, so a request could not be placed in an incident's window). The access lines are the app's
    (api/access_log.py), each a whole message."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"()": "logging.Formatter", "fmt": LOG_FORMAT},
            "access": {"()": "logging.Formatter", "fmt": LOG_FORMAT},
        },
        "handlers": {
            "default": {"formatter": "default", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }
