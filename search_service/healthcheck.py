"""The Docker image's HEALTHCHECK: `python -m search_service.healthcheck URL` asks the API's `/readyz` and exits 0
when it answers 200 (ready), else 1 (Docker's "unhealthy"; never 2, which Docker reserves), printing the answer, its
`reasons`, or why there was none: `docker inspect` shows the last few. Standard library only, nothing else of the
service imported: Docker runs it every 15 s in the API's container."""

from __future__ import annotations

import http.client
import sys
import urllib.error
import urllib.request

URL = "http://127.0.0.1:8000/readyz"  # the image's `serve --port 8000`
# Past /readyz's own bound (the statement timeout, 2 s by default, and half a second: a stalled database is then
# `database: slow`, 503), within the HEALTHCHECK's --timeout (5 s), so that a slow answer is still read and shown.
TIMEOUT_S = 4.0
_SHOWN = 2000  # bytes of an answer printed: Docker keeps 4 KiB of a check's output


def check(url: str = URL, timeout_s: float = TIMEOUT_S) -> tuple[int, str]:
    """(exit code, what to print) for the readiness answered at `url`."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an HTTP_PROXY of the env
    try:
        with direct.open(url, timeout=timeout_s) as answer:
            return (0 if answer.status == 200 else 1), f"{answer.status} {answer.read(_SHOWN).decode(errors='replace')}"
    except urllib.error.HTTPError as exc:  # 503: not ready, the body says why
        return 1, f"{exc.code} {exc.read(_SHOWN).decode(errors='replace')}"
    except (OSError, http.client.HTTPException, ValueError) as exc:  # not listening (yet), no answer in time, cut off
        return 1, f"no answer from {url}: {exc}"


def main(argv: list[str]) -> int:
    code, said = check(argv[0] if argv else URL)
    print(said)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
