"""The `plinqy-search` command line (the console script's `main`). Commands stay thin: they parse options and call
into modules. The group and its commands are in `commands`, imported by `main` inside its Ctrl-C guard: imported
here, a Ctrl-C in the first second or so (alembic, psycopg, litestar being imported) printed a 47-line traceback."""

from __future__ import annotations

import signal
import sys
from types import FrameType
from typing import NoReturn

INTERRUPTED_EXIT = 130  # 128 + SIGINT, as a shell reports a command Ctrl-C ended
# The commands a SIGTERM stops gracefully, exit 0 (a `docker stop` or rollout is no failure), each with the other
# signals that stop it so; each installs its own handlers once loaded, and a signal that comes before (its modules
# loading: a second or more) finds nothing in hand. SIGHUP's default ended `serve` and `worker` 129 there.
GRACEFUL_STOPS: dict[tuple[str, ...], tuple[signal.Signals, ...]] = {
    ("serve",): (signal.SIGHUP,),
    ("worker",): (signal.SIGHUP,),
    ("webhooks", "dispatch"): (),
}


def main() -> None:
    """Every command, however early a Ctrl-C comes: one line, `interrupted`, exit 130; SIGTERM as Ctrl-C, except
    in the commands it stops gracefully (it exited 130 there while their modules loaded), as SIGHUP does `serve` and
    `worker`."""
    graceful = [also for words, also in GRACEFUL_STOPS.items() if tuple(sys.argv[1 : 1 + len(words)]) == words]
    signal.signal(signal.SIGTERM, _stop_quietly if graceful else _stop_as_ctrl_c)
    for signum in graceful[0] if graceful else ():
        signal.signal(signum, _stop_quietly)
    try:
        from search_service.cli.commands import main as run_command

        run_command()
    except KeyboardInterrupt:
        interrupted()


def _stop_quietly(_signum: int, _frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


def _stop_as_ctrl_c(_signum: int, frame: FrameType | None) -> None:
    """SIGTERM (timeout, systemd, docker stop, Kubernetes) stops a command as Ctrl-C does, through whatever handles
    SIGINT now (asyncio's task cancel, sync's stop after the batch in hand): it ended the process, exit 143, with
    no line said and the batch in hand leased for minutes. SIGINT ignored (a script's `cmd &`): KeyboardInterrupt
    (common.run_stoppable's own SIGTERM handler cancels its task instead)."""
    on_sigint = signal.getsignal(signal.SIGINT)
    if callable(on_sigint):
        on_sigint(signal.SIGINT, frame)
    else:
        signal.default_int_handler(signal.SIGINT, frame)


def interrupted() -> NoReturn:
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    raise SystemExit(INTERRUPTED_EXIT) from None
