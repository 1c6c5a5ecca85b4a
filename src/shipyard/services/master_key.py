"""The server's master key: the one key that encrypts every workspace's secrets.

It comes from the ``master_key`` setting (``SHIPYARD_MASTER_KEY``) or, when that is unset, from
``<data_dir>/master.key``, generated on the first start with mode 0600. A key file that group
or others may read, or that holds no key, stops the server with a message: starting with a
fresh key instead would leave every stored secret unreadable.

Encryption is AES-256-GCM. Fernet was the other candidate, but it takes no associated data;
GCM authenticates the vault id and the secret name with each ciphertext, so a ciphertext copied
onto another secret (or into another workspace) fails to decrypt rather than revealing its
value under the wrong name. Every encryption draws a fresh random 96-bit nonce; at the rate
secrets are written, the bound for random nonces under one key (2^32 encryptions) is out of
reach, and a rotation starts the count again.

A ciphertext is stored with the id of the key that made it (a fingerprint, never the key), so
a rotation can tell old from new and a server can name the key it lacks. During a rotation the
new key waits in ``master.key.new`` until the database uses it; a server reads both files, so
whenever the process stops, every ciphertext's key is on disk.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

KEY_BYTES = 32  # AES-256
KEY_FILE = "master.key"
STAGED_KEY_FILE = "master.key.new"
_NONCE_BYTES = 12
_TAG_BYTES = 16
# The first byte of every ciphertext: the format (AES-256-GCM, nonce first), so a later change
# of algorithm can tell the formats apart.
_FORMAT = b"\x01"
_KEY_ID_LABEL = b"shipyard master key id v1"

log = logging.getLogger(__name__)


class MasterKeyError(RuntimeError):
    """The master key is missing, malformed or exposed: a message for the operator."""


class DecryptionError(Exception):
    """A ciphertext did not decrypt: a different key, different associated data, or damage."""


@dataclass(frozen=True)
class MasterKey:
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise ValueError(f"a master key is {KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> MasterKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @classmethod
    def parse(cls, text: str, source: str) -> MasterKey:
        """A key written as base64 (standard or URL-safe, padding optional). The message
        names ``source`` and never repeats the text."""
        compact = "".join(text.split()).replace("-", "+").replace("_", "/")
        try:
            raw = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != KEY_BYTES:
            raise MasterKeyError(
                f"{source} does not hold a master key: expected {KEY_BYTES} random bytes in "
                "base64, such as the output of `openssl rand -base64 32`"
            )
        return cls(raw)

    def encode(self) -> str:
        return base64.b64encode(self.secret).decode("ascii")

    @property
    def key_id(self) -> str:
        """A fingerprint naming the key; it reveals nothing of the key itself."""
        return hmac.new(self.secret, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]

    def encrypt(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _FORMAT + nonce + AESGCM(self.secret).encrypt(nonce, plaintext, associated)

    def decrypt(self, blob: bytes, associated: bytes) -> bytes:
        if blob[:1] != _FORMAT or len(blob) < 1 + _NONCE_BYTES + _TAG_BYTES:
            raise DecryptionError("not a ciphertext of a format this server knows")
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        try:
            return AESGCM(self.secret).decrypt(nonce, sealed, associated)
        except InvalidTag as exc:
            raise DecryptionError("the ciphertext does not match this key and name") from exc


class Keyring:
    """The keys a server holds. ``primary`` encrypts until the database names another key
    (see services.secrets); ``find`` looks a key up by id and, on a miss, reads the key files
    again, so a running server picks up a rotation done by ``shipyard admin rotate-master-key``.
    """

    def __init__(
        self,
        keys: Sequence[MasterKey],
        reload: Callable[[], Sequence[MasterKey]] | None = None,
    ) -> None:
        if not keys:
            raise ValueError("a keyring holds at least one key")
        self.primary = keys[0]
        self._keys = {key.key_id: key for key in keys}
        self._reload = reload
        self._lock = threading.Lock()

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def find(self, key_id: str) -> MasterKey | None:
        key = self._keys.get(key_id)
        if key is not None or self._reload is None:
            return key
        with self._lock:
            # Keys already known stay: a rotation replaces the file, not this server's memory.
            self._keys = {**self._keys, **{k.key_id: k for k in self._reload()}}
        return self._keys.get(key_id)


def load_keyring(master_key: SecretStr | None, data_dir: Path) -> Keyring:
    """The server's keys, generating ``<data_dir>/master.key`` when there is no key at all.
    Raises MasterKeyError for a key that cannot be used."""
    keys = load_keys(master_key, data_dir, create=True)

    def reload() -> Sequence[MasterKey]:
        try:
            return load_keys(master_key, data_dir, create=False)
        except MasterKeyError as exc:  # the caller reports the key it could not find
            log.error("cannot read the master keys again", extra={"reason": str(exc)})
            return ()

    return Keyring(keys, reload)


def load_keys(master_key: SecretStr | None, data_dir: Path, *, create: bool) -> list[MasterKey]:
    """The setting's key, the key file's, and a staged key of an unfinished rotation, in that
    order (the first one is the primary)."""
    keys: list[MasterKey] = []
    if master_key is not None:
        keys.append(MasterKey.parse(master_key.get_secret_value(), "the master_key setting"))
    path = data_dir / KEY_FILE
    if path.exists():
        keys.append(read_key_file(path))
    elif master_key is None:
        if not create:
            raise MasterKeyError(f"there is no master key: {path} does not exist")
        keys.append(create_key_file(path))
    staged = data_dir / STAGED_KEY_FILE
    if staged.exists():
        keys.append(read_key_file(staged))
    unique: dict[str, MasterKey] = {}
    for key in keys:
        unique.setdefault(key.key_id, key)
    return list(unique.values())


def read_key_file(path: Path) -> MasterKey:
    try:
        mode = path.stat().st_mode
        if not stat.S_ISREG(mode):
            raise MasterKeyError(f"the master key file {path} is not a regular file")
        if mode & 0o077:
            raise MasterKeyError(
                f"the master key file {path} is open to group or others (mode "
                f"{stat.S_IMODE(mode):o}); run `chmod 600 {path}` and start again"
            )
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError:
        text = ""
    except OSError as exc:
        raise MasterKeyError(f"cannot read the master key file {path}: {exc.strerror}") from exc
    return MasterKey.parse(text, f"the master key file {path}")


def create_key_file(path: Path) -> MasterKey:
    """A new key in a new file. Two servers starting at once on one data folder agree: the
    file appears whole or not at all, and the second one reads the first one's key."""
    key = MasterKey.generate()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_key_file(path, key, replace=False)
    except FileExistsError:
        return read_key_file(path)
    except OSError as exc:
        raise MasterKeyError(f"cannot write the master key file {path}: {exc.strerror}") from exc
    return key


def write_key_file(path: Path, key: MasterKey, *, replace: bool = True) -> None:
    """Write ``key`` to ``path`` with mode 0600, atomically: a crash leaves the old file or
    the new one, never a part. ``replace=False`` raises FileExistsError if ``path`` exists."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(key.encode() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(temporary, path)
        else:
            os.link(temporary, path)  # fails if the file exists, unlike a rename
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` survive a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the files a rotation goes through ------------------------------------------------------


def staged_key(data_dir: Path) -> MasterKey | None:
    """The new key of a rotation that has not finished, if there is one."""
    path = data_dir / STAGED_KEY_FILE
    return read_key_file(path) if path.exists() else None


def stage_key(data_dir: Path, key: MasterKey) -> None:
    """Put the new key on disk before any secret is encrypted with it."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_key_file(data_dir / STAGED_KEY_FILE, key)


def install_staged_key(data_dir: Path) -> None:
    """The database uses the staged key now: it becomes the key file, the old key is gone."""
    os.replace(data_dir / STAGED_KEY_FILE, data_dir / KEY_FILE)
    sync_folder(data_dir)


def discard_staged_key(data_dir: Path) -> None:
    """A staged key the database never used (the rotation stopped before it committed)."""
    (data_dir / STAGED_KEY_FILE).unlink(missing_ok=True)
    sync_folder(data_dir)
