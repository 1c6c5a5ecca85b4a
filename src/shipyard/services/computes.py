"""Compute targets: where a workspace's jobs run.

``local`` (the server's own host, in slots) comes with every workspace, like
``workspaceblobstore``: listed first, never created or deleted. Other targets are Ray
clusters by the address of their dashboard, where Ray's job submission API answers; Azure's
``amlcompute`` YAML is accepted and stored as a Ray target, its scale fields kept to show
back with the Ray autoscaler settings they correspond to. Creating one asks the cluster for
its version first (``skip_validation`` to leave that out), so a typo in the address is found
now and not when the first job fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.compute.launchers.ray import check_address, probe
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.domain.paging import decode_page_token, encode_page_token
from shipyard.domain.principals import Principal
from shipyard.schemas.common import Page
from shipyard.schemas.computes import (
    AML_DEFAULTS,
    COMPUTE_NAME,
    RESERVED_NAMES,
    ComputeCapacity,
    ComputeCostRead,
    ComputeCreate,
    ComputeRead,
    RayAutoscaler,
)
from shipyard.services.jobs import LOCAL_COMPUTE, LocalCapacity
from shipyard.services.paging import split_page
from shipyard.store.computes import ComputeRow, get_compute
from shipyard.store.database import Database
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.tracking import names_of
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow, get_workspace

# The amlcompute fields kept in `properties` (passwords and SSH keys never are).
AZURE_FIELDS = (
    "size",
    "tier",
    "min_instances",
    "max_instances",
    "idle_time_before_scale_down",
    "location",
    "ssh_public_access_enabled",
    "enable_node_public_ip",
    "admin_username",
    "network_settings",
    "identity",
)
AZURE_TYPE = "azure_type"  # the key in `properties` that says the file was amlcompute


def check_compute_name(name: str, *, field: str = "name") -> str:
    if not COMPUTE_NAME.fullmatch(name):
        shown = name if len(name) <= 100 else name[:97] + "..."
        raise InvalidInputError(
            f"compute name {shown!r} is not valid: 1 to 100 letters, digits, '_' and '-', "
            "starting with a letter or digit",
            code="invalid_name",
            field=field,
        )
    return name


class ComputeService:
    def __init__(
        self,
        db: Database,
        local: LocalCapacity,
        *,
        probe: Callable[[str], str] = probe,
    ) -> None:
        self.db = db
        self.local = local
        self._probe = probe

    def create(
        self, workspace: str, body: ComputeCreate, principal: Principal, *, validate: bool = True
    ) -> ComputeRead:
        name = check_compute_name(body.name)
        if name.lower() in RESERVED_NAMES:
            raise ConflictError(
                f"{name!r} is a built-in compute of every workspace; choose another name",
                code="compute_exists",
                field="name",
            )
        if body.address is None:
            raise InvalidInputError(
                _missing_address(body.type), code="missing_field", field="address"
            )
        address = check_address(body.address)
        with self.db.read() as session:
            if get_compute(session, _live_workspace(session, workspace).id, name):
                raise _exists(name)
        if validate:
            self._probe(address)
        try:
            with self.db.write() as session:
                ws = _live_workspace(session, workspace)
                if get_compute(session, ws.id, name):
                    raise _exists(name)
                row = ComputeRow(
                    workspace_id=ws.id,
                    name=name,
                    type="ray",
                    description=body.description,
                    tags=dict(body.tags),
                    address=address,
                    properties=_properties(body),
                    cost_rate=body.cost.rate,
                    cost_unit=body.cost.unit,
                    created_by=principal.id,
                )
                session.add(row)
                session.flush()
                return _reads(session, [row])[0]
        except IntegrityError as exc:  # a concurrent create of the same name won
            raise _exists(name) from exc

    def get(self, workspace: str, name: str) -> ComputeRead:
        check_compute_name(name)
        with self.db.read() as session:
            ws = _live_workspace(session, workspace)
            if name == LOCAL_COMPUTE:
                return self._local()
            return _reads(session, [_require(session, ws, name)])[0]

    def list(
        self, workspace: str, *, page_token: str | None, max_results: int
    ) -> Page[ComputeRead]:
        """``local`` first (on the first page), then the others by name."""
        after = decode_page_token(page_token)
        first = after is None
        limit = max_results - 1 if first else max_results
        with self.db.read() as session:
            ws = _live_workspace(session, workspace)
            query = (
                select(ComputeRow)
                .where(ComputeRow.workspace_id == ws.id)
                .order_by(ComputeRow.name)
                .limit(limit + 1)
            )
            if after:
                query = query.where(ComputeRow.name > after)
            rows = list(session.scalars(query))
            if limit == 0:  # a first page of one: the others start from the beginning
                page: Sequence[ComputeRow] = []
                token = encode_page_token("") if rows else None
            else:
                page, token = split_page(rows, limit, lambda r: r.name)
            items = _reads(session, page)
        if first:
            items.insert(0, self._local())
        return Page[ComputeRead](items=items, next_page_token=token)

    def delete(self, workspace: str, name: str) -> None:
        check_compute_name(name)
        if name == LOCAL_COMPUTE:
            raise ConflictError(
                "'local' is the server's own host and cannot be deleted",
                code="compute_protected",
                field="name",
            )
        with self.db.write() as session:
            ws = _live_workspace(session, workspace)
            row = _require(session, ws, name)
            busy = session.scalar(
                select(JobSubmissionRow.name)
                .where(
                    JobSubmissionRow.workspace_id == ws.id,
                    JobSubmissionRow.compute == name,
                    JobSubmissionRow.state.in_(("queued", "running")),
                )
                .limit(1)
            )
            if busy is not None:
                raise ConflictError(
                    f"job {busy!r} is queued or running on compute {name!r}; cancel it or "
                    "wait for it to end first",
                    code="compute_in_use",
                    field="name",
                )
            session.delete(row)

    def _local(self) -> ComputeRead:
        local = self.local
        return ComputeRead(
            name=LOCAL_COMPUTE,
            type="local",
            description="The server's own host: jobs run in slots by CPU, memory and GPU.",
            cost=ComputeCostRead(rate=local.cost_per_core_hour, unit="core"),
            capacity=ComputeCapacity(cpus=local.cpus, memory_mb=local.memory_mb, gpus=local.gpus),
        )


def _missing_address(kind: str) -> str:
    if kind == "amlcompute":
        return (
            "an amlcompute target runs on a Ray cluster, and Shipyard does not provision "
            "machines: give the address of the cluster's dashboard (address: "
            "http://host:8265); min_instances, max_instances and idle_time_before_scale_down "
            "map onto that cluster's autoscaler (see docs/compute.md)"
        )
    return "a ray compute needs the address of the cluster's dashboard (http://host:8265)"


def _properties(body: ComputeCreate) -> dict[str, Any]:
    given = {k: getattr(body, k) for k in AZURE_FIELDS if getattr(body, k) is not None}
    if body.type == "amlcompute":
        return {AZURE_TYPE: "amlcompute", **given}
    return given


def _autoscaler(properties: dict[str, Any]) -> RayAutoscaler | None:
    """What an amlcompute file's scale fields are in Ray's autoscaler (Azure's defaults for
    the ones it left out)."""
    if properties.get(AZURE_TYPE) != "amlcompute" and not any(
        k in properties for k in AML_DEFAULTS
    ):
        return None
    values = {k: properties.get(k, default) for k, default in AML_DEFAULTS.items()}
    return RayAutoscaler(
        min_workers=int(values["min_instances"]),
        max_workers=int(values["max_instances"]),
        idle_timeout_minutes=round(float(values["idle_time_before_scale_down"]) / 60.0, 3),
    )


def _reads(session: Session, rows: Sequence[ComputeRow]) -> list[ComputeRead]:
    people = names_of(session, UserRow, {r.created_by for r in rows})
    return [
        ComputeRead(
            name=row.name,
            type="ray",
            description=row.description,
            tags=row.tags,
            address=row.address,
            cost=ComputeCostRead(
                rate=row.cost_rate, unit="node" if row.cost_unit == "node" else "core"
            ),
            properties=row.properties,
            autoscaler=_autoscaler(row.properties),
            created_by=people.get(row.created_by),
            created_at=row.created_at,
        )
        for row in rows
    ]


def _live_workspace(session: Session, workspace: str) -> WorkspaceRow:
    row = get_workspace(session, workspace)
    if row is None:
        raise NotFoundError(
            f"workspace {workspace!r} does not exist", code="workspace_not_found", field="workspace"
        )
    if row.deleted_at is not None:
        raise NotFoundError(
            f"workspace {workspace!r} is deleted; recover it to reach its computes",
            code="workspace_deleted",
            field="workspace",
        )
    return row


def _require(session: Session, ws: WorkspaceRow, name: str) -> ComputeRow:
    row = get_compute(session, ws.id, name)
    if row is None:
        raise NotFoundError(
            f"compute {name!r} does not exist in workspace {ws.name!r}",
            code="compute_not_found",
            field="name",
        )
    return row


def _exists(name: str) -> ConflictError:
    return ConflictError(
        f"compute {name!r} already exists in this workspace", code="compute_exists", field="name"
    )
