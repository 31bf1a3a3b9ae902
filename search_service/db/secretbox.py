"""Secrets we must read back (webhook signing secrets, POS credentials) are stored encrypted (Fernet: AES-128-CBC
plus HMAC-SHA256). Secrets we only compare (API keys) are hashed instead, elsewhere.

The key comes from `PLINQY_SECRET_KEY` (a Fernet key: 32 url-safe base64 bytes) or, when that is unset, from the
file `PLINQY_SECRET_KEY_FILE` (default `.secrets/plinqy.key`), created with mode 0600 on first use so that
`make run` needs no set-up (the Docker image's is on a volume docker-compose.yml shares between its containers).
Losing the key makes the stored secrets unreadable: back it up with the database.

Rotation (MultiFernet): either may hold several keys, comma-separated (the file's may be one a line too; a Fernet
key has neither commas nor white space). The first encrypts, every one opens; `plinqy-search secrets rotate`
(db/secret_rotation.py) re-encrypts what is stored under the first, after which the others can be dropped.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


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
# Between the keys of a rotation: commas (the variable), line ends (the file) or both, with any blanks around.
_KEY_SEPARATORS = re.compile(rb"[,\s]+")


def _fernets(keys: bytes, source: str, setting: str) -> list[Fernet]:
    """One Fernet a key of `keys`, the first first; a malformed one is refused naming its place, never its text."""
    entries = [entry for entry in _KEY_SEPARATORS.split(keys) if entry]
    fernets = []
    for n, entry in enumerate(entries or [b""], 1):
        try:
            fernets.append(Fernet(entry))
        except (ValueError, TypeError):
            which = source if len(entries) < 2 else f"key {n} of the {len(entries)} in {source}"
            raise SecretKeyUnusable(
                f"{which} is not a Fernet key (32 url-safe base64-encoded bytes; {KEY_HINT})", setting
            ) from None
    return fernets


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
        fernets = _fernets(key, source, setting)
        self.key_count = len(fernets)
        self._first, self._fernet = fernets[0], MultiFernet(fernets)

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
            return "set PLINQY_SECRET_KEY to the key they were stored with (in a key rotation: NEW,OLD)"
        return (
            "point PLINQY_SECRET_KEY_FILE at the key file they were stored with (a mistyped path makes a new key; "
            "in a key rotation the file holds the new key's line, then the old key's)"
        )

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
            raise self._unopened() from None

    def under_first_key(self, token: bytes) -> bool:
        """Whether `token` opens with the first key (the one that encrypts): a rotation leaves it as it is."""
        try:
            self._first.decrypt(bytes(token))
        except InvalidToken:
            return False
        return True

    def rotate(self, token: bytes) -> bytes:
        """`token`'s secret encrypted again under the first key (the secret is the same, the token a new one);
        SecretBoxError when none of the keys opens it."""
        try:
            return self._fernet.rotate(bytes(token))
        except InvalidToken:
            raise self._unopened() from None

    def _unopened(self) -> SecretBoxError:
        return SecretBoxError(
            f"a stored secret does not open with {self.source}: is it the key the secret was stored with?",
            self.setting,
        )
