"""Where a datastore may point, how it signs in, and how it is opened.

A local datastore's folder is resolved (symlinks followed) and must lie inside one of the
folders an administrator allowed (``datastore_roots``); it may not overlap the server's own
data (its data folder, its artifact root) or any workspace's storage, which other workspaces
must not reach through a datastore. The folder is resolved and checked again each time the
datastore is opened: a root may have been withdrawn, a folder swapped for a symlink.

An S3 datastore signs in with keys from the key vault, anonymously, or, only where an
administrator turned it on (``datastore_server_credentials``), with the server's own
credentials: those reach whatever the server's instance role reaches, and everyone who may
create a datastore would reach it too.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from shipyard.domain.errors import (
    ConflictError,
    InvalidInputError,
    ShipyardError,
    StorageAccessError,
    UnavailableError,
)
from shipyard.schemas.datastores import DatastoreCreate
from shipyard.storage.base import FileInfo, Storage, Writer
from shipyard.storage.factory import join_uri, local_path, open_storage
from shipyard.storage.paths import clean_relative
from shipyard.storage.s3_options import S3Options
from shipyard.store import workspaces as workspace_store
from shipyard.store.datastores import DatastoreRow

log = logging.getLogger(__name__)

MANAGED_SECRET = re.compile(r"^datastore-.+-credentials$")
_REGION = re.compile(r"^[a-z0-9-]{1,64}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: What S3 keys are made of: they go into request headers and signatures.
PRINTABLE = re.compile(r"^[\x21-\x7e]+$")
_S3_FIELDS = ("bucket", "prefix", "endpoint_url", "region", "credentials")
#: Attempts per request when a datastore is used, and when it is checked (a client is waiting
#: for that answer: one attempt, so an endpoint that does not answer is a quick 503).
USE_ATTEMPTS = 3
CHECK_ATTEMPTS = 1


def managed_secret_name(datastore: str) -> str:
    """The key-vault secret a datastore makes for keys given inline (and deletes with itself)."""
    return f"datastore-{datastore}-credentials"


@dataclass(frozen=True)
class DatastorePolicy:
    """What the server's settings allow datastores to reach."""

    roots: tuple[str, ...] = ()  # folders local datastores may point into
    protected: tuple[str, ...] = ()  # the server's own folders (data folder, artifact root)
    server_credentials: bool = False  # S3 datastores without keys may sign in as the server
    workspace_s3_endpoint: str | None = None  # shown for workspaceblobstore on S3
    connect_timeout: float = 5.0


@dataclass(frozen=True)
class Keys:
    access_key_id: str
    secret_access_key: str

    def as_json(self) -> str:
        return json.dumps(
            {"access_key_id": self.access_key_id, "secret_access_key": self.secret_access_key}
        )


@dataclass(frozen=True)
class Credentials:
    """How a datastore signs in (``kind``: secret, anonymous, identity, none); ``secret`` is
    the vault secret holding the keys, ``managed`` when the datastore made it, ``keys`` the
    plaintext while a request needs it."""

    kind: str
    secret: str | None = None
    managed: bool = False
    keys: Keys | None = None


@dataclass(frozen=True)
class Target:
    """Where a datastore points and how it signs in, as stored: a snapshot that is used
    outside the transaction that read it."""

    name: str
    type: str
    read_only: bool = False
    path: str | None = None
    bucket: str | None = None
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    kind: str = "none"
    secret: str | None = None

    @classmethod
    def of(cls, row: DatastoreRow) -> Target:
        return cls(
            row.name,
            row.type,
            row.read_only,
            row.path,
            row.bucket,
            row.prefix or "",
            row.endpoint_url,
            row.region,
            row.credentials_kind,
            row.credentials_secret,
        )


def parse_keys(value: str, secret: str, *, field: str | None) -> Keys:
    """The keys a secret holds; the messages describe the value without quoting it.
    ``field`` None: met while opening the datastore, which is not the request's fault."""
    try:
        data = json.loads(value)
    except ValueError:
        data = None
    pair = data if isinstance(data, dict) else {}
    key_id, key = pair.get("access_key_id"), pair.get("secret_access_key")
    if isinstance(key_id, str) and isinstance(key, str) and printable(key_id, key):
        return Keys(key_id, key)
    detail = (
        f"secret {secret!r} does not hold S3 keys: its value must be the JSON object "
        '{"access_key_id": "...", "secret_access_key": "..."} (printable ASCII, no spaces)'
    )
    if field is None:
        raise ConflictError(detail, code="invalid_credentials_secret")
    raise InvalidInputError(detail, code="invalid_credentials_secret", field=field)


def printable(*values: str) -> bool:
    return all(PRINTABLE.fullmatch(value) for value in values)


class Reach:
    """The policy applied: checks a new datastore's target, opens a stored one."""

    def __init__(self, policy: DatastorePolicy) -> None:
        self.policy = policy

    # -- a new datastore ----------------------------------------------------------------------

    def target(self, session: Session, body: DatastoreCreate) -> Target:
        given = body.model_fields_set
        if body.type == "local":
            for extra in _S3_FIELDS:
                if extra in given and getattr(body, extra) is not None:
                    raise not_for(extra, "local", "s3")
            if not body.path:
                raise InvalidInputError(
                    "a local datastore needs path: a folder on the server",
                    code="missing_field",
                    field="path",
                )
            return Target(body.name, "local", body.read_only, self.folder(session, body.path))
        if "path" in given and body.path is not None:
            raise not_for("path", "s3", "local")
        if not body.bucket:
            raise InvalidInputError(
                "an s3 datastore needs bucket", code="missing_field", field="bucket"
            )
        return Target(
            body.name,
            "s3",
            body.read_only,
            bucket=_check_bucket(body.bucket),
            prefix=clean_relative(body.prefix or "", field="prefix"),
            endpoint_url=_check_endpoint(body.endpoint_url),
            region=_check_region(body.region),
        )

    def folder(self, session: Session, raw: str) -> str:
        """The folder ``raw`` names, resolved, if a datastore may point there."""
        shown = raw if len(raw) <= 200 else raw[:197] + "..."
        path = local_path(raw) if not _CONTROL.search(raw) else None
        if path is None or not path.is_absolute():
            raise InvalidInputError(
                f"{shown!r} is not an absolute folder path on the server (nor a file:// URI)",
                code="invalid_path",
                field="path",
            )
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable parent
            raise _not_allowed(shown) from exc
        # Allowed roots first, existence last: the answer must not tell whether a folder
        # outside the roots exists.
        if not _inside_any(resolved, self._roots()):
            raise _not_allowed(shown)
        for own in self._server_folders(session):
            if _within(resolved, own) or _within(own, resolved):
                raise InvalidInputError(
                    f"{shown!r} overlaps the server's own data or a workspace's storage",
                    code="storage_not_allowed",
                    field="path",
                )
        if not resolved.is_dir():
            raise InvalidInputError(
                f"{shown!r} is not an existing folder", code="storage_not_found", field="path"
            )
        return str(resolved)

    def check_access(self, target: Target, credentials: Credentials) -> None:
        """List the datastore's root once, so that a wrong key, a missing bucket or an
        endpoint that does not answer is found now, with the field to fix."""
        field = "path" if target.type == "local" else "bucket"
        try:
            if target.type == "local":
                storage = open_storage(target.path or "", field="path")
            else:
                storage = self.s3(target, credentials.kind, credentials.keys, CHECK_ATTEMPTS)
            storage.list("")
        except StorageAccessError as exc:
            at = "path" if target.type == "local" else "credentials"
            raise StorageAccessError(exc.detail, code=exc.code, field=at) from exc
        except UnavailableError as exc:
            raise UnavailableError(exc.detail, code=exc.code, field="endpoint_url") from exc
        except ShipyardError as exc:
            raise type(exc)(exc.detail, code=exc.code, field=exc.field or field) from exc
        except PermissionError as exc:
            raise StorageAccessError(
                f"the server may not read folder {target.path!r}",
                code="storage_access_denied",
                field="path",
            ) from exc
        except Exception as exc:  # the S3 client's own failure: say so, never a 500
            log.warning("checking a datastore failed", extra={"error": type(exc).__name__})
            raise UnavailableError(
                f"could not list the datastore ({type(exc).__name__}); check where it points",
                code="storage_unavailable",
                field=field,
            ) from exc

    # -- a stored datastore -------------------------------------------------------------------

    def open(self, target: Target, keys: Keys | None) -> Storage:
        if target.type == "local":
            return open_storage(str(self.recheck_folder(target)), field="path")
        if target.kind == "identity" and not self.policy.server_credentials:
            raise ConflictError(
                f"datastore {target.name!r} signs in with the server's own credentials, which "
                "this server no longer allows (setting datastore_server_credentials); give it "
                "credentials",
                code="server_credentials_not_allowed",
            )
        return self.s3(target, target.kind, keys, USE_ATTEMPTS)

    def s3(self, target: Target, kind: str, keys: Keys | None, attempts: int) -> Storage:
        options = S3Options(
            endpoint_url=target.endpoint_url,
            region=target.region,
            access_key_id=keys.access_key_id if keys else None,
            secret_access_key=keys.secret_access_key if keys else None,
            anonymous=kind == "anonymous",
            connect_timeout=self.policy.connect_timeout,
            attempts=attempts,
        )
        uri = join_uri(f"s3://{target.bucket}", target.prefix)
        return open_storage(uri, s3=options, field="bucket")

    def recheck_folder(self, target: Target) -> Path:
        try:
            folder = Path(target.path or "").resolve()
        except (OSError, RuntimeError) as exc:
            raise _folder_gone(target.name) from exc
        if not _inside_any(folder, self._roots()):
            raise ConflictError(
                f"datastore {target.name!r} points at a folder that is no longer inside the "
                "folders this server allows for datastores (setting datastore_roots)",
                code="storage_not_allowed",
            )
        if not folder.is_dir():
            raise _folder_gone(target.name)
        return folder

    def _roots(self) -> list[Path]:
        return [Path(root).resolve() for root in self.policy.roots]

    def _server_folders(self, session: Session) -> Iterator[Path]:
        for folder in self.policy.protected:
            if (path := local_path(folder)) is not None:
                yield path.resolve()
        for uri, prefix in workspace_store.storage_folders(session):
            if (path := local_path(uri)) is not None:
                yield (path / prefix).resolve()


class ReadOnlyStorage:
    """A read-only datastore: reads pass through, every write is refused (409
    ``datastore_read_only``)."""

    def __init__(self, inner: Storage, name: str) -> None:
        self._inner = inner
        self._name = name
        self.uri = inner.uri

    def _refuse(self) -> ConflictError:
        return ConflictError(
            f"datastore {self._name!r} is read-only", code="datastore_read_only", field="path"
        )

    def ensure_folder(self, path: str) -> None:
        raise self._refuse()

    def delete_tree(self, path: str) -> None:
        raise self._refuse()

    def delete_file(self, path: str) -> None:
        raise self._refuse()

    def writer(self, path: str) -> Writer:
        raise self._refuse()

    def exists(self, path: str) -> bool:
        return self._inner.exists(path)

    def stat(self, path: str) -> FileInfo:
        return self._inner.stat(path)

    def list(self, path: str = "", *, recursive: bool = False) -> list[FileInfo]:
        return self._inner.list(path, recursive=recursive)

    def read(self, path: str, *, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        return self._inner.read(path, start=start, end=end)


def not_for(field: str, kind: str, other: str) -> InvalidInputError:
    return InvalidInputError(
        f"{field} applies to {other} datastores, not to {kind} ones",
        code="invalid_field",
        field=field,
    )


def _check_bucket(bucket: str) -> str:
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        shown = bucket if len(bucket) <= 70 else bucket[:67] + "..."
        raise InvalidInputError(
            f"{shown!r} is not a valid bucket name: 3 to 63 lowercase letters, digits, '.' and "
            "'-', starting and ending with a letter or digit",
            code="invalid_bucket",
            field="bucket",
        )
    return bucket


def _check_endpoint(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url) if not _CONTROL.search(url) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad_endpoint("must be an http:// or https:// URL, e.g. http://minio.internal:9000")
    if parts.username is not None or parts.password is not None:
        # Not quoted: what comes before '@' is a credential.
        raise _bad_endpoint("holds credentials; give them under credentials instead")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise _bad_endpoint("is the service's address only: no path, query or fragment")
    try:
        _ = parts.port  # raises on a port that is no number, or out of range
    except ValueError as exc:
        raise _bad_endpoint("has an invalid port") from exc
    return url.rstrip("/")


def _bad_endpoint(why: str) -> InvalidInputError:
    return InvalidInputError(f"endpoint_url {why}", code="invalid_endpoint", field="endpoint_url")


def _check_region(region: str | None) -> str | None:
    if region is not None and not _REGION.fullmatch(region):
        raise InvalidInputError(
            "region is lowercase letters, digits and '-', e.g. us-east-1",
            code="invalid_region",
            field="region",
        )
    return region


def _within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _inside_any(path: Path, roots: Iterable[Path]) -> bool:
    return any(_within(path, root) for root in roots)


def _not_allowed(shown: str) -> InvalidInputError:
    return InvalidInputError(
        f"{shown!r} is outside the folders this server allows for datastores; an administrator "
        "can add a folder to the datastore_roots setting",
        code="storage_not_allowed",
        field="path",
    )


def _folder_gone(name: str) -> ConflictError:
    return ConflictError(
        f"datastore {name!r} points at a folder that no longer exists", code="storage_not_found"
    )
