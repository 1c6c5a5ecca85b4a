"""MLflow's request and response bodies (service.proto), as the client's JSON spells them.

Requests ignore fields they do not know: each MLflow release adds some (``model_id``,
``dataset_digest``...), and an older server must still accept a newer client. Limits are
MLflow's own, so a request MLflow's server refuses is refused here too, with
``INVALID_PARAMETER_VALUE``. Metric values travel as numbers or as "NaN", "Infinity",
"-Infinity", the way protobuf's JSON mapping spells them.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.tracking import MetricValue

B = TypeVar("B", bound=BaseModel)

MAX_KEY = 250  # MLflow's MAX_ENTITY_KEY_LENGTH
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_EXPERIMENT_TAG_VALUE = 20000
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_EXPERIMENTS_PER_PAGE = 50000
MAX_RUNS_PER_PAGE = 50000  # MLflow's SEARCH_MAX_RESULTS_THRESHOLD

Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY, pattern=r"^[^\x00]+$")]
Int64 = Annotated[int, Field(ge=-(2**63), lt=2**63)]


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Response(BaseModel):
    pass


class Empty(Response):
    """MLflow answers ``{}`` where a method returns nothing."""


# --- shared parts ---------------------------------------------------------------------------


class Tag(Request):
    key: Key
    value: str = Field(default="", max_length=MAX_TAG_VALUE)


class Param(Request):
    key: Key
    value: str = Field(default="", max_length=MAX_PARAM_VALUE)


class Metric(Request):
    key: Key
    value: MetricValue
    timestamp: Int64 | None = Field(default=None, ge=0)
    step: Int64 = 0


class RunRef(Request):
    """A run named by ``run_id`` or by its older spelling ``run_uuid`` (clients send both)."""

    run_id: str | None = Field(default=None, max_length=64)
    run_uuid: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _one_id(self) -> RunRef:
        if not (self.run_id or self.run_uuid):
            raise ValueError("run_id is required")
        return self

    @property
    def id(self) -> str:
        return self.run_id or self.run_uuid or ""


# --- experiments ----------------------------------------------------------------------------


class CreateExperiment(Request):
    name: str = Field(min_length=1, max_length=256)
    artifact_location: str | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)


class ExperimentRef(Request):
    experiment_id: str = Field(min_length=1, max_length=64)


class UpdateExperiment(ExperimentRef):
    new_name: str | None = Field(default=None, min_length=1, max_length=256)


class SetExperimentTag(ExperimentRef):
    key: Key
    value: str = Field(default="", max_length=MAX_EXPERIMENT_TAG_VALUE)


class SearchExperiments(Request):
    max_results: int = Field(default=1000, ge=1, le=MAX_EXPERIMENTS_PER_PAGE)
    page_token: str | None = None
    filter: str | None = Field(default=None, max_length=10_000)
    order_by: list[str] = Field(default_factory=list, max_length=20)
    view_type: str | int = "ACTIVE_ONLY"


class ExperimentTag(Response):
    key: str
    value: str


class Experiment(Response):
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str
    creation_time: int
    last_update_time: int
    tags: list[ExperimentTag] = Field(default_factory=list)


class CreateExperimentResponse(Response):
    experiment_id: str


class ExperimentResponse(Response):
    experiment: Experiment


class SearchExperimentsResponse(Response):
    experiments: list[Experiment]
    next_page_token: str | None = None


# --- runs -----------------------------------------------------------------------------------


class CreateRun(Request):
    experiment_id: str | None = Field(default=None, max_length=64)
    user_id: str | None = None
    run_name: str | None = Field(default=None, max_length=256)
    start_time: Int64 | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)


class UpdateRun(RunRef):
    status: str | None = None
    end_time: Int64 | None = None
    run_name: str | None = Field(default=None, max_length=256)


class LogMetric(RunRef, Metric):
    timestamp: Int64 | None = Field(default=None, ge=0)


class LogParam(RunRef, Param):
    pass


class SetTag(RunRef, Tag):
    pass


class DeleteTag(RunRef):
    key: Key


class LogBatch(RunRef):
    metrics: list[Metric] = Field(default_factory=list, max_length=MAX_METRICS_PER_BATCH)
    params: list[Param] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_PARAMS_TAGS_PER_BATCH)

    @model_validator(mode="after")
    def _entities(self) -> LogBatch:
        total = len(self.metrics) + len(self.params) + len(self.tags)
        if total > MAX_ENTITIES_PER_BATCH:
            raise ValueError(
                f"a batch may hold at most {MAX_ENTITIES_PER_BATCH} metrics, params and tags "
                f"together, not {total}"
            )
        return self


class RunTag(Response):
    key: str
    value: str


class MetricOut(Response):
    key: str
    value: MetricValue
    timestamp: int
    step: int


class RunInfo(Response):
    run_id: str
    run_uuid: str
    run_name: str
    experiment_id: str
    user_id: str
    status: str
    start_time: int
    end_time: int | None = None
    artifact_uri: str
    lifecycle_stage: str


class RunData(Response):
    metrics: list[MetricOut] = Field(default_factory=list)
    params: list[RunTag] = Field(default_factory=list)
    tags: list[RunTag] = Field(default_factory=list)


class DatasetOut(Response):
    name: str
    digest: str
    source_type: str
    source: str
    schema_: str | None = Field(default=None, serialization_alias="schema")
    profile: str | None = None


class DatasetInputOut(Response):
    tags: list[RunTag] = Field(default_factory=list)
    dataset: DatasetOut


class ModelInputOut(Response):
    model_id: str


class RunInputs(Response):
    dataset_inputs: list[DatasetInputOut] = Field(default_factory=list)
    model_inputs: list[ModelInputOut] = Field(default_factory=list)


class Run(Response):
    info: RunInfo
    data: RunData
    inputs: RunInputs = Field(default_factory=RunInputs)


class RunResponse(Response):
    run: Run


class UpdateRunResponse(Response):
    run_info: RunInfo


class MetricHistoryResponse(Response):
    metrics: list[MetricOut]
    next_page_token: str | None = None


class DeleteExperimentTag(ExperimentRef):
    key: Key


def body_of(model: type[B], **values: Any) -> B:
    """A Shipyard service body built from MLflow's values; what it refuses is the caller's
    input at fault (INVALID_PARAMETER_VALUE), never a server error."""
    try:
        return model(**values)
    except ValidationError as exc:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid value"}
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        raise InvalidInputError(
            f"{field}: {message}" if field else message, code="invalid_field", field=field
        ) from exc


class SearchRuns(Request):
    experiment_ids: list[str] = Field(default_factory=list, max_length=1000)
    filter: str | None = Field(default=None, max_length=10_000)
    run_view_type: str | int = "ACTIVE_ONLY"
    max_results: int = Field(default=1000, ge=1, le=MAX_RUNS_PER_PAGE)
    order_by: list[str] = Field(default_factory=list, max_length=20)
    page_token: str | None = None


class SearchRunsResponse(Response):
    runs: list[Run]
    next_page_token: str | None = None
