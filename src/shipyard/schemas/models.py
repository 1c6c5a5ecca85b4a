"""Registered models, model versions and MLflow logged models: request and response bodies.

A model is a name in a workspace with numbered, immutable versions. A version points at its
files (``storage_location``, a path in the workspace's storage spelt ``mlflow-artifacts:/<p>``)
and remembers what the client gave (``source``) and the run that produced it (``run_id``).
Aliases name one version each (``@champion``); MLflow's stages (None, Staging, Production,
Archived) are kept for MLflow clients.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from shipyard.schemas.common import RequestBody, ResponseBody

MAX_NAME = 256
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 100_000  # MLflow's registry allows long tag values (prompts, notes)
MAX_PARAM_VALUE = 6_000
MAX_TAGS = 100
MAX_PARAMS = 1_000
MAX_SOURCE = 4_096

# No NUL anywhere: PostgreSQL's text (and its JSON text extraction) cannot hold one.
NO_NUL = r"^[^\x00]*$"
ModelName = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=r"^[^/:\x00]+$")]
Text = Annotated[str, Field(max_length=MAX_TAG_VALUE, pattern=NO_NUL)]
Ref = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]
TagKey = Annotated[str, Field(min_length=1, max_length=MAX_TAG_KEY, pattern=r"^[^\x00]+$")]
Tags = dict[TagKey, Text]
Params = dict[TagKey, Annotated[str, Field(max_length=MAX_PARAM_VALUE, pattern=NO_NUL)]]
# Alias names: MLflow's rule (letters, digits, _ and -); "latest" and v<N> are reserved.
AliasName = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[\w\-]+$")]

ModelType = Literal["custom_model", "mlflow_model"]
Stage = Literal["None", "Staging", "Production", "Archived"]
STAGES: tuple[Stage, ...] = ("None", "Staging", "Production", "Archived")
LoggedModelStatus = Literal["PENDING", "READY", "FAILED"]


class ModelCreate(RequestBody):
    name: ModelName
    description: Text | None = None
    tags: Tags = Field(default_factory=dict, max_length=MAX_TAGS)


class ModelUpdate(RequestBody):
    """Only the fields given change; ``name`` renames the model."""

    name: ModelName | None = None
    description: Text | None = None
    tags: Tags | None = Field(default=None, max_length=MAX_TAGS)


class ModelVersionCreate(RequestBody):
    source: str = Field(
        min_length=1,
        max_length=MAX_SOURCE,
        pattern=NO_NUL,
        description="runs:/<run id>/<path>, models:/<logged model id>, or a path in the "
        "workspace's storage as mlflow-artifacts:/<path>.",
    )
    type: ModelType = "custom_model"
    run_id: Ref | None = Field(default=None, description="Lineage: the run.")
    logged_model_id: Ref | None = None
    description: Text | None = None
    tags: Tags = Field(default_factory=dict, max_length=MAX_TAGS)


class ModelVersionUpdate(RequestBody):
    description: Text | None = None
    tags: Tags | None = Field(default=None, max_length=MAX_TAGS)


class ModelVersionRead(ResponseBody):
    name: str
    version: int
    type: ModelType
    source: str
    storage_location: str
    run_id: str | None = None
    logged_model_id: str | None = None
    status: str
    status_message: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    stage: Stage = "None"
    aliases: list[str] = Field(default_factory=list)
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime


class ModelRead(ResponseBody):
    name: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    aliases: dict[str, int] = Field(default_factory=dict, description="alias -> version")
    latest_version: int | None = None
    latest_versions: list[ModelVersionRead] = Field(
        default_factory=list, description="The newest version in each stage."
    )
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime


class LoggedModelCreate(RequestBody):
    experiment_id: Ref
    name: str | None = Field(default=None, min_length=1, max_length=MAX_NAME, pattern=NO_NUL)
    model_type: str | None = Field(default=None, max_length=MAX_NAME, pattern=NO_NUL)
    source_run_id: Ref | None = None
    params: Params = Field(default_factory=dict, max_length=MAX_PARAMS)
    tags: Tags = Field(default_factory=dict, max_length=MAX_TAGS)


class LoggedModelRead(ResponseBody):
    id: str
    name: str
    experiment_id: str
    source_run_id: str | None = None
    status: LoggedModelStatus
    status_message: str | None = None
    model_type: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    storage_location: str
    lifecycle_stage: str
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime


# --- the native model API (Azure ML's model YAML) -------------------------------------------

AssetReference = Annotated[str, Field(min_length=1, max_length=600, pattern=NO_NUL)]


class ModelAssetCreate(RequestBody):
    """A new version of a model (the model is created with its first version), shaped like
    Azure ML's model YAML."""

    version: str | None = Field(
        default=None,
        pattern=r"^[1-9][0-9]{0,8}$",
        description="A number above every version issued so far; omitted: the next one.",
    )
    path: str = Field(
        min_length=1,
        max_length=MAX_SOURCE,
        pattern=NO_NUL,
        description="azureml://datastores/<ds>/paths/<p>, azureml://jobs/<job>/outputs/"
        "artifacts/paths/<p> or runs:/<run id>/<p>.",
    )
    type: ModelType = "custom_model"
    description: Text | None = None
    tags: Tags = Field(default_factory=dict, max_length=MAX_TAGS)
    properties: Tags = Field(default_factory=dict, max_length=MAX_TAGS)
    stage: Stage | None = Field(default=None, description="An MLflow stage to start in.")
    job_name: Ref | None = Field(default=None, description="Lineage: the job (run) it came from.")
    training_data: list[AssetReference] = Field(
        default_factory=list,
        max_length=20,
        description="Data versions it was trained on (azureml:<name>:<version> or @latest); "
        "a referenced version cannot be deleted while this model version exists.",
    )


class ModelAssetUpdate(RequestBody):
    description: Text | None = None
    tags: Tags | None = Field(default=None, max_length=MAX_TAGS)


class ModelStageChange(RequestBody):
    stage: str = Field(min_length=1, max_length=32)
    archive_existing_versions: bool = False


class ModelAliasSet(RequestBody):
    version: int = Field(ge=1)


class ModelAssetRead(ModelVersionRead):
    """A model version as the native API shows it: the registry's fields plus where its files
    are (``path``, a datastore URI), Azure ML's properties, and what its MLmodel file says."""

    path: str | None = None
    properties: dict[str, str] = Field(default_factory=dict)
    flavors: dict[str, Any] | None = None
    signature: dict[str, Any] | None = None
    job_name: str | None = None
    training_data: list[str] = Field(default_factory=list)
