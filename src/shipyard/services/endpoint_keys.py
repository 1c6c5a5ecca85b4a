"""An online endpoint's credentials: two keys (``key`` mode) or short-lived tokens
(``aml_token`` mode), and the check the scoring gateway runs on every request.

Keys carry 256 random bits. The endpoint row keeps the sha256 of each (a fast hash is enough
for that much randomness, as for personal access tokens), so checking a key is one hash and a
constant-time compare. ``get-credentials`` must show the keys again, so each is also kept,
encrypted, in the workspace's key vault, as a datastore's keys are
(``online-endpoint-<endpoint id>-<primary|secondary>-key``): the master-key rotation
re-encrypts them with every other secret. The id, not the endpoint's name, names the secret,
so a deleted endpoint's keys never show up under a new endpoint of the same name.

A token is ``sht_`` + 256 random bits; only its hash is stored, with its expiry, and a
request finds it by an indexed lookup. Changing the auth mode deletes every token.

``EndpointAuthenticator`` is the gateway's side: it caches each endpoint's credentials for
``max_age`` seconds and drops them at once when this server changes them (a regenerated key,
another auth mode, a deleted endpoint); another server's change reaches it within
``max_age``. ``keys_version`` grows with every such change, so a cache of decisions keyed on
it cannot serve a revoked key.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from shipyard.domain.endpoints import KEY_TYPES, KeyType
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.schemas.endpoints import EndpointKeysRead, EndpointTokenRead
from shipyard.services.secrets import SecretService
from shipyard.services.tokens import hash_token
from shipyard.store import endpoints as store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.endpoints import OnlineEndpointRow, OnlineEndpointTokenRow

log = logging.getLogger(__name__)

KEY_PREFIX = "shk_"  # markers that make leaked credentials easy to scan for
TOKEN_PREFIX = "sht_"  # noqa: S105
TOKEN_TTL = timedelta(hours=1)
# Azure's refresh_after_time_utc: a client renews its token half-way through its life.
_REFRESH_AFTER = 0.5


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_secret_name(endpoint_id: str, key_type: str) -> str:
    return f"online-endpoint-{endpoint_id}-{key_type}-key"


def check_key_type(value: str) -> KeyType:
    lowered = value.strip().lower()
    if lowered == "primary":
        return "primary"
    if lowered == "secondary":
        return "secondary"
    raise InvalidInputError(
        f"{value[:32]!r} is not a key type: primary or secondary",
        code="invalid_key_type",
        field="key_type",
    )


def _not_key_mode(name: str) -> InvalidInputError:
    return InvalidInputError(
        f"endpoint {name!r} uses aml_token authentication: it has no keys; ask for a token "
        "(get-credentials) or change auth_mode to key",
        code="wrong_auth_mode",
        field="auth_mode",
    )


class EndpointKeys:
    """Keys and tokens: made, stored, shown and replaced."""

    def __init__(
        self,
        db: Database,
        vault: SecretService,
        *,
        token_ttl: timedelta = TOKEN_TTL,
        clock: Callable[[], datetime] = utcnow,
        changed: Callable[[str], None] = lambda endpoint_id: None,
    ) -> None:
        self.db = db
        self.vault = vault
        self.token_ttl = token_ttl
        self.clock = clock
        # Called with an endpoint id whenever what authenticates on it changes.
        self.changed = changed

    def keep(self, workspace: str, endpoint_id: str, key_type: str, key: str, by: str) -> None:
        """Put one key in the vault (the row's hash is the caller's to set)."""
        self.vault.set(workspace, key_secret_name(endpoint_id, key_type), key, by)

    def forget(self, workspace: str, endpoint_id: str) -> None:
        """Drop the endpoint's keys from the vault (it is deleted)."""
        for key_type in KEY_TYPES:
            with contextlib.suppress(NotFoundError):
                self.vault.delete(workspace, key_secret_name(endpoint_id, key_type))
        self.changed(endpoint_id)

    def list_keys(self, workspace: str, endpoint_name: str) -> EndpointKeysRead:
        with self.db.read() as session:
            row = _endpoint(session, workspace, endpoint_name)
        if row.auth_mode != "key":
            raise _not_key_mode(row.name)
        shown: dict[str, str] = {}
        for key_type, wanted in (
            ("primary", row.primary_key_hash),
            ("secondary", row.secondary_key_hash),
        ):
            value = self.vault.reveal(workspace, key_secret_name(row.id, key_type)).value
            # Two regenerations of one key at once may leave the vault and the hash apart.
            if wanted is None or not hmac.compare_digest(hash_token(value), wanted):
                raise ConflictError(
                    f"the {key_type} key of endpoint {row.name!r} is being replaced; "
                    "regenerate it again",
                    code="keys_out_of_step",
                    field="key_type",
                )
            shown[key_type] = value
        return EndpointKeysRead(primary_key=shown["primary"], secondary_key=shown["secondary"])

    def regenerate(
        self, workspace: str, endpoint_name: str, key_type: str, principal_id: str
    ) -> None:
        """A new key of ``key_type``; the old one stops authenticating at once here."""
        which = check_key_type(key_type)
        with self.db.read() as session:
            row = _endpoint(session, workspace, endpoint_name)
            if row.auth_mode != "key":
                raise _not_key_mode(endpoint_name)
            endpoint_id = row.id
        key = new_key()
        self.keep(workspace, endpoint_id, which, key, principal_id)
        with self.db.write() as session:
            row = _endpoint(session, workspace, endpoint_name)
            if row.id != endpoint_id:
                raise NotFoundError(
                    f"endpoint {endpoint_name!r} was deleted meanwhile",
                    code="endpoint_not_found",
                    field="name",
                )
            if which == "primary":
                row.primary_key_hash = hash_token(key)
            else:
                row.secondary_key_hash = hash_token(key)
            row.keys_version += 1
            row.updated_at = self.clock()
        self.changed(endpoint_id)

    def issue_token(
        self, workspace: str, endpoint_name: str, principal_id: str
    ) -> EndpointTokenRead:
        raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + self.token_ttl
        with self.db.write() as session:
            row = _endpoint(session, workspace, endpoint_name)
            if row.auth_mode != "aml_token":
                raise InvalidInputError(
                    f"endpoint {endpoint_name!r} uses key authentication: list its keys "
                    "(get-credentials) or change auth_mode to aml_token",
                    code="wrong_auth_mode",
                    field="auth_mode",
                )
            store.delete_expired_tokens(session, row.id, now)
            session.add(
                OnlineEndpointTokenRow(
                    endpoint_id=row.id,
                    token_hash=hash_token(raw),
                    expires_at=expires,
                    created_by=principal_id,
                    created_at=now,
                )
            )
        refresh = now + self.token_ttl * _REFRESH_AFTER
        return EndpointTokenRead(
            access_token=raw,
            expiry_time_utc=int(expires.timestamp()),
            refresh_after_time_utc=int(refresh.timestamp()),
        )


def _endpoint(session: Session, workspace: str, name: str) -> OnlineEndpointRow:
    row = store.find_endpoint(session, workspace, name)
    if row is None:
        raise NotFoundError(
            f"online endpoint {name!r} does not exist in workspace {workspace!r}",
            code="endpoint_not_found",
            field="name",
        )
    return row


# --- the gateway's check ----------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointCredentials:
    """What deciding a request needs of an endpoint; safe to cache (hashes only)."""

    endpoint_id: str
    auth_mode: str
    keys_version: int
    primary_key_hash: str | None
    secondary_key_hash: str | None


@dataclass(frozen=True)
class EndpointCaller:
    """Who a scoring request came as: which key, or which token's holder."""

    endpoint_id: str
    credential: str  # "primary" | "secondary" | "aml_token"
    principal_id: str | None = None  # the user a token was issued to


class EndpointAuthenticator:
    """``authenticate(workspace, endpoint, presented)``: the caller, or None (401)."""

    def __init__(
        self,
        db: Database,
        *,
        max_age: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.max_age = max_age
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._endpoints: dict[tuple[str, str], tuple[float, EndpointCredentials | None]] = {}
        # token hash -> (endpoint id, keys_version when found, expiry, holder)
        self._tokens: dict[str, tuple[str, int, datetime, str]] = {}

    def invalidate(self, endpoint_id: str) -> None:
        """This server changed the endpoint's credentials: forget what was cached."""
        with self._lock:
            self._endpoints = {
                k: v
                for k, v in self._endpoints.items()
                if v[1] is None or v[1].endpoint_id != endpoint_id
            }
            self._tokens = {k: v for k, v in self._tokens.items() if v[0] != endpoint_id}

    def credentials(self, workspace: str, endpoint: str) -> EndpointCredentials | None:
        key = (workspace, endpoint)
        now = self.monotonic()
        with self._lock:
            cached = self._endpoints.get(key)
        if cached is not None and now - cached[0] < self.max_age:
            return cached[1]
        found = self._load(workspace, endpoint)
        with self._lock:
            self._endpoints[key] = (now, found)
        return found

    def authenticate(
        self, workspace: str, endpoint: str, presented: str | None
    ) -> EndpointCaller | None:
        if not presented:
            return None
        creds = self.credentials(workspace, endpoint)
        if creds is None:
            return None
        digest = hash_token(presented)
        if creds.auth_mode == "key":
            for name, wanted in (
                ("primary", creds.primary_key_hash),
                ("secondary", creds.secondary_key_hash),
            ):
                if wanted is not None and hmac.compare_digest(digest, wanted):
                    return EndpointCaller(creds.endpoint_id, name)
            return None
        return self._token(creds, digest)

    def _token(self, creds: EndpointCredentials, digest: str) -> EndpointCaller | None:
        with self._lock:
            cached = self._tokens.get(digest)
        if cached is None:
            with self.db.read() as session:
                row = store.find_token(session, digest)
                if row is None or row.endpoint_id != creds.endpoint_id:
                    return None  # a token of endpoint A is nothing on endpoint B
                cached = (row.endpoint_id, creds.keys_version, row.expires_at, row.created_by)
            with self._lock:
                self._tokens[digest] = cached
        endpoint_id, version, expires, holder = cached
        if endpoint_id != creds.endpoint_id or version != creds.keys_version:
            return None
        if expires <= self.clock():
            return None
        return EndpointCaller(endpoint_id, "aml_token", holder)

    def _load(self, workspace: str, endpoint: str) -> EndpointCredentials | None:
        with self.db.read() as session:
            row = store.credentials(session, workspace, endpoint)
        if row is None:
            return None
        return EndpointCredentials(row[0], row[1], int(row[2]), row[3], row[4])
