"""Sweep jobs: Azure ML's ``sweepJob`` YAML as a request body.

A sweep runs one trial command many times with hyperparameters sampled from ``search_space``
(``${{search_space.<name>}}`` in the trial's command), reads each trial's ``objective``
metric from what the trial logged, and may stop poor trials early. The shapes here only type
the fields; what they must hold together (a grid over ``choice`` only, a bayesian sweep
without early termination, bounds in order...) is checked by ``domain.sweeps`` so each error
names its field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from shipyard.schemas.common import RequestBody
from shipyard.schemas.jobs import (
    IO_NAME,
    JOB_NAME,
    MAX_COMMAND_CHARS,
    RESERVED_IO_NAMES,
    DataInput,
    JobOutput,
    QueueSettings,
    Resources,
)


def _lowered(value: Any) -> Any:
    """Azure's SDK writes ``Maximize`` and ``Random``; its YAML ``maximize`` and ``random``."""
    return value.lower() if isinstance(value, str) else value


class SamplingAlgorithm(RequestBody):
    type: Literal["random", "grid", "bayesian"] = "random"
    seed: int | None = Field(default=None, description="Makes the sampled values repeatable.")
    rule: Literal["random", "sobol"] | None = None

    lowered = field_validator("type", "rule", mode="before")(_lowered)


class Objective(RequestBody):
    goal: Literal["maximize", "minimize"]
    primary_metric: str = Field(min_length=1, max_length=250)

    lowered = field_validator("goal", mode="before")(_lowered)


class SweepLimits(RequestBody):
    max_total_trials: int = Field(default=1000, gt=0, le=100_000)
    max_concurrent_trials: int | None = Field(
        default=None, gt=0, description="Trials running at once; max_total_trials when unset."
    )
    timeout: int | None = Field(
        default=None, gt=0, description="Seconds for the whole sweep; its running trials are "
        "canceled when it is reached."
    )  # fmt: skip
    trial_timeout: int | None = Field(default=None, gt=0, description="Seconds for each trial.")


class EarlyTermination(RequestBody):
    """Azure's policies: ``bandit`` (``slack_factor`` or ``slack_amount``),
    ``median_stopping``, ``truncation_selection`` (``truncation_percentage``)."""

    type: Literal["bandit", "median_stopping", "truncation_selection"]
    evaluation_interval: int = Field(default=1, ge=1)
    delay_evaluation: int = Field(default=0, ge=0)
    slack_factor: float | None = Field(default=None, gt=0)
    slack_amount: float | None = Field(default=None, gt=0)
    truncation_percentage: int | None = Field(default=None, ge=1, le=99)
    exclude_finished_jobs: bool | None = None  # Azure's truncation option; see docs/sweeps.md

    lowered = field_validator("type", mode="before")(_lowered)


class SweepTrial(RequestBody):
    """The command every trial runs (Azure's trial template)."""

    command: str = Field(min_length=1, max_length=MAX_COMMAND_CHARS)
    code: str | None = None
    environment: str | dict[str, Any] | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    resources: Resources = Field(default_factory=Resources)
    distribution: dict[str, Any] | None = None


class SweepSettings(RequestBody):
    """The sweep-specific fields, shared by a sweep job and a pipeline's sweep step."""

    search_space: dict[str, dict[str, Any]] = Field(min_length=1)
    sampling_algorithm: SamplingAlgorithm = Field(default_factory=SamplingAlgorithm)
    objective: Objective
    limits: SweepLimits = Field(default_factory=SweepLimits)
    early_termination: EarlyTermination | None = None

    @field_validator("sampling_algorithm", mode="before")
    @classmethod
    def _algorithm(cls, value: Any) -> Any:
        return {"type": value} if isinstance(value, str) else value


class SweepJobCreate(SweepSettings):
    """A sweep job, as in Azure ML's ``sweepJob`` YAML."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: str | None = Field(default=None, alias="$schema")
    type: Literal["sweep"] = "sweep"
    name: str | None = None
    display_name: str | None = Field(default=None, max_length=256)
    experiment_name: str | None = Field(default=None, min_length=1, max_length=256)
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    compute: str | None = None
    inputs: dict[str, str | int | float | bool | DataInput | None] = Field(default_factory=dict)
    outputs: dict[str, JobOutput | None] = Field(default_factory=dict)
    trial: SweepTrial
    queue_settings: QueueSettings = Field(default_factory=QueueSettings)
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
