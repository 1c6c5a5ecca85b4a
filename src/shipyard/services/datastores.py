"""Datastores: a workspace's named connections to storage, and the door data goes through.

Every workspace has ``workspaceblobstore``, its own storage (no row: it comes with the
workspace and cannot be changed or deleted). Others are a folder on the server's host
(``type: local``) or an S3-compatible bucket (``type: s3``); ``datastore_targets`` decides
where they may point.

**Credentials live in the key vault.** A datastore row only names the vault secret that holds
its keys (JSON ``{"access_key_id", "secret_access_key"}``). Keys given inline are written by
this service under the reserved name ``datastore-<name>-credentials``: the datastore manages
that secret (replaces it on rotation, deletes it with itself). ``secret_name`` points at a
secret someone already keeps, which stays when the datastore goes. One model for both means
one place that holds keys, encrypted and re-encrypted by master-key rotation like every other
secret, and two doors to read them, both refused to the roles that may not read secrets:
``list_secrets`` (``workspaces/datastores/listSecrets/action``) and the vault's own reveal
(``workspaces/secrets/read``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple, cast
from urllib.parse import unquote

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from shipyard.domain.paging import decode_page_token, encode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.datastores import (
    DATASTORE_NAME,
    CredentialsKind,
    CredentialsRead,
    DatastoreCreate,
    DatastoreRead,
    DatastoreSecretsRead,
    DatastoreUpdate,
)
from shipyard.services.authz import Authorizer
from shipyard.services.datastore_keys import DatastoreKeys
from shipyard.services.datastore_targets import (
    Credentials,
    DatastorePolicy,
    Reach,
    ReadOnlyStorage,
    Target,
    managed_secret_name,
)
from shipyard.services.datastore_uris import DefaultDatastoreResolver, Location
from shipyard.services.paging import split_page
from shipyard.services.secrets import SecretService
from shipyard.services.workspaces import DEFAULT_DATASTORE
from shipyard.storage.base import Storage
from shipyard.storage.factory import join_uri, local_path, open_storage, parse_s3_uri
from shipyard.storage.paths import clean_relative
from shipyard.store import data as data_store
from shipyard.store import datastores as store
from shipyard.store import workspaces as workspace_store
from shipyard.store.base import utcnow
from shipyard.store.database import Database
from shipyard.store.datastores import DatastoreRow
from shipyard.store.tracking import names_of
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow

__all__ = [
    "DatastorePolicy",
    "DatastoreService",
    "NamedDatastoreResolver",
    "OpenDatastore",
    "check_datastore_name",
]


class OpenDatastore(NamedTuple):
    """A datastore ready to use, rooted at the datastore; a read-only one refuses writes."""

    storage: Storage
    read_only: bool


def check_datastore_name(name: str, *, field: str = "name") -> str:
    if not DATASTORE_NAME.fullmatch(name):
        shown = name if len(name) <= 100 else name[:97] + "..."
        raise InvalidInputError(
            f"datastore name {shown!r} is not valid: 1 to 100 letters, digits, '_' and '-', "
            "starting with a letter or digit",
            code="invalid_name",
            field=field,
        )
    return name


class DatastoreService:
    def __init__(
        self,
        db: Database,
        secrets: SecretService,
        authorizer: Authorizer,
        policy: DatastorePolicy,
        *,
        open_storage: Callable[[str], Storage] = open_storage,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.authorizer = authorizer
        self.policy = policy
        self.reach = Reach(policy)
        self.keys = DatastoreKeys(secrets, authorizer, policy)
        self._open_workspace_storage = open_storage

    def create(
        self, workspace: str, body: DatastoreCreate, principal: Principal, *, validate: bool = True
    ) -> DatastoreRead:
        name = check_datastore_name(body.name)
        if name.lower() == DEFAULT_DATASTORE:
            raise _exists(name)
        with self.db.read() as session:
            if store.get_datastore(session, _live_workspace(session, workspace).id, name):
                raise _exists(name)
            target = self.reach.target(session, body)
        credentials = self.keys.choose(workspace, name, body.type, body.credentials, principal)
        if validate:
            self.reach.check_access(target, credentials)
        # The row first: a concurrent create of the same name then fails before it could
        # replace the keys this one keeps.
        try:
            with self.db.write() as session:
                ws = _live_workspace(session, workspace)
                if store.get_datastore(session, ws.id, name):
                    raise _exists(name)
                row = _new_row(ws.id, body, target, credentials, principal.id)
                session.add(row)
                session.flush()
                created = _reads(session, [row])[0]
        except IntegrityError as exc:  # that concurrent create won
            raise _exists(name) from exc
        try:
            self.keys.keep(workspace, credentials, principal.id)
        except BaseException:
            with self.db.write() as session:
                made = store.get_datastore(session, _live_workspace(session, workspace).id, name)
                if made is not None:
                    session.delete(made)
            raise
        return created

    def get(self, workspace: str, name: str) -> DatastoreRead:
        check_datastore_name(name)
        with self.db.read() as session:
            ws = _live_workspace(session, workspace)
            if name == DEFAULT_DATASTORE:
                default = store.default_name(session, ws.id)
                return self._workspace_store(ws, is_default=default is None)
            return _reads(session, [_require(session, ws, name)])[0]

    def list(
        self, workspace: str, *, page_token: str | None, max_results: int
    ) -> Page[DatastoreRead]:
        """The workspace's own storage first (on the first page), then the others by name."""
        after = decode_page_token(page_token)
        first = after is None
        limit = max_results - 1 if first else max_results
        with self.db.read() as session:
            ws = _live_workspace(session, workspace)
            rows = store.list_datastores(session, ws.id, after=after, limit=limit + 1)
            if limit == 0:  # a first page of one: the others start from the beginning
                page: Sequence[DatastoreRow] = []
                token = encode_page_token("") if rows else None
            else:
                page, token = split_page(rows, limit, lambda r: r.name)
            items = _reads(session, page)
            if first:
                default = store.default_name(session, ws.id)
                items.insert(0, self._workspace_store(ws, is_default=default is None))
            return Page[DatastoreRead](items=items, next_page_token=token)

    def update(
        self,
        workspace: str,
        name: str,
        body: DatastoreUpdate,
        principal: Principal,
        *,
        validate: bool = True,
    ) -> DatastoreRead:
        check_datastore_name(name)
        _refuse_workspace_store(name, "changed")
        changes = body.model_fields_set
        with self.db.read() as session:
            current = _require(session, _live_workspace(session, workspace), name)
            target, was_managed = Target.of(current), current.credentials_managed
        credentials: Credentials | None = None
        if "credentials" in changes:
            given = body.credentials
            credentials = self.keys.choose(workspace, name, target.type, given, principal)
            if validate:
                self.reach.check_access(target, credentials)
            self.keys.keep(workspace, credentials, principal.id)
        with self.db.write() as session:
            row = _require(session, _live_workspace(session, workspace), name)
            if "description" in changes:
                row.description = body.description
            if "tags" in changes:
                row.tags = dict(body.tags or {})
            if body.read_only is not None:
                row.read_only = body.read_only
            if credentials is not None:
                row.credentials_kind = credentials.kind
                row.credentials_secret = credentials.secret
                row.credentials_managed = credentials.managed
            row.updated_by, row.updated_at = principal.id, utcnow()
            session.flush()
            updated = _reads(session, [row])[0]
        if was_managed and credentials is not None and not credentials.managed:
            self.keys.forget(workspace, managed_secret_name(name))
        return updated

    def delete(self, workspace: str, name: str) -> None:
        check_datastore_name(name)
        _refuse_workspace_store(name, "deleted")
        with self.db.write() as session:
            ws = _live_workspace(session, workspace)
            row = _require(session, ws, name)
            check_not_referenced(session, ws, row)
            managed = row.credentials_secret if row.credentials_managed else None
            session.delete(row)
        if managed:
            self.keys.forget(workspace, managed)

    def set_default(self, workspace: str, name: str, principal_id: str) -> DatastoreRead:
        """Make ``name`` the default (``workspaceblobstore``: the workspace's own storage)."""
        check_datastore_name(name)
        try:
            with self.db.write() as session:
                ws = _live_workspace(session, workspace)
                store.clear_default(session, ws.id)
                if name == DEFAULT_DATASTORE:
                    return self._workspace_store(ws, is_default=True)
                row = _require(session, ws, name)
                row.is_default = True
                row.updated_by, row.updated_at = principal_id, utcnow()
                session.flush()
                return _reads(session, [row])[0]
        except IntegrityError as exc:  # another one was made the default at the same moment
            raise ConflictError(
                "another datastore was made the default at the same time; try again",
                code="datastore_conflict",
                field="name",
            ) from exc

    def default_name(self, workspace: str) -> str:
        """The name of the workspace's default datastore."""
        with self.db.read() as session:
            ws = _live_workspace(session, workspace)
            return store.default_name(session, ws.id) or DEFAULT_DATASTORE

    def list_secrets(self, workspace: str, name: str) -> DatastoreSecretsRead:
        """The datastore's keys (the route that calls this is audited)."""
        check_datastore_name(name)
        with self.db.read() as session:
            ws = _live_workspace(session, workspace)
            if name == DEFAULT_DATASTORE:
                kind = "none" if local_path(ws.storage_uri) else "identity"
                return DatastoreSecretsRead(name=name, kind=kind)
            target = Target.of(_require(session, ws, name))
        keys = self.keys.stored(workspace, target)
        return DatastoreSecretsRead(
            name=name,
            kind=cast(CredentialsKind, target.kind),
            access_key_id=keys.access_key_id if keys else None,
            secret_access_key=keys.secret_access_key if keys else None,
        )

    # -- opening ------------------------------------------------------------------------------

    def open(self, workspace: str, name: str) -> OpenDatastore:
        """The datastore's storage, rooted at the datastore; NotFoundError (code
        ``datastore_not_found``) when the workspace has no datastore of that name."""
        check_datastore_name(name)
        with self.db.read() as session:
            ws = _live_workspace(session, workspace)
            if name == DEFAULT_DATASTORE:
                uri = join_uri(ws.storage_uri, ws.storage_prefix)
                return OpenDatastore(self._open_workspace_storage(uri), False)
            target = Target.of(_require(session, ws, name))
        return self.open_target(workspace, target)

    def open_target(self, workspace: str, target: Target) -> OpenDatastore:
        storage = self.reach.open(target, self.keys.stored(workspace, target))
        if target.read_only:
            return OpenDatastore(ReadOnlyStorage(storage, target.name), True)
        return OpenDatastore(storage, False)

    # -- representations ----------------------------------------------------------------------

    def _workspace_store(self, ws: WorkspaceRow, *, is_default: bool) -> DatastoreRead:
        read = DatastoreRead(
            name=DEFAULT_DATASTORE,
            type="local",
            description="The workspace's own storage.",
            is_default=is_default,
            uri="",
            credentials=CredentialsRead(kind="none"),
            created_by=ws.creator.name,
            created_at=ws.created_at,
            updated_at=ws.created_at,
        )
        folder = local_path(ws.storage_uri)
        if folder is not None:
            path = str(folder / ws.storage_prefix)
            return read.model_copy(update={"uri": path, "path": path})
        bucket, prefix = parse_s3_uri(join_uri(ws.storage_uri, ws.storage_prefix))
        prefix = unquote(prefix)
        return read.model_copy(
            update={
                "type": "s3",
                "uri": f"s3://{bucket}/{prefix}",
                "bucket": bucket,
                "prefix": prefix,
                "endpoint_url": self.policy.workspace_s3_endpoint,
                "credentials": CredentialsRead(kind="identity"),
            }
        )


class NamedDatastoreResolver:
    """``azureml://datastores/<name>/paths/<p>`` for every datastore of a workspace. The
    workspace's own storage is resolved as before, and ``default`` stays it (uploads land in
    the workspace's own storage)."""

    def __init__(self, datastores: DatastoreService, own: DefaultDatastoreResolver) -> None:
        self.datastores = datastores
        self.own = own

    def resolve(
        self, session: Session, workspace: WorkspaceRow, datastore: str, path: str, *, field: str
    ) -> Location:
        if datastore == DEFAULT_DATASTORE:
            return self.own.resolve(session, workspace, datastore, path, field=field)
        found = DATASTORE_NAME.fullmatch(datastore)
        row = store.get_datastore(session, workspace.id, datastore) if found else None
        if row is None:
            shown = datastore if len(datastore) <= 100 else datastore[:97] + "..."
            raise NotFoundError(
                f"datastore {shown!r} does not exist in workspace {workspace.name!r}",
                code="datastore_not_found",
                field=field,
            )
        clean = clean_relative(path, field=field)
        opened = self.datastores.open_target(workspace.name, Target.of(row))
        return Location(datastore, opened.storage, "", clean, opened.read_only)

    def default(self, workspace: WorkspaceRow, path: str = "", *, field: str = "path") -> Location:
        return self.own.default(workspace, path, field=field)


def check_not_referenced(session: Session, workspace: WorkspaceRow, row: DatastoreRow) -> None:
    """Refuse deleting a datastore that a data asset version still points into (409
    ``datastore_in_use``, naming one); later kinds of reference join the check here."""
    used = data_store.version_on_datastore(session, workspace.id, row.name)
    if used is not None:
        name, version = used
        raise ConflictError(
            f"datastore {row.name!r} holds data asset {name}:{version}; delete or move the "
            "asset versions that use it first",
            code="datastore_in_use",
            field="name",
        )


def _live_workspace(session: Session, workspace: str) -> WorkspaceRow:
    row = workspace_store.get_workspace(session, workspace)
    if row is None:
        raise NotFoundError(
            f"workspace {workspace!r} does not exist", code="workspace_not_found", field="workspace"
        )
    if row.deleted_at is not None:
        raise NotFoundError(
            f"workspace {workspace!r} is deleted; recover it to reach its datastores",
            code="workspace_deleted",
            field="workspace",
        )
    return row


def _require(session: Session, ws: WorkspaceRow, name: str) -> DatastoreRow:
    row = store.get_datastore(session, ws.id, name)
    if row is None:
        raise NotFoundError(
            f"datastore {name!r} does not exist in workspace {ws.name!r}",
            code="datastore_not_found",
            field="name",
        )
    return row


def _new_row(
    workspace_id: str,
    body: DatastoreCreate,
    target: Target,
    credentials: Credentials,
    principal_id: str,
) -> DatastoreRow:
    return DatastoreRow(
        workspace_id=workspace_id,
        name=target.name,
        type=target.type,
        description=body.description,
        tags=dict(body.tags),
        read_only=body.read_only,
        is_default=False,
        path=target.path,
        bucket=target.bucket,
        prefix=target.prefix if target.type == "s3" else None,
        endpoint_url=target.endpoint_url,
        region=target.region,
        credentials_kind=credentials.kind,
        credentials_secret=credentials.secret,
        credentials_managed=credentials.managed,
        created_by=principal_id,
        updated_by=principal_id,
    )


def _reads(session: Session, rows: Sequence[DatastoreRow]) -> list[DatastoreRead]:
    people = names_of(session, UserRow, {r.created_by for r in rows} | {r.updated_by for r in rows})
    return [_read(row, people) for row in rows]


def _read(row: DatastoreRow, people: dict[str, str]) -> DatastoreRead:
    if row.type == "local":
        uri = row.path or ""
    else:
        uri = f"s3://{row.bucket}/{row.prefix}" if row.prefix else f"s3://{row.bucket}"
    return DatastoreRead(
        name=row.name,
        type="s3" if row.type == "s3" else "local",
        description=row.description,
        tags=row.tags,
        read_only=row.read_only,
        is_default=row.is_default,
        uri=uri,
        path=row.path,
        bucket=row.bucket,
        prefix=row.prefix,
        endpoint_url=row.endpoint_url,
        region=row.region,
        credentials=CredentialsRead(
            kind=cast(CredentialsKind, row.credentials_kind),
            secret_name=row.credentials_secret,
            managed=row.credentials_managed,
        ),
        created_by=people.get(row.created_by),
        created_at=row.created_at,
        updated_by=people.get(row.updated_by),
        updated_at=row.updated_at,
    )


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"datastore {name!r} already exists in this workspace",
        code="datastore_exists",
        field="name",
    )


def _refuse_workspace_store(name: str, verb: str) -> None:
    if name == DEFAULT_DATASTORE:
        raise ConflictError(
            f"{DEFAULT_DATASTORE} is the workspace's own storage and cannot be {verb}",
            code="datastore_protected",
            field="name",
        )
