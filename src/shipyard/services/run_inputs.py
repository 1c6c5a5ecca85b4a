"""Recording and reading what runs consumed (datasets, models)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.schemas.run_inputs import (
    DatasetIn,
    DatasetInputRead,
    DatasetRead,
    RunInputsIn,
    RunInputsRead,
)
from shipyard.services.experiments import workspace_id_of
from shipyard.store import run_inputs as store
from shipyard.store import tracking as tracking_store
from shipyard.store.database import Database
from shipyard.store.logged_models import get_logged_model
from shipyard.store.run_inputs import DatasetRow, RunDatasetInputRow, RunModelInputRow

MAX_TAG_KEY, MAX_TAG_VALUE = 255, 500


class RunInputService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def log(self, workspace: str, run_id: str, body: RunInputsIn) -> None:
        """Link datasets and models to the run; logging one already linked changes nothing."""
        for index, item in enumerate(body.datasets):
            for key, value in item.tags.items():
                if not key or len(key) > MAX_TAG_KEY or len(value) > MAX_TAG_VALUE:
                    raise InvalidInputError(
                        f"input tag {key[:40]!r}: keys are 1-{MAX_TAG_KEY} characters and "
                        f"values at most {MAX_TAG_VALUE}",
                        code="invalid_tag",
                        field=f"datasets[{index}].tags",
                    )
        with self.db.write() as session:
            job = tracking_store.get_job(session, workspace_id_of(session, workspace), run_id)
            if job is None:
                raise NotFoundError(
                    f"run {run_id!r} does not exist", code="run_not_found", field="run_id"
                )
            if job.lifecycle_stage != "active":
                raise ConflictError(
                    f"run {run_id!r} is deleted; restore it to log to it",
                    code="run_deleted",
                    field="run_id",
                )
            linked = {
                dataset.id for dataset, _ in store.inputs_of(session, [job.id])[0].get(job.id, [])
            }
            for item in body.datasets:
                dataset = _dataset(session, job.experiment_id, item.dataset)
                if dataset.id not in linked:
                    session.add(
                        RunDatasetInputRow(job_id=job.id, dataset_id=dataset.id, tags=item.tags)
                    )
                    linked.add(dataset.id)
            models = set(store.inputs_of(session, [job.id])[1].get(job.id, []))
            for model_id in dict.fromkeys(body.models):
                # A reference in a body is checked like one in a path: only this
                # workspace's logged models (another workspace's look like no model at all).
                if get_logged_model(session, job.workspace_id, model_id) is None:
                    raise NotFoundError(
                        f"logged model {model_id!r} does not exist",
                        code="logged_model_not_found",
                        field="models",
                    )
                if model_id not in models:
                    session.add(RunModelInputRow(job_id=job.id, model_id=model_id))

    def of_runs(self, run_ids: list[str]) -> dict[str, RunInputsRead]:
        """The inputs of runs already found (ids, not names: the caller checked access)."""
        with self.db.read() as session:
            return inputs_read(session, run_ids)


def inputs_read(session: Session, run_ids: list[str]) -> dict[str, RunInputsRead]:
    datasets, models = store.inputs_of(session, run_ids)
    return {
        run_id: RunInputsRead(
            datasets=[
                DatasetInputRead(dataset=_read(row), tags=tags)
                for row, tags in datasets.get(run_id, [])
            ],
            models=models.get(run_id, []),
        )
        for run_id in run_ids
    }


def _read(row: DatasetRow) -> DatasetRead:
    return DatasetRead.model_validate(
        {
            "name": row.name,
            "digest": row.digest,
            "source_type": row.source_type,
            "source": row.source,
            "schema": row.schema,
            "profile": row.profile,
        }
    )


def _dataset(session: Session, experiment_id: str, spec: DatasetIn) -> DatasetRow:
    """The experiment's dataset with this name and digest, recorded on first use (a
    concurrent first use may win the race: then its row is the one)."""
    found = store.find_dataset(session, experiment_id, spec.name, spec.digest)
    if found is not None:
        return found
    row = DatasetRow(
        experiment_id=experiment_id,
        name=spec.name,
        digest=spec.digest,
        source_type=spec.source_type,
        source=spec.source,
        schema=spec.schema_,
        profile=spec.profile,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = store.find_dataset(session, experiment_id, spec.name, spec.digest)
        if found is None:
            raise
        return found
    return row
