"""Pipeline jobs: Azure ML's ``pipelineJob`` YAML as a request body.

Steps are inline command jobs or ``component:`` references (an asset reference, or an inline
component mapping: the SDK and CLI inline a local component file, with its ``code`` already
uploaded). Step inputs are literals, data inputs, or bindings (``${{parent.inputs.x}}``,
``${{parent.jobs.<step>.outputs.<y>}}``); step outputs may bind to ``${{parent.outputs.z}}``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from shipyard.schemas.common import RequestBody
from shipyard.schemas.jobs import (
    IO_NAME,
    JOB_NAME,
    RESERVED_IO_NAMES,
    DataInput,
    JobOutput,
    Limits,
    Resources,
)
from shipyard.schemas.sweeps import EarlyTermination, Objective, SamplingAlgorithm, SweepLimits

STEP_NAME = JOB_NAME  # steps become child jobs: the same names are safe


class PipelineSettings(RequestBody):
    model_config = ConfigDict(extra="allow")  # on_init/on_finalize and others Azure knows

    default_compute: str | None = None
    default_datastore: str | None = None
    # Azure's documentation disagrees on the default; ours: a failed step stops only the
    # steps downstream of it, the rest of the pipeline goes on (true). See docs/pipelines.md.
    continue_on_step_failure: bool = True
    force_rerun: bool = False


class PipelineStep(RequestBody):
    """One step: a component reference (with inputs and run settings) or an inline command;
    or a sweep (``type: sweep``) of a ``trial`` component or inline command."""

    model_config = ConfigDict(extra="allow")  # services, identity... accepted, unused

    type: Literal["command", "sweep"] = "command"
    component: str | dict[str, Any] | None = None
    # inline command job fields (when there is no component)
    command: str | None = None
    code: str | None = None
    environment: str | dict[str, Any] | None = None
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    compute: str | None = None
    resources: Resources | None = None
    # A sweep step's limits are a sweep's (max_total_trials...); a command step's, a job's.
    limits: Limits | SweepLimits | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    is_deterministic: bool | None = None
    # sweep steps: the trial (a component reference, an inline component, or an inline
    # command: command, code, environment...) and the sweep's settings
    trial: str | dict[str, Any] | None = None
    search_space: dict[str, dict[str, Any]] | None = None
    sampling_algorithm: str | SamplingAlgorithm | None = None
    objective: Objective | None = None
    early_termination: EarlyTermination | None = None

    @model_validator(mode="after")
    def _limits_of_its_kind(self) -> PipelineStep:
        if self.type == "sweep" and isinstance(self.limits, Limits):
            self.limits = SweepLimits(timeout=self.limits.timeout)
        elif self.type == "command" and isinstance(self.limits, SweepLimits):
            raise ValueError("limits: max_total_trials and the like are a sweep step's")
        return self


class PipelineJobCreate(RequestBody):
    model_config = ConfigDict(populate_by_name=True)

    schema_: str | None = Field(default=None, alias="$schema")
    type: Literal["pipeline"] = "pipeline"
    name: str | None = None
    display_name: str | None = Field(default=None, max_length=256)
    experiment_name: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    inputs: dict[str, str | int | float | bool | DataInput | None] = Field(default_factory=dict)
    outputs: dict[str, JobOutput | None] = Field(default_factory=dict)
    settings: PipelineSettings = Field(default_factory=PipelineSettings)
    compute: str | None = None
    jobs: dict[str, PipelineStep] = Field(min_length=1)
    identity: dict[str, Any] | None = None

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
            if not IO_NAME.fullmatch(key) or key.lower() in RESERVED_IO_NAMES:
                raise ValueError(f"{key!r} is not a valid input or output name")
        return value

    @field_validator("jobs")
    @classmethod
    def _step_names(cls, value: dict[str, PipelineStep]) -> dict[str, PipelineStep]:
        for key in value:
            if not STEP_NAME.fullmatch(key):
                raise ValueError(f"step name {key!r} must match {STEP_NAME.pattern}")
        return value
