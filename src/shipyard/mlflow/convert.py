"""Shipyard's experiments and runs as MLflow entities, and MLflow's run statuses as Shipyard's."""

from __future__ import annotations

from datetime import UTC, datetime

from shipyard.domain.errors import InvalidInputError
from shipyard.mlflow import schemas as m
from shipyard.schemas.run_inputs import RunInputsRead
from shipyard.schemas.tracking import ExperimentRead, RunRead

#: MLflow's id of the default experiment; in a workspace it is the experiment named "Default".
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
RUN_NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"
USER_TAG = "mlflow.user"

TO_SHIPYARD = {
    "RUNNING": "Running",
    "FINISHED": "Completed",
    "FAILED": "Failed",
    "KILLED": "Canceled",
    "SCHEDULED": "Queued",
}
_TO_MLFLOW = {
    "NotStarted": "SCHEDULED",
    "Queued": "SCHEDULED",
    "Preparing": "SCHEDULED",
    "Running": "RUNNING",
    "Finalizing": "RUNNING",
    "CancelRequested": "RUNNING",
    "NotResponding": "RUNNING",
    "Completed": "FINISHED",
    "Failed": "FAILED",
    "Canceled": "KILLED",
}


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def from_ms(value: int | None) -> datetime | None:
    """MLflow's milliseconds since the epoch as a UTC time (None stays None)."""
    return None if value is None else datetime.fromtimestamp(value / 1000, UTC)


def shipyard_status(status: str) -> str:
    if status not in TO_SHIPYARD:
        raise InvalidInputError(
            f"status must be one of {', '.join(TO_SHIPYARD)}, not {status!r}",
            code="invalid_status",
            field="status",
        )
    return TO_SHIPYARD[status]


def mlflow_status(status: str) -> str:
    return _TO_MLFLOW.get(status, "RUNNING")


def artifact_uri(run_id: str) -> str:
    """Where the client uploads a run's artifacts: the proxy path is the storage path.

    ``mlflow-artifacts:/<p>`` resolves, on the client, to
    ``<tracking URI>/api/2.0/mlflow-artifacts/artifacts/<p>``, and ``<p>`` is the path in the
    workspace's storage (see ``services.artifacts``), so the native API and MLflow's share
    one tree.
    """
    return f"mlflow-artifacts:/runs/{run_id}/artifacts"


def logged_model_artifact_uri(model_id: str) -> str:
    return f"mlflow-artifacts:/models/{model_id}/artifacts"


def experiment(row: ExperimentRead) -> m.Experiment:
    return m.Experiment(
        experiment_id=row.id,
        name=row.name,
        artifact_location=f"mlflow-artifacts:/experiments/{row.id}",
        lifecycle_stage=row.lifecycle_stage,
        creation_time=ms(row.created_at),
        last_update_time=ms(row.updated_at),
        tags=[m.ExperimentTag(key=k, value=v) for k, v in sorted(row.tags.items())],
    )


def run_info(run: RunRead) -> m.RunInfo:
    return m.RunInfo(
        run_id=run.id,
        run_uuid=run.id,
        run_name=run.name,
        experiment_id=run.experiment_id,
        user_id=run.created_by or run.tags.get(USER_TAG, ""),
        status=mlflow_status(run.status),
        start_time=ms(run.start_time),
        end_time=ms(run.end_time) if run.end_time else None,
        artifact_uri=artifact_uri(run.id),
        lifecycle_stage=run.lifecycle_stage,
    )


def run_inputs(inputs: RunInputsRead | None) -> m.RunInputs:
    if inputs is None:
        return m.RunInputs()
    return m.RunInputs(
        dataset_inputs=[
            m.DatasetInputOut(
                tags=[m.RunTag(key=k, value=v) for k, v in sorted(item.tags.items())],
                dataset=m.DatasetOut(**item.dataset.model_dump()),
            )
            for item in inputs.datasets
        ],
        model_inputs=[m.ModelInputOut(model_id=model_id) for model_id in inputs.models],
    )


def run(run: RunRead, inputs: RunInputsRead | None = None) -> m.Run:
    tags = dict(run.tags)
    tags[RUN_NAME_TAG] = run.name
    if run.parent_run_id:
        tags[PARENT_TAG] = run.parent_run_id
    return m.Run(
        info=run_info(run),
        data=m.RunData(
            metrics=[
                m.MetricOut(key=k, value=v.value, timestamp=v.timestamp, step=v.step)
                for k, v in sorted(run.metrics.items())
            ],
            params=[m.RunTag(key=k, value=v) for k, v in sorted(run.params.items())],
            tags=[m.RunTag(key=k, value=v) for k, v in sorted(tags.items())],
        ),
        inputs=run_inputs(inputs),
    )


_VIEW_NUMBERS = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}


def view_type(value: str | int, field: str) -> str:
    """MLflow's ViewType, sent by name (JSON) or by number: ACTIVE_ONLY, DELETED_ONLY, ALL."""
    view = _VIEW_NUMBERS.get(value) if isinstance(value, int) else value.upper()
    if view not in _VIEW_NUMBERS.values():
        raise InvalidInputError(
            f"{field} must be ACTIVE_ONLY, DELETED_ONLY or ALL, not {value!r}",
            code="invalid_view_type",
            field=field,
        )
    return str(view)
