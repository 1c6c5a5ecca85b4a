"""MLflow's ``runs/log-inputs``: the datasets (``mlflow.log_input``) and models a run used.

``get-run`` and ``search-runs`` show them back under each run's ``inputs``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import Field

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.mlflow.paths import API_PREFIX
from shipyard.mlflow.schemas import Empty, Request, body_of
from shipyard.mlflow.schemas import RunRef as _RunRef
from shipyard.schemas.run_inputs import MAX_DATASETS, RunInputsIn

router = APIRouter(prefix=API_PREFIX + "/runs", route_class=GuardedRoute, tags=["mlflow"])


class InputTag(Request):
    key: str = ""
    value: str = ""


class Dataset(Request):
    name: str = ""
    digest: str = ""
    source_type: str = ""
    source: str = ""
    schema_: str | None = Field(None, alias="schema")
    profile: str | None = None


class DatasetInput(Request):
    tags: list[InputTag] = Field(default_factory=list)
    dataset: Dataset


class ModelInput(Request):
    model_id: str = ""


class LogInputs(_RunRef):
    datasets: list[DatasetInput] = Field(default_factory=list, max_length=MAX_DATASETS)
    models: list[ModelInput] = Field(default_factory=list, max_length=MAX_DATASETS)


@router.post("/log-inputs", dependencies=[require(actions.JOBS_WRITE, telemetry=True)])
def log_inputs(
    workspace: str, body: LogInputs, services: Services = Depends(get_services)
) -> Empty:
    inputs = body_of(
        RunInputsIn,
        datasets=[
            {
                "dataset": item.dataset.model_dump(by_alias=True),
                "tags": {tag.key: tag.value for tag in item.tags},
            }
            for item in body.datasets
        ],
        models=[model.model_id for model in body.models],
    )
    services.run_inputs.log(workspace, body.id, inputs)
    return Empty()
