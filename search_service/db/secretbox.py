"""Secrets we must read back (webhook signing secrets, POS credentials) are stored encrypted (Fernet: AES-128-CBC
plus HMAC-SHA256). Secrets we only compare (API keys) are hashed instead, elsewhere.

The key comes from `PLINQY_SECRET_KEY` (a Fernet key: 32 url-safe base64 bytes) or, when that is unset, from the
file `PLINQY_SECRET_KEY_FILE` (default `.secrets/plinqy.key`), created with mode 0600 on first use so that
`make run` needs no set-up (the Docker image's is on a volume docker-compose.yml shares between its containers).
Losing the key makes the stored secrets unreadable: back it up with the database.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBoxError(RuntimeError):
    """The key is malformed, or a stored secret was encrypted under another key. `setting`: the variable the key
    came from (PLINQY_SECRET_KEY or PLINQY_SECRET_KEY_FILE), for a message that names the one to fix."""

    def __init__(self, message: str, setting: str = "PLINQY_SECRET_KEY") -> None:
        super().__init__(message)
        self.setting = setting


class SecretKeyUnusable(SecretBoxError):
    """The key itself cannot be used (malformed, unreadable): nothing encrypts or opens until an operator fixes it."""


# How to make a key: standard base64 (`base64 /dev/urandom`) has `+` and `/`, which Fernet refuses.
KEY_HINT = 'make one with `python3 -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'


def _read_or_make(key_file: Path) -> bytes:
    """The key in `key_file`, made there first if there is none. Written whole under another name and linked into
    place: processes starting together on one key file (compose's api and worker share a volume) read one key, never
    a half-written file or an O_EXCL refusal."""
    try:
        return key_file.read_bytes().strip()
    except FileNotFoundError:
        pass
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd, made = tempfile.mkstemp(dir=key_file.parent, prefix=f".{key_file.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(Fernet.generate_key())
        with contextlib.suppress(FileExistsError):  # another process linked its key first: that one is read
            os.link(made, key_file)
    finally:
        os.unlink(made)
    return key_file.read_bytes().strip()


class SecretBox:
    """`source` says where the key came from, `setting` which variable set it (both name the one to fix)."""

    def __init__(self, key: bytes, source: str = "PLINQY_SECRET_KEY", setting: str = "PLINQY_SECRET_KEY") -> None:
        self.source, self.setting = source, setting
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise SecretKeyUnusable(
                f"{source} is not a Fernet key (32 url-safe base64-encoded bytes; {KEY_HINT})", setting
            ) from None

    @classmethod
    def from_settings(cls, key: str | None, key_file: Path) -> SecretBox:
        if key:
            return cls(key.encode())
        setting = "PLINQY_SECRET_KEY_FILE"
        source = f"the key file {key_file} ({setting})"
        try:
            stored = _read_or_make(key_file)
        except OSError as exc:  # a directory, a path that cannot be created, no permission: one line, not a traceback
            raise SecretKeyUnusable(f"{source} cannot be read or created ({exc.strerror or exc})", setting) from None
        return cls(stored, source, setting)

    @property
    def fix(self) -> str:
        """What an operator does when this key is not the one the secrets were stored with."""
        if self.setting == "PLINQY_SECRET_KEY":
            return "set PLINQY_SECRET_KEY to the key they were stored with"
        return "point PLINQY_SECRET_KEY_FILE at the key file they were stored with (a mistyped path makes a new key)"

    def opens_none_of(self, tokens: Iterable[bytes]) -> int:
        """How many of `tokens` (a few stored secrets, any kind) were tried when this key opens none of them; 0
        when it opens one, or none is stored. They are all stored with one key: a key opening none is another."""
        tried = 0
        for token in tokens:
            try:
                self.decrypt(token)
                return 0
            except SecretBoxError:
                tried += 1
        return tried

    def encrypt(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(token)).decode()
        except InvalidToken:
            raise SecretBoxError(
                f"a stored secret does not open with {self.source}: is it the key the secret was stored with?",
                self.setting,
            ) from None
