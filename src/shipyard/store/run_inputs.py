"""What a run consumed: datasets (MLflow's ``log_input``) and models, with their tags.

A dataset is recorded once per experiment by name and digest (the same data logged by many
runs is one row); each run links to it with its own tags (``mlflow.data.context``:
training, eval...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from shipyard.store.base import ID, Base, UtcDateTime, new_id, utcnow


class DatasetRow(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("experiment_id", "name", "digest"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True, default=new_id)
    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(500))
    digest: Mapped[str] = mapped_column(String(64))
    source_type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    schema: Mapped[str | None] = mapped_column(Text)
    profile: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class RunDatasetInputRow(Base):
    __tablename__ = "run_dataset_inputs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("datasets.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    tags: Mapped[dict[str, str]] = mapped_column(default=dict)


class RunModelInputRow(Base):
    __tablename__ = "run_model_inputs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    # An MLflow logged model's id; kept as text so inputs survive the model's deletion.
    model_id: Mapped[str] = mapped_column(String(64), primary_key=True)


def find_dataset(session: Session, experiment_id: str, name: str, digest: str) -> DatasetRow | None:
    return session.scalars(
        select(DatasetRow).where(
            DatasetRow.experiment_id == experiment_id,
            DatasetRow.name == name,
            DatasetRow.digest == digest,
        )
    ).one_or_none()


def inputs_of(
    session: Session, job_ids: list[str]
) -> tuple[dict[str, list[tuple[DatasetRow, dict[str, Any]]]], dict[str, list[str]]]:
    """Per run: its datasets with the link's tags, and its model inputs (two queries)."""
    datasets: dict[str, list[tuple[DatasetRow, dict[str, Any]]]] = {}
    models: dict[str, list[str]] = {}
    if not job_ids:
        return datasets, models
    rows = session.execute(
        select(RunDatasetInputRow.job_id, RunDatasetInputRow.tags, DatasetRow)
        .join(DatasetRow, DatasetRow.id == RunDatasetInputRow.dataset_id)
        .where(RunDatasetInputRow.job_id.in_(job_ids))
        .order_by(DatasetRow.name, DatasetRow.digest)
    )
    for job_id, tags, dataset in rows:
        datasets.setdefault(job_id, []).append((dataset, dict(tags)))
    for job_id, model_id in session.execute(
        select(RunModelInputRow.job_id, RunModelInputRow.model_id)
        .where(RunModelInputRow.job_id.in_(job_ids))
        .order_by(RunModelInputRow.model_id)
    ):
        models.setdefault(job_id, []).append(model_id)
    return datasets, models
