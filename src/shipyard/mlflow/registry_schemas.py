"""MLflow's model registry and logged-model bodies (model_registry.proto, service.proto).

Requests ignore fields they do not know, like the tracking bodies (``schemas``). Versions
travel as strings ("3"), timestamps as milliseconds, statuses by their enum names.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from shipyard.mlflow.schemas import Key, Request, Response
from shipyard.schemas.models import MAX_NAME, MAX_PARAM_VALUE, MAX_SOURCE, MAX_TAG_VALUE

Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Version = str | int
MAX_REGISTRY_PAGE = 1000  # MLflow's SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD
MAX_VERSIONS_PAGE = 200_000  # MLflow's default page of model versions
MAX_LOGGED_MODELS_PAGE = 1000


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class _Body(Request):
    """MLflow's request base, also refusing NUL anywhere."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL text cannot hold NUL; refuse it in any field rather than fail to store.
        if _has_nul(data):
            raise ValueError("NUL characters are not allowed")
        return data


class RegistryTag(_Body):
    key: Key
    value: str = Field(default="", max_length=MAX_TAG_VALUE)


# --- registered models ------------------------------------------------------------------------


class CreateRegisteredModel(_Body):
    name: Name
    tags: list[RegistryTag] = Field(default_factory=list, max_length=100)
    description: str | None = Field(default=None, max_length=MAX_TAG_VALUE)


class ModelRef(_Body):
    name: Name


class RenameRegisteredModel(ModelRef):
    new_name: Name


class UpdateRegisteredModel(ModelRef):
    description: str | None = Field(default=None, max_length=MAX_TAG_VALUE)


class GetLatestVersions(ModelRef):
    stages: list[str] = Field(default_factory=list, max_length=10)


class SetRegisteredModelTag(ModelRef):
    key: Key
    value: str = Field(default="", max_length=MAX_TAG_VALUE)


class DeleteRegisteredModelTag(ModelRef):
    key: Key


class SetRegisteredModelAlias(ModelRef):
    alias: str = Field(min_length=1, max_length=256)
    version: Version


class DeleteRegisteredModelAlias(ModelRef):
    alias: str = Field(min_length=1, max_length=256)


# --- model versions ---------------------------------------------------------------------------


class CreateModelVersion(ModelRef):
    source: str = Field(min_length=1, max_length=MAX_SOURCE)
    run_id: str | None = Field(default=None, max_length=64)
    tags: list[RegistryTag] = Field(default_factory=list, max_length=100)
    run_link: str | None = None  # a link for Databricks' UI; not kept
    description: str | None = Field(default=None, max_length=MAX_TAG_VALUE)
    model_id: str | None = Field(default=None, max_length=64)


class VersionRef(ModelRef):
    version: Version


class UpdateModelVersion(VersionRef):
    description: str | None = Field(default=None, max_length=MAX_TAG_VALUE)


class TransitionModelVersionStage(VersionRef):
    stage: str = Field(min_length=1, max_length=64)
    archive_existing_versions: bool = False


class SetModelVersionTag(VersionRef):
    key: Key
    value: str = Field(default="", max_length=MAX_TAG_VALUE)


class DeleteModelVersionTag(VersionRef):
    key: Key


class Tag(Response):
    key: str
    value: str


class Alias(Response):
    alias: str
    version: str


class ModelVersion(Response):
    name: str
    version: str
    creation_timestamp: int
    last_updated_timestamp: int
    user_id: str
    current_stage: str
    description: str | None = None
    source: str
    run_id: str | None = None
    status: str
    status_message: str | None = None
    tags: list[Tag] = Field(default_factory=list)
    run_link: str = ""
    aliases: list[str] = Field(default_factory=list)
    model_id: str | None = None


class RegisteredModel(Response):
    name: str
    creation_timestamp: int
    last_updated_timestamp: int
    user_id: str
    description: str | None = None
    latest_versions: list[ModelVersion] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)
    aliases: list[Alias] = Field(default_factory=list)


class RegisteredModelResponse(Response):
    registered_model: RegisteredModel


class SearchRegisteredModelsResponse(Response):
    registered_models: list[RegisteredModel]
    next_page_token: str | None = None


class ModelVersionResponse(Response):
    model_version: ModelVersion


class ModelVersionsResponse(Response):
    model_versions: list[ModelVersion]


class SearchModelVersionsResponse(Response):
    model_versions: list[ModelVersion]
    next_page_token: str | None = None


class DownloadUriResponse(Response):
    artifact_uri: str


# --- logged models ----------------------------------------------------------------------------


class Param(_Body):
    key: Key
    value: str = Field(default="", max_length=MAX_PARAM_VALUE)


class CreateLoggedModel(_Body):
    experiment_id: str = Field(min_length=1, max_length=64)
    name: str | None = Field(default=None, max_length=MAX_NAME)
    model_type: str | None = Field(default=None, max_length=MAX_NAME)
    source_run_id: str | None = Field(default=None, max_length=64)
    params: list[Param] = Field(default_factory=list, max_length=1000)
    tags: list[RegistryTag] = Field(default_factory=list, max_length=100)


class FinalizeLoggedModel(_Body):
    status: str | int


class SetLoggedModelTags(_Body):
    tags: list[RegistryTag] = Field(default_factory=list, max_length=100)


class LogLoggedModelParams(_Body):
    params: list[Param] = Field(default_factory=list, max_length=1000)


class Dataset(_Body):
    dataset_name: str = Field(max_length=500)
    dataset_digest: str | None = Field(default=None, max_length=64)


class OrderBy(_Body):
    field_name: str = Field(min_length=1, max_length=256)
    ascending: bool = True
    dataset_name: str | None = Field(default=None, max_length=500)
    dataset_digest: str | None = Field(default=None, max_length=64)


class SearchLoggedModels(_Body):
    experiment_ids: list[str] = Field(min_length=1, max_length=1000)
    filter: str | None = Field(default=None, max_length=10_000)
    datasets: list[Dataset] = Field(default_factory=list, max_length=100)
    max_results: int = Field(default=50, ge=1, le=MAX_LOGGED_MODELS_PAGE)
    order_by: list[OrderBy] = Field(default_factory=list, max_length=20)
    page_token: str | None = None


class ModelOutput(_Body):
    model_id: str = Field(min_length=1, max_length=64)
    step: int = 0


class LogOutputs(_Body):
    run_id: str = Field(min_length=1, max_length=64)
    models: list[ModelOutput] = Field(default_factory=list, max_length=100)


class LoggedModelInfo(Response):
    model_id: str
    experiment_id: str
    name: str
    creation_timestamp_ms: int
    last_updated_timestamp_ms: int
    artifact_uri: str
    status: str
    model_type: str | None = None
    source_run_id: str | None = None
    status_message: str | None = None
    tags: list[Tag] = Field(default_factory=list)


class LoggedModelData(Response):
    """Params only: metrics logged against a model are kept with their run, not here."""

    params: list[Tag] = Field(default_factory=list)


class LoggedModel(Response):
    info: LoggedModelInfo
    data: LoggedModelData


class LoggedModelResponse(Response):
    model: LoggedModel


class SearchLoggedModelsResponse(Response):
    models: list[LoggedModel]
    next_page_token: str | None = None
