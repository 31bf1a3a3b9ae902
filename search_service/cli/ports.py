"""`serve`'s port, bound by the command line before anything is loaded: a port it cannot have is one line, exit 1."""

from __future__ import annotations

import errno
import socket

from search_service.cli.common import UserFacingError

# What an operator does about each refusal of bind(2); other errors are named by their text alone.
BIND_HINTS = {
    errno.EADDRINUSE: "is another server running?",
    errno.EADDRNOTAVAIL: "not an address of this machine: give one of its own, 127.0.0.1 or 0.0.0.0",
}


def bind_port(host: str, port: int) -> socket.socket:
    """A socket bound to the address, not listening yet, or UserFacingError. Bound without SO_REUSEPORT, so it
    fails if anything listens there (another `serve` too)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserFacingError(f"cannot listen on {host}:{port}: {_reason(exc, port)}") from None
    return sock


def _reason(exc: OSError, port: int) -> str:
    hint = BIND_HINTS.get(exc.errno or 0)
    if exc.errno == errno.EACCES and port < 1024:
        hint = "a port below 1024 needs root or CAP_NET_BIND_SERVICE: use a port from 1024 up"
    text = exc.strerror or str(exc)
    return f"{text} ({hint})" if hint else text
