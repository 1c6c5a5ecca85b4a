"""The workspace key vault: set, list, read and delete secrets; rotate the master key.

A value exists in plain text only inside these functions and in the one response that
reveals it: it is encrypted before it reaches the store, no error message or log line quotes
it, and the only body that carries it is ``SecretValueRead``. Each ciphertext is bound to its
vault and name (the associated data), so it cannot be moved to another secret.

Which master key encrypts is the database's decision (``secret_key_state``), not the server's:
every write locks that row and encrypts with the key it names, so servers that started with an
older key, or were given different keys by mistake, never write a ciphertext the others cannot
read. A server that lacks the named key answers 503 and says so in its log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ShipyardError,
    UnavailableError,
)
from shipyard.domain.paging import decode_page_token
from shipyard.schemas.common import Page
from shipyard.schemas.secrets import (
    MAX_SECRET_BYTES,
    SECRET_NAME,
    SecretRead,
    SecretValueRead,
)
from shipyard.services import master_key
from shipyard.services.master_key import (
    DecryptionError,
    Keyring,
    MasterKey,
    MasterKeyError,
)
from shipyard.services.paging import split_page
from shipyard.store import secrets as store
from shipyard.store import workspaces as workspace_store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.secrets import SecretRow
from shipyard.store.tracking import names_of
from shipyard.store.users import UserRow

log = logging.getLogger(__name__)

_ROTATION_BATCH = 500


def associated_data(vault_id: str, name: str) -> bytes:
    """What a ciphertext is bound to. Names hold no NUL, so the parts cannot run together."""
    return b"shipyard/secret/v1\x00" + vault_id.encode() + b"\x00" + name.encode()


def check_secret_name(name: str) -> str:
    if len(name) > 127:
        # Said without the name: an over-long "name" may be a value pasted in the wrong place.
        raise InvalidInputError(
            "a secret name is at most 127 characters", code="invalid_name", field="name"
        )
    if not SECRET_NAME.fullmatch(name):
        raise InvalidInputError(
            f"a secret name is letters, digits, '-', '_' and '.', starting with a letter or "
            f"digit: it must match {SECRET_NAME.pattern}",
            code="invalid_name",
            field="name",
        )
    return name


def check_value(value: str) -> bytes:
    """The value as UTF-8 bytes; the messages describe it without quoting it."""
    if not value:
        raise InvalidInputError("the secret value is empty", code="invalid_value", field="value")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a JSON "\ud800" escape
        raise InvalidInputError(
            "the secret value is not valid Unicode text", code="invalid_value", field="value"
        ) from exc
    if len(encoded) > MAX_SECRET_BYTES:
        raise InvalidInputError(
            f"the secret value is {len(encoded)} bytes; the limit is {MAX_SECRET_BYTES}",
            code="secret_too_large",
            field="value",
        )
    return encoded


def secrets_read(session: Session, rows: list[SecretRow]) -> list[SecretRead]:
    people = names_of(session, UserRow, {r.created_by for r in rows} | {r.updated_by for r in rows})
    return [
        SecretRead(
            name=row.name,
            key_id=row.key_id,
            created_by=people.get(row.created_by),
            created_at=row.created_at,
            updated_by=people.get(row.updated_by),
            updated_at=row.updated_at,
        )
        for row in rows
    ]


def _vault_id(session: Session, workspace: str) -> str:
    row = workspace_store.get_workspace(session, workspace)
    if row is None:
        raise NotFoundError(
            f"workspace {workspace!r} does not exist", code="workspace_not_found", field="workspace"
        )
    if row.deleted_at is not None:
        raise NotFoundError(
            f"workspace {workspace!r} is deleted; recover it to reach its secrets",
            code="workspace_deleted",
            field="workspace",
        )
    return row.key_vault_id


def _require(session: Session, vault_id: str, name: str) -> SecretRow:
    row = store.get_secret(session, vault_id, name)
    if row is None:
        raise NotFoundError(
            f"secret {name!r} does not exist", code="secret_not_found", field="name"
        )
    return row


def _key_unavailable(key_id: str) -> UnavailableError:
    log.error(
        "the master key the secrets need is not available to this server; start it with "
        "that key (setting master_key, or the data folder's master.key)",
        extra={"key_id": key_id},
    )
    return UnavailableError(
        f"the server does not hold master key {key_id}, which encrypts the secrets; an "
        "administrator must give it that key",
        code="master_key_unavailable",
    )


class SecretService:
    def __init__(self, db: Database, keys: Keyring) -> None:
        self.db = db
        self.keys = keys

    def set(
        self, workspace: str, name: str, value: str, principal_id: str
    ) -> tuple[SecretRead, bool]:
        """Create or replace; True when the secret is new."""
        check_secret_name(name)
        plaintext = check_value(value)
        try:
            with self.db.write() as session:
                vault_id = _vault_id(session, workspace)
                key = self._writing_key(session)
                ciphertext = key.encrypt(plaintext, associated_data(vault_id, name))
                row = store.get_secret(session, vault_id, name)
                created = row is None
                now = utcnow()
                if row is None:
                    row = SecretRow(
                        vault_id=vault_id, name=name, created_by=principal_id, created_at=now
                    )
                    session.add(row)
                row.ciphertext, row.key_id = ciphertext, key.key_id
                row.updated_by, row.updated_at = principal_id, now
                session.flush()
                return secrets_read(session, [row])[0], created
        except IntegrityError as exc:  # a concurrent first write of the same name won
            raise ConflictError(
                f"secret {name!r} was being created at the same time; try again",
                code="secret_conflict",
                field="name",
            ) from exc

    def list(self, workspace: str, *, page_token: str | None, max_results: int) -> Page[SecretRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            vault_id = _vault_id(session, workspace)
            rows = store.list_secrets(session, vault_id, after=after, limit=max_results + 1)
            page, token = split_page(rows, max_results, lambda r: r.name)
            return Page[SecretRead](items=secrets_read(session, page), next_page_token=token)

    def get(self, workspace: str, name: str) -> SecretRead:
        check_secret_name(name)
        with self.db.read() as session:
            row = _require(session, _vault_id(session, workspace), name)
            return secrets_read(session, [row])[0]

    def reveal(self, workspace: str, name: str) -> SecretValueRead:
        check_secret_name(name)
        with self.db.read() as session:
            vault_id = _vault_id(session, workspace)
            row = _require(session, vault_id, name)
            ciphertext, key_id = row.ciphertext, row.key_id
        key = self.keys.find(key_id)
        if key is None:
            raise _key_unavailable(key_id)
        try:
            plaintext = key.decrypt(ciphertext, associated_data(vault_id, name))
        except DecryptionError as exc:
            log.error("a secret did not decrypt", extra={"secret": name, "key_id": key_id})
            raise ShipyardError(
                f"secret {name!r} could not be decrypted; see the server log",
                code="secret_unreadable",
            ) from exc
        return SecretValueRead(name=name, value=plaintext.decode("utf-8"))

    def delete(self, workspace: str, name: str) -> None:
        check_secret_name(name)
        with self.db.write() as session:
            session.delete(_require(session, _vault_id(session, workspace), name))

    def _writing_key(self, session: Session) -> MasterKey:
        """The key the database says encrypts now (this server's primary for the first
        secret ever), with the state row locked until the write commits."""
        state = store.lock_key_state(session)
        if state.key_id is None:
            state.key_id, state.updated_at = self.keys.primary.key_id, utcnow()
            return self.keys.primary
        key = self.keys.find(state.key_id)
        if key is None:
            raise _key_unavailable(state.key_id)
        return key


# --- rotation --------------------------------------------------------------------------------


def rotate_master_key(db: Database, old: Keyring, new: MasterKey) -> int:
    """Re-encrypt every secret of every vault with ``new``, in one transaction: afterwards
    each is readable with ``new`` and no longer with any old key; if one secret cannot be
    decrypted, nothing changes. Returns how many secrets were re-encrypted."""
    count = 0
    with db.write() as session:
        state = store.lock_key_state(session)  # writers wait until the rotation commits
        state.key_id, state.updated_at = new.key_id, utcnow()
        after: str | None = None
        while batch := store.secrets_after(session, after, _ROTATION_BATCH):
            for row in batch:
                if row.key_id != new.key_id:
                    _reencrypt(row, old, new)
                    count += 1
            session.flush()
            after = batch[-1].id
            for row in batch:
                session.expunge(row)  # a vault of large secrets need not stay in memory
    return count


def _reencrypt(row: SecretRow, old: Keyring, new: MasterKey) -> None:
    key = old.find(row.key_id)
    if key is None:
        raise MasterKeyError(
            f"a secret is encrypted with master key {row.key_id}, which was not given; "
            "nothing was changed"
        )
    associated = associated_data(row.vault_id, row.name)
    try:
        plaintext = key.decrypt(row.ciphertext, associated)
    except DecryptionError as exc:
        raise MasterKeyError(
            f"secret {row.name!r} (vault {row.vault_id}) does not decrypt with master key "
            f"{row.key_id}; nothing was changed"
        ) from exc
    row.ciphertext, row.key_id = new.encrypt(plaintext, associated), new.key_id


@dataclass(frozen=True)
class Rotation:
    old_key_ids: tuple[str, ...]
    new_key_id: str
    secrets: int
    key_file: Path
    # True when this run only finished a rotation that had stopped after its commit.
    finished_interrupted: bool = False


def rotate_key_files(
    db: Database, master_key_setting: SecretStr | None, data_dir: Path, new: MasterKey | None
) -> Rotation:
    """Rotate the master key on disk and in the database, so that whenever the process
    stops, every ciphertext's key is on disk: the new key is written (``master.key.new``)
    before the transaction that uses it, and becomes ``master.key`` only after it commits.
    A staged key left by a rotation that stopped is finished (the database uses it) or
    dropped (it never committed) first."""
    key_file = data_dir / master_key.KEY_FILE
    leftover = master_key.staged_key(data_dir)
    if leftover is not None:
        with db.read() as session:
            in_use = store.current_key_id(session)
        if in_use == leftover.key_id:
            master_key.install_staged_key(data_dir)
            return Rotation((), leftover.key_id, 0, key_file, finished_interrupted=True)
        master_key.discard_staged_key(data_dir)
    old = Keyring(master_key.load_keys(master_key_setting, data_dir, create=False))
    new = new or MasterKey.generate()
    if new.key_id in old.key_ids:
        raise MasterKeyError(f"the new key is a key already in use ({new.key_id})")
    master_key.stage_key(data_dir, new)
    try:
        count = rotate_master_key(db, old, new)
    except BaseException:
        _drop_unless_committed(db, data_dir, new)
        raise
    master_key.install_staged_key(data_dir)
    return Rotation(old.key_ids, new.key_id, count, key_file)


def _drop_unless_committed(db: Database, data_dir: Path, new: MasterKey) -> None:
    """After a failed rotation: drop the staged key only if the database surely does not use
    it (a commit whose answer was lost would). When unsure, keep it; the next run decides."""
    try:
        with db.read() as session:
            committed = store.current_key_id(session) == new.key_id
        if not committed:
            master_key.discard_staged_key(data_dir)
    except Exception:
        log.exception("could not tell whether the rotation committed; keeping the new key")
