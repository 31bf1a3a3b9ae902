"""Reading settings from the environment: numbers within bounds, and errors that name the variable.

Shared by `settings.py` and every package's own `<Domain>Config.from_env`; it imports nothing of the service, so
any layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping


class ConfigError(ValueError):
    """An environment variable holds a value we cannot use (the message names it)."""


def env_float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={raw.strip()} is out of range {lo:g}..{hi:g}")
    return value


def env_int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name}={value} is out of range {lo}..{hi}")
    return value
