"""The model registry: registered models, their versions, and aliases naming versions.

One registry serves both Shipyard's own model API and MLflow's registry surface. Version
numbers come from a counter on the model row (``last_version``), bumped by an UPDATE inside the
transaction that inserts the version: the row lock (PostgreSQL) or the single writer (SQLite)
serialises concurrent registrations, so two never get the same number, and numbers of deleted
versions are never reused. The unique (model, version) constraint backs that up.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow

LOGGED_MODEL_ID = String(40)  # "m-" and 32 hex digits


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    # The highest version number ever issued (deleted versions included).
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))  # custom_model | mlflow_model
    # What the client gave, and where the files are: a path in the workspace's storage,
    # spelt mlflow-artifacts:/<path> (see services.model_sources).
    source: Mapped[str] = mapped_column(Text)
    storage_location: Mapped[str] = mapped_column(Text)
    # Lineage: the run (job) and the MLflow logged model it came from, while they exist.
    run_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), index=True
    )
    logged_model_id: Mapped[str | None] = mapped_column(
        ForeignKey("logged_models.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(32), default="READY")
    status_message: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)
    stage: Mapped[str] = mapped_column(String(16), default="None")
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class ModelAliasRow(Base):
    """``@champion``: one version per alias of a model; deleting the version drops it."""

    __tablename__ = "model_aliases"

    model_id: Mapped[str] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(256), primary_key=True)
    version_id: Mapped[str] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), index=True
    )


def get_model(session: Session, workspace_id: str, name: str) -> ModelRow | None:
    query = select(ModelRow).where(ModelRow.workspace_id == workspace_id, ModelRow.name == name)
    return session.scalars(query).one_or_none()


def get_version(session: Session, model_id: str, version: int) -> ModelVersionRow | None:
    query = select(ModelVersionRow).where(
        ModelVersionRow.model_id == model_id, ModelVersionRow.version == version
    )
    return session.scalars(query).one_or_none()


def next_version(session: Session, model_id: str, now: datetime) -> int:
    """Issue the model's next version number (the caller's transaction holds it until it
    ends) and mark the model updated."""
    statement = (
        update(ModelRow)
        .where(ModelRow.id == model_id)
        .values(last_version=ModelRow.last_version + 1, updated_at=now)
        .returning(ModelRow.last_version)
        .execution_options(synchronize_session=False)
    )
    return int(session.execute(statement).scalar_one())


def aliases_of(session: Session, version_ids: Sequence[str]) -> dict[str, list[str]]:
    """version id -> its aliases, sorted."""
    found: dict[str, list[str]] = {}
    if not version_ids:
        return found
    query = (
        select(ModelAliasRow.version_id, ModelAliasRow.alias)
        .where(ModelAliasRow.version_id.in_(version_ids))
        .order_by(ModelAliasRow.alias)
    )
    for version_id, alias in session.execute(query):
        found.setdefault(version_id, []).append(alias)
    return found


def model_aliases(session: Session, model_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """model id -> {alias: version number}."""
    found: dict[str, dict[str, int]] = {}
    if not model_ids:
        return found
    query = (
        select(ModelAliasRow.model_id, ModelAliasRow.alias, ModelVersionRow.version)
        .join(ModelVersionRow, ModelVersionRow.id == ModelAliasRow.version_id)
        .where(ModelAliasRow.model_id.in_(model_ids))
        .order_by(ModelAliasRow.alias)
    )
    for model_id, alias, version in session.execute(query):
        found.setdefault(model_id, {})[alias] = version
    return found


def latest_per_stage(
    session: Session, model_ids: Sequence[str], stages: Sequence[str] | None = None
) -> list[ModelVersionRow]:
    """The newest version of each model in each stage (MLflow's ``latest_versions``)."""
    if not model_ids:
        return []
    newest = (
        select(
            ModelVersionRow.model_id,
            ModelVersionRow.stage,
            func.max(ModelVersionRow.version).label("version"),
        )
        .where(ModelVersionRow.model_id.in_(model_ids))
        .group_by(ModelVersionRow.model_id, ModelVersionRow.stage)
    )
    if stages is not None:
        newest = newest.where(ModelVersionRow.stage.in_(stages))
    found = newest.subquery()
    query = (
        select(ModelVersionRow)
        .join(
            found,
            (found.c.model_id == ModelVersionRow.model_id)
            & (found.c.version == ModelVersionRow.version),
        )
        .order_by(ModelVersionRow.model_id, ModelVersionRow.version)
    )
    return list(session.scalars(query))


def model_names(session: Session, model_ids: set[str]) -> dict[str, str]:
    if not model_ids:
        return {}
    query = select(ModelRow.id, ModelRow.name).where(ModelRow.id.in_(model_ids))
    return dict(session.execute(query).all())
