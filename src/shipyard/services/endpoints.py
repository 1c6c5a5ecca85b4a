"""Online endpoints: create, show, list, update (traffic, mirror traffic, auth mode), delete,
and their credentials (docs/endpoints.md).

An endpoint is a stable scoring URL in front of its deployments
(``services.online_deployments``). Its traffic split is checked against the deployments it
has, in the transaction that writes it, so a split never names a deployment that is gone.
Credentials are ``services.endpoint_keys``'s: this module makes the keys with the endpoint,
writes their hashes with it, and drops them with it.

``compute`` (Azure's Kubernetes endpoint field) names a Ray compute of the workspace: the
endpoint's deployments run there as Ray Serve applications (a deployment may name its own,
which wins). It is set at create time and never changes: a deployment's instances cannot
move between clusters in place. Each deployment pins the compute's name and address in its
spec (``online_compute``), which is what the runtime reads.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.endpoints import (
    KEY_TYPES,
    check_endpoint_name,
    check_mirror_traffic,
    check_traffic,
)
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.domain.paging import decode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.endpoints import (
    EndpointKeysRead,
    EndpointTokenRead,
    OnlineEndpointCreate,
    OnlineEndpointRead,
    OnlineEndpointUpdate,
)
from shipyard.services.endpoint_keys import EndpointKeys, new_key
from shipyard.services.paging import split_page
from shipyard.services.tokens import hash_token
from shipyard.services.workspace_rows import live_workspace
from shipyard.store import endpoints as store
from shipyard.store.base import new_id, utcnow
from shipyard.store.computes import get_compute
from shipyard.store.database import Database
from shipyard.store.endpoints import OnlineEndpointRow
from shipyard.store.tracking import names_of
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow

LOCAL_COMPUTE = "local"  # the server's own host (services.jobs has the same name)


def scoring_path(workspace: str, endpoint: str) -> str:
    """Where the gateway takes scoring requests for the endpoint."""
    return (
        f"/api/v1/workspaces/{quote(workspace, safe='')}/onlineEndpoints/"
        f"{quote(endpoint, safe='')}/score"
    )


class OnlineEndpointService:
    def __init__(
        self,
        db: Database,
        keys: EndpointKeys,
        *,
        server_url: str,
        clock: Callable[[], datetime] = utcnow,
        changed: Callable[[], None] = lambda: None,
    ) -> None:
        self.db = db
        self.keys = keys
        self.server_url = server_url.rstrip("/")
        self.clock = clock
        # Wakes the deployment runtime, so the gateway routes by a new split at once.
        self.changed = changed

    def create(
        self, principal: Principal, workspace: str, body: OnlineEndpointCreate
    ) -> OnlineEndpointRead:
        name = check_endpoint_name(body.name)
        # No deployment exists yet: a split may only name none, or give them all 0%.
        traffic = check_traffic(body.traffic, ())
        mirror = check_mirror_traffic(body.mirror_traffic, traffic, ())
        keys = {key_type: new_key() for key_type in KEY_TYPES} if body.auth_mode == "key" else {}
        now = self.clock()
        try:
            with self.db.write() as session:
                ws = live_workspace(session, workspace)
                if store.get_endpoint(session, ws.id, name) is not None:
                    raise _exists(name)
                compute = online_compute(session, ws, body.compute)
                row = OnlineEndpointRow(
                    id=new_id(),
                    workspace_id=ws.id,
                    name=name,
                    description=body.description,
                    tags=body.tags,
                    auth_mode=body.auth_mode,
                    traffic=traffic,
                    mirror_traffic=mirror,
                    compute=compute["name"] if compute else None,
                    primary_key_hash=_hash(keys.get("primary")),
                    secondary_key_hash=_hash(keys.get("secondary")),
                    created_by=principal.id,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                endpoint_id = row.id
        except IntegrityError as exc:
            raise _exists(name) from exc
        try:
            for key_type, key in keys.items():
                self.keys.keep(workspace, endpoint_id, key_type, key, principal.id)
        except BaseException:
            # Without its keys in the vault the endpoint could never show them: undo it.
            self._remove(workspace, name)
            raise
        return self.get(workspace, name)

    def get(self, workspace: str, name: str) -> OnlineEndpointRead:
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            return self._reads(session, ws, [_require(session, ws, name)])[0]

    def list(
        self, workspace: str, *, page_token: str | None, max_results: int
    ) -> Page[OnlineEndpointRead]:
        after = decode_page_token(page_token)
        with self.db.read() as session:
            ws = live_workspace(session, workspace)
            rows = store.list_endpoints(session, ws.id, after=after, limit=max_results + 1)
            page, token = split_page(rows, max_results, lambda r: r.name)
            return Page[OnlineEndpointRead](
                items=self._reads(session, ws, page), next_page_token=token
            )

    def update(
        self, principal: Principal, workspace: str, name: str, body: OnlineEndpointUpdate
    ) -> OnlineEndpointRead:
        check_endpoint_name(name)
        if body.name is not None and body.name != name:
            raise ConflictError(
                f"the body names endpoint {body.name!r}, the path {name!r}; an endpoint "
                "cannot be renamed",
                code="name_mismatch",
                field="name",
            )
        new_keys: dict[str, str] = {}
        with self.db.write() as session:
            ws = live_workspace(session, workspace)
            row = _require(session, ws, name, lock=True)
            if body.compute is not None:
                _same_compute(session, ws, row, body.compute)
            deployments = store.deployment_names(session, row.id)
            traffic = (
                check_traffic(body.traffic, deployments)
                if body.traffic is not None
                else dict(row.traffic)
            )
            mirror = body.mirror_traffic if body.mirror_traffic is not None else row.mirror_traffic
            row.mirror_traffic = check_mirror_traffic(mirror, traffic, deployments)
            row.traffic = traffic
            if body.description is not None:
                row.description = body.description
            if body.tags is not None:
                row.tags = body.tags
            if body.auth_mode is not None and body.auth_mode != row.auth_mode:
                row.auth_mode = body.auth_mode
                row.keys_version += 1
                store.delete_tokens(session, row.id)
                if body.auth_mode == "key" and row.primary_key_hash is None:
                    new_keys = {key_type: new_key() for key_type in KEY_TYPES}
                    row.primary_key_hash = _hash(new_keys["primary"])
                    row.secondary_key_hash = _hash(new_keys["secondary"])
            row.updated_at = self.clock()
            endpoint_id = row.id
        for key_type, key in new_keys.items():
            self.keys.keep(workspace, endpoint_id, key_type, key, principal.id)
        if body.auth_mode is not None:
            self.keys.changed(endpoint_id)
        self.changed()
        return self.get(workspace, name)

    def delete(self, workspace: str, name: str) -> None:
        """The endpoint, its deployments and its keys."""
        check_endpoint_name(name)
        self._remove(workspace, name, missing_ok=False)

    def _remove(self, workspace: str, name: str, *, missing_ok: bool = True) -> None:
        with self.db.write() as session:
            ws = live_workspace(session, workspace)
            row = store.get_endpoint(session, ws.id, name)
            if row is None:
                if missing_ok:
                    return
                raise _missing(name, workspace)
            endpoint_id = row.id
            session.delete(row)
        self.keys.forget(workspace, endpoint_id)
        self.changed()

    # -- credentials ---------------------------------------------------------------------------

    def list_keys(self, workspace: str, name: str) -> EndpointKeysRead:
        check_endpoint_name(name)
        return self.keys.list_keys(workspace, name)

    def regenerate_keys(
        self, principal: Principal, workspace: str, name: str, key_type: str
    ) -> None:
        check_endpoint_name(name)
        self.keys.regenerate(workspace, name, key_type, principal.id)

    def token(self, principal: Principal, workspace: str, name: str) -> EndpointTokenRead:
        check_endpoint_name(name)
        return self.keys.issue_token(workspace, name, principal.id)

    # -- reads ---------------------------------------------------------------------------------

    def _reads(
        self, session: Session, ws: WorkspaceRow, rows: builtins.list[OnlineEndpointRow]
    ) -> builtins.list[OnlineEndpointRead]:
        people = names_of(session, UserRow, {r.created_by for r in rows})
        return [
            OnlineEndpointRead(
                name=row.name,
                description=row.description,
                tags=row.tags,
                auth_mode=row.auth_mode,
                traffic=row.traffic,
                mirror_traffic=row.mirror_traffic,
                provisioning_state=row.provisioning_state,
                scoring_uri=self.server_url + scoring_path(ws.name, row.name),
                compute=row.compute,
                created_by=people.get(row.created_by),
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
            for row in rows
        ]


def online_compute(session: Session, ws: WorkspaceRow, given: str | None) -> dict[str, str] | None:
    """``{name, address}`` of the Ray compute an endpoint or deployment names
    (``azureml:<name>``, ``shipyard:<name>`` or the bare name); None for the server's own
    host (none given, or ``local``). 400 naming ``compute`` for any other."""
    name = (given or "").strip()
    for prefix in ("azureml:", "shipyard:"):
        if name.lower().startswith(prefix):
            name = name[len(prefix) :]
    if name in ("", LOCAL_COMPUTE):
        return None
    row = get_compute(session, ws.id, name)
    if row is None:
        raise InvalidInputError(
            f"compute {name[:100]!r} does not exist in workspace {ws.name!r}; online "
            "deployments run on 'local' or on a Ray compute (shipyard compute create)",
            code="compute_not_found",
            field="compute",
        )
    if row.type != "ray" or not row.address:
        raise InvalidInputError(
            f"compute {name!r} is of type {row.type!r}; online deployments run on 'local' or "
            "on a Ray compute",
            code="unsupported_compute",
            field="compute",
        )
    return {"name": row.name, "address": row.address}


def _same_compute(session: Session, ws: WorkspaceRow, row: OnlineEndpointRow, given: str) -> None:
    wanted = online_compute(session, ws, given)
    if (wanted["name"] if wanted else None) != row.compute:
        raise ConflictError(
            f"online endpoint {row.name!r} runs on {row.compute or LOCAL_COMPUTE!r}; its compute "
            "cannot change: create another endpoint on the other compute",
            code="compute_immutable",
            field="compute",
        )


def deployment_compute(
    session: Session, workspace: str, endpoint: str, given: str | None
) -> dict[str, str] | None:
    """Where a deployment runs: the compute it names, else its endpoint's (see
    ``online_compute``)."""
    ws = live_workspace(session, workspace)
    parent = _require(session, ws, endpoint)
    return online_compute(session, ws, given if given is not None else parent.compute)


def _hash(key: str | None) -> str | None:
    return hash_token(key) if key is not None else None


def _require(
    session: Session, ws: WorkspaceRow, name: str, *, lock: bool = False
) -> OnlineEndpointRow:
    row = store.get_endpoint(session, ws.id, name, lock=lock)
    if row is None:
        raise _missing(name, ws.name)
    return row


def require_endpoint(
    session: Session, workspace: str, name: str, *, lock: bool = False
) -> OnlineEndpointRow:
    return _require(session, live_workspace(session, workspace), name, lock=lock)


def _missing(name: str, workspace: str) -> NotFoundError:
    return NotFoundError(
        f"online endpoint {name!r} does not exist in workspace {workspace!r}",
        code="endpoint_not_found",
        field="endpoint_name",
    )


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"online endpoint {name!r} already exists in this workspace",
        code="endpoint_exists",
        field="name",
    )
