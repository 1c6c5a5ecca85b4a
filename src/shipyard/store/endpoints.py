"""Online endpoints, their deployments, and the short-lived tokens of ``aml_token`` endpoints.

An endpoint row holds only the sha256 of each key: the keys themselves live, encrypted, in the
workspace's key vault (``services.endpoint_keys``), so the gateway checks a key by hashing it
and a master-key rotation re-encrypts them with every other secret. ``keys_version`` grows with
every change of what authenticates (a regenerated key, another auth mode), so a cache keyed on
it drops a revoked key at once.

A deployment row holds the desired spec (references pinned at create/update, as jobs do) and
the runtime's view of it: ``provisioning_state``, the per-instance state and the last error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow
from shipyard.store.workspaces import WorkspaceRow


class OnlineEndpointRow(Base):
    __tablename__ = "online_endpoints"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    auth_mode: Mapped[str] = mapped_column(String(16), default="key")
    traffic: Mapped[dict[str, Any]] = mapped_column(default=dict)
    mirror_traffic: Mapped[dict[str, Any]] = mapped_column(default=dict)
    provisioning_state: Mapped[str] = mapped_column(String(16), default="Succeeded")
    # The Ray compute its deployments run on (a name in the workspace); None: the server's host.
    compute: Mapped[str | None] = mapped_column(String(100))
    # sha256 hex of each key: keys carry 256 random bits, so a fast hash is enough.
    primary_key_hash: Mapped[str | None] = mapped_column(String(64))
    secondary_key_hash: Mapped[str | None] = mapped_column(String(64))
    keys_version: Mapped[int] = mapped_column(Integer, default=1)
    # Principal id without a foreign key: the endpoint outlives a deleted service principal.
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OnlineEndpointTokenRow(Base):
    """An ``aml_token`` handed out by get-credentials: only its hash, until it expires."""

    __tablename__ = "online_endpoint_tokens"

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("online_endpoints.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class OnlineDeploymentRow(Base):
    __tablename__ = "online_deployments"
    __table_args__ = (UniqueConstraint("endpoint_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("online_endpoints.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    # What the runtime must run: model, code, environment, instance count, request settings,
    # probes, environment variables; references pinned to versions.
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The code snapshot (a content upload of purpose "code"), kept from garbage collection.
    code_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    # Grows with every change of ``spec``: the runtime rolls instances when it sees a new one.
    generation: Mapped[int] = mapped_column(Integer, default=1)
    # Creating | Updating | Succeeded | Failed | Deleting (Azure's provisioning states).
    provisioning_state: Mapped[str] = mapped_column(String(16), default="Creating")
    # Written by the runtime: one entry per instance, and the last failure's text.
    instances: Mapped[list[Any]] = mapped_column(default=list)
    error: Mapped[str | None] = mapped_column(Text)
    state_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


def get_endpoint(
    session: Session, workspace_id: str, name: str, *, lock: bool = False
) -> OnlineEndpointRow | None:
    """``lock``: until the transaction ends (PostgreSQL; SQLite has one writer anyway), so
    a traffic split and the deployments it names change one at a time."""
    query = select(OnlineEndpointRow).where(
        OnlineEndpointRow.workspace_id == workspace_id, OnlineEndpointRow.name == name
    )
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def find_endpoint(session: Session, workspace: str, name: str) -> OnlineEndpointRow | None:
    """By the workspace's name (not deleted) and the endpoint's."""
    query = (
        select(OnlineEndpointRow)
        .join(WorkspaceRow, WorkspaceRow.id == OnlineEndpointRow.workspace_id)
        .where(
            WorkspaceRow.name == workspace,
            WorkspaceRow.deleted_at.is_(None),
            OnlineEndpointRow.name == name,
        )
    )
    return session.scalars(query).one_or_none()


def credentials(session: Session, workspace: str, name: str) -> tuple[Any, ...] | None:
    """(id, auth_mode, keys_version, primary hash, secondary hash): the gateway's check."""
    query = (
        select(
            OnlineEndpointRow.id,
            OnlineEndpointRow.auth_mode,
            OnlineEndpointRow.keys_version,
            OnlineEndpointRow.primary_key_hash,
            OnlineEndpointRow.secondary_key_hash,
        )
        .join(WorkspaceRow, WorkspaceRow.id == OnlineEndpointRow.workspace_id)
        .where(
            WorkspaceRow.name == workspace,
            WorkspaceRow.deleted_at.is_(None),
            OnlineEndpointRow.name == name,
        )
    )
    row = session.execute(query).first()
    return tuple(row) if row is not None else None


def list_endpoints(
    session: Session, workspace_id: str, *, after: str | None, limit: int
) -> list[OnlineEndpointRow]:
    query = (
        select(OnlineEndpointRow)
        .where(OnlineEndpointRow.workspace_id == workspace_id)
        .order_by(OnlineEndpointRow.name)
        .limit(limit)
    )
    if after is not None:
        query = query.where(OnlineEndpointRow.name > after)
    return list(session.scalars(query))


def get_deployment(session: Session, endpoint_id: str, name: str) -> OnlineDeploymentRow | None:
    query = select(OnlineDeploymentRow).where(
        OnlineDeploymentRow.endpoint_id == endpoint_id, OnlineDeploymentRow.name == name
    )
    return session.scalars(query).one_or_none()


def list_deployments(
    session: Session, endpoint_id: str, *, after: str | None = None, limit: int | None = None
) -> list[OnlineDeploymentRow]:
    query = (
        select(OnlineDeploymentRow)
        .where(OnlineDeploymentRow.endpoint_id == endpoint_id)
        .order_by(OnlineDeploymentRow.name)
    )
    if after is not None:
        query = query.where(OnlineDeploymentRow.name > after)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def deployment_names(session: Session, endpoint_id: str) -> set[str]:
    query = select(OnlineDeploymentRow.name).where(OnlineDeploymentRow.endpoint_id == endpoint_id)
    return set(session.scalars(query))


def find_token(session: Session, token_hash: str) -> OnlineEndpointTokenRow | None:
    query = select(OnlineEndpointTokenRow).where(OnlineEndpointTokenRow.token_hash == token_hash)
    return session.scalars(query).one_or_none()


def delete_expired_tokens(session: Session, endpoint_id: str, now: datetime) -> None:
    session.execute(
        delete(OnlineEndpointTokenRow).where(
            OnlineEndpointTokenRow.endpoint_id == endpoint_id,
            OnlineEndpointTokenRow.expires_at <= now,
        )
    )


def delete_tokens(session: Session, endpoint_id: str) -> None:
    """Every token of the endpoint: its auth mode changed, none may stay valid."""
    session.execute(
        delete(OnlineEndpointTokenRow).where(OnlineEndpointTokenRow.endpoint_id == endpoint_id)
    )


def deployments_using_model(
    session: Session, workspace_id: str, name: str, version: int | None = None
) -> list[str]:
    """``endpoint/deployment`` of each online deployment whose model is version ``version``
    of model ``name`` (any version when None). A workspace has few deployments: their specs
    are read and compared here rather than with each database's own JSON operators."""
    rows = session.execute(
        select(OnlineEndpointRow.name, OnlineDeploymentRow.name, OnlineDeploymentRow.spec)
        .join(OnlineEndpointRow, OnlineEndpointRow.id == OnlineDeploymentRow.endpoint_id)
        .where(OnlineEndpointRow.workspace_id == workspace_id)
        .order_by(OnlineEndpointRow.name, OnlineDeploymentRow.name)
    )
    found = []
    for endpoint, deployment, spec in rows:
        model = spec.get("model")
        asset = model.get("asset") if isinstance(model, dict) else None
        if not isinstance(asset, str):
            continue
        asset_name, _, asset_version = asset.rpartition(":")
        if asset_name == name and (version is None or asset_version == str(version)):
            found.append(f"{endpoint}/{deployment}")
    return found
