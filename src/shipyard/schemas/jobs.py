"""Command jobs: Azure ML's v2 job YAML as a request body, and a job as the API shows it.

The body is the YAML file itself (loaded by the SDK or CLI, local ``code`` and input paths
uploaded and replaced by references). Azure keys that mean nothing on Shipyard's compute
(``resources.shm_size``, ``identity``, ``queue_settings.job_tier``...) are accepted and kept,
so a file written for Azure ML runs unchanged; keys Azure does not know are refused.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from shipyard.schemas.common import RequestBody, ResponseBody

#: Azure's job names: letters, digits, ``-`` and ``_``, starting with a letter or digit.
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,254}$")
IO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
# Input and output names that would clash with environment variables (Azure refuses them too).
RESERVED_IO_NAMES = frozenset(
    {"path", "ld_library_path", "user", "logname", "home", "pwd", "shell"}
)
MAX_COMMAND_CHARS = 65_536

DataType = Literal["uri_file", "uri_folder", "mltable", "custom_model", "mlflow_model"]
InputMode = Literal["ro_mount", "download", "direct", "eval_mount", "eval_download"]
OutputMode = Literal["rw_mount", "upload", "direct", "mount"]
Literal_ = str | int | float | bool


class DataInput(RequestBody):
    type: DataType = "uri_folder"
    path: str = Field(min_length=1, max_length=4096)
    mode: InputMode = "ro_mount"
    datastore: str | None = None
    description: str | None = None


class JobOutput(RequestBody):
    type: DataType = "uri_folder"
    mode: OutputMode = "rw_mount"
    path: str | None = Field(default=None, max_length=4096)
    # Register the output as a data asset (or a model, for the model types) on completion.
    name: str | None = Field(default=None, min_length=1, max_length=255)
    version: str | None = Field(default=None, min_length=1, max_length=64)
    description: str | None = None

    @model_validator(mode="after")
    def _version_needs_name(self) -> JobOutput:
        if self.version is not None and self.name is None:
            raise ValueError("version is set but name is not: name the asset to register")
        return self


class Resources(RequestBody):
    model_config = ConfigDict(extra="allow")  # Azure's instance_type, shm_size, docker_args...

    instance_count: int = Field(default=1, ge=1, le=1024)
    cpu: float | None = Field(default=None, gt=0, le=1024, description="CPUs the job needs.")
    memory: str | int | None = Field(
        default=None, description="Memory the job may use: megabytes, or '512m', '4g'."
    )
    gpu: int | None = Field(default=None, ge=0, le=64, description="GPUs the job needs.")


class Limits(RequestBody):
    timeout: int | None = Field(default=None, gt=0, description="Seconds before it is canceled.")


class QueueSettings(RequestBody):
    model_config = ConfigDict(extra="allow")  # job_tier means nothing here

    priority: Literal["low", "medium", "high"] = "medium"


class CommandJobCreate(RequestBody):
    """A command job, as in Azure ML's ``commandJob`` YAML."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: str | None = Field(default=None, alias="$schema")
    type: Literal["command"] = "command"
    name: str | None = Field(default=None, description="Unique in the workspace; made up if unset.")
    display_name: str | None = Field(default=None, max_length=256)
    experiment_name: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    command: str = Field(min_length=1, max_length=MAX_COMMAND_CHARS)
    code: str | None = Field(
        default=None,
        description="The code snapshot: 'sha256:<digest>' of a committed code upload (the SDK "
        "and CLI upload a local folder and put this here).",
    )
    environment: str | dict[str, Any] | None = Field(
        default=None,
        description="An environment reference (azureml:name:version, name@latest) or an "
        "inline environment; the curated shipyard-minimal when unset.",
    )
    environment_variables: dict[str, str] = Field(default_factory=dict)
    compute: str | None = Field(default=None, description="Compute target; 'local' when unset.")
    resources: Resources = Field(default_factory=Resources)
    limits: Limits = Field(default_factory=Limits)
    queue_settings: QueueSettings = Field(default_factory=QueueSettings)
    inputs: dict[str, Literal_ | DataInput | None] = Field(default_factory=dict)
    outputs: dict[str, JobOutput | None] = Field(default_factory=dict)
    # Accepted so Azure files load; they change nothing on Shipyard's compute.
    identity: dict[str, Any] | None = None
    services: dict[str, Any] | None = None
    distribution: dict[str, Any] | None = None
    parent_job_name: str | None = Field(default=None, exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not JOB_NAME.fullmatch(value):
            raise ValueError(f"must match {JOB_NAME.pattern}")
        return value

    @field_validator("inputs", "outputs")
    @classmethod
    def _io_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not IO_NAME.fullmatch(key):
                raise ValueError(f"{key!r} is not a valid name: it must match {IO_NAME.pattern}")
            if key.lower() in RESERVED_IO_NAMES:
                raise ValueError(f"{key!r} is reserved (it clashes with an environment variable)")
        return value

    @field_validator("environment_variables")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", key):
                raise ValueError(f"{key!r} is not a valid environment variable name")
            if "\x00" in item:
                raise ValueError(f"the value of {key} holds a NUL character")
        return value


class StatusChange(ResponseBody):
    status: str
    time: datetime


class JobInputRead(ResponseBody):
    type: str
    value: str | None = None  # literal inputs
    path: str | None = None  # data inputs: the pinned reference or URI
    mode: str | None = None
    asset: str | None = None  # "name:version" when it was an asset


class JobOutputRead(ResponseBody):
    type: str
    mode: str
    path: str  # where the output lands
    name: str | None = None
    version: str | None = None
    registered: str | None = None  # "name:version" once registered


class JobCost(ResponseBody):
    core_seconds: float
    rate: float
    unit: str
    cost: float


class JobRead(ResponseBody):
    name: str
    id: str  # the run id (what MLflow calls run_id)
    type: str
    display_name: str
    experiment_name: str
    status: str
    status_history: list[StatusChange]
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    command: str
    code: str | None = None
    environment: str
    compute: str
    environment_variables: dict[str, str] = Field(default_factory=dict)
    inputs: dict[str, JobInputRead] = Field(default_factory=dict)
    outputs: dict[str, JobOutputRead] = Field(default_factory=dict)
    resources: dict[str, Any] = Field(default_factory=dict)
    limits: dict[str, Any] = Field(default_factory=dict)
    priority: str
    created_by: str
    creation_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = None
    error: str | None = None
    attempt: int = 0
    cost: JobCost | None = None
    parent_job_name: str | None = None
    steps: dict[str, str] | None = Field(
        default=None, description="A pipeline's steps: step name -> its child job's name."
    )
    step: str | None = Field(default=None, description="A pipeline step's name in its pipeline.")
    reused_from: str | None = Field(
        default=None, description="A reused step: the earlier job whose results it took."
    )
    reuse: dict[str, Any] | None = Field(
        default=None,
        description="Why a step was or was not reused: what it matched, or which parts of its "
        "fingerprint differed from the closest earlier run.",
    )
    lineage: JobLineage | None = Field(
        default=None, description="What the job used and produced (shown by `job show`)."
    )
    sweep: SweepRead | None = Field(
        default=None, description="A sweep: its settings, its trials so far and the best one."
    )
    trial: TrialRead | None = Field(default=None, description="A sweep's trial: its values.")


class JobLogChunk(ResponseBody):
    """For clients that want JSON; the logs route answers text with headers by default."""

    offset: int
    text: str
    status: str


class LineageNode(ResponseBody):
    id: str = Field(description="'job:<name>', '<kind>:<name>:<version>' or 'code:<digest>'.")
    kind: Literal["job", "data", "model", "environment", "code"]
    name: str
    version: str | None = None
    status: str | None = None  # jobs


class LineageEdge(ResponseBody):
    source: str
    target: str


class LineageGraph(ResponseBody):
    """Upstream and downstream of ``root``: an edge goes from what was used to the job, and
    from the job to what it produced."""

    root: str
    nodes: list[LineageNode]
    edges: list[LineageEdge]
    truncated: bool = False


class JobLineage(ResponseBody):
    """What one job used and produced, pinned (``kind:name:version``)."""

    inputs: list[str] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)


class SweepRead(ResponseBody):
    """A sweep job's settings and progress: the best trial is the completed one with the
    best last value of the primary metric."""

    search_space: dict[str, dict[str, Any]]
    sampling_algorithm: dict[str, Any]
    objective: dict[str, str]
    early_termination: dict[str, Any] | None = None
    trials: int = 0
    active: int = 0
    completed: int = 0
    failed: int = 0
    canceled: int = 0
    early_terminated: int = 0
    best_trial: str | None = None
    best_parameters: dict[str, Any] | None = None
    best_value: float | None = None
    ended_because: str | None = None


class TrialRead(ResponseBody):
    number: int
    parameters: dict[str, Any]
    early_terminated: str | None = Field(
        default=None, description="Why the early termination policy stopped it, if it did."
    )
