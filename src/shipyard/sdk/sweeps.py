"""Sweep jobs in Python: the search space's distributions, early termination policies, and
``sweep()``, which builds the sweep job YAML ``ws.jobs.create`` submits::

    from shipyard.sdk.jobs import command
    from shipyard.sdk.sweeps import BanditPolicy, Choice, LogUniform, sweep

    trial = command(
        command="python train.py --lr ${{search_space.lr}} --optimizer ${{search_space.opt}}",
        code="./src",
        environment="azureml:shipyard-minimal@latest",
    )
    job = sweep(
        trial=trial,
        search_space={"lr": LogUniform(-7, -2), "opt": Choice(["adam", "sgd"])},
        primary_metric="accuracy",
        goal="maximize",
        sampling_algorithm="random",
        max_total_trials=20,
        max_concurrent_trials=4,
        early_termination=BanditPolicy(slack_factor=0.1),
    )
    submitted = ws.jobs.create(job)
    print(ws.jobs.get(submitted.name).sweep)

The names and fields are azure-ai-ml's (``azure.ai.ml.sweep``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.sdk.jobs import CommandJob


@dataclass
class Distribution:
    """A search space entry; ``to_dict()`` is its YAML."""

    type: str = field(init=False)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Choice(Distribution):
    values: Sequence[Any]

    def __post_init__(self) -> None:
        self.type = "choice"

    def to_dict(self) -> dict[str, Any]:
        return {"type": "choice", "values": list(self.values)}


@dataclass
class Randint(Distribution):
    upper: int

    def __post_init__(self) -> None:
        self.type = "randint"


@dataclass
class Uniform(Distribution):
    min_value: float
    max_value: float

    def __post_init__(self) -> None:
        self.type = "uniform"


@dataclass
class LogUniform(Uniform):
    """exp(uniform(min_value, max_value)): the bounds are exponents."""

    def __post_init__(self) -> None:
        self.type = "loguniform"


@dataclass
class QUniform(Distribution):
    min_value: float
    max_value: float
    q: float

    def __post_init__(self) -> None:
        self.type = "quniform"


@dataclass
class QLogUniform(QUniform):
    def __post_init__(self) -> None:
        self.type = "qloguniform"


@dataclass
class Normal(Distribution):
    mu: float
    sigma: float

    def __post_init__(self) -> None:
        self.type = "normal"


@dataclass
class LogNormal(Normal):
    def __post_init__(self) -> None:
        self.type = "lognormal"


@dataclass
class QNormal(Distribution):
    mu: float
    sigma: float
    q: float

    def __post_init__(self) -> None:
        self.type = "qnormal"


@dataclass
class QLogNormal(QNormal):
    def __post_init__(self) -> None:
        self.type = "qlognormal"


@dataclass
class BanditPolicy:
    slack_factor: float | None = None
    slack_amount: float | None = None
    evaluation_interval: int = 1
    delay_evaluation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": "bandit", **{k: v for k, v in self.__dict__.items() if v is not None}}


@dataclass
class MedianStoppingPolicy:
    evaluation_interval: int = 1
    delay_evaluation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": "median_stopping", **self.__dict__}


@dataclass
class TruncationSelectionPolicy:
    truncation_percentage: int
    evaluation_interval: int = 1
    delay_evaluation: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"type": "truncation_selection", **self.__dict__}


Policy = BanditPolicy | MedianStoppingPolicy | TruncationSelectionPolicy


@dataclass
class SweepJob:
    """A sweep built in Python: ``to_dict()`` is its job YAML."""

    spec: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.spec)


# Command job fields that belong to a sweep's trial; the rest stay on the sweep.
_TRIAL_FIELDS = ("command", "code", "environment", "environment_variables", "resources")


def sweep(
    *,
    trial: CommandJob | Mapping[str, Any],
    search_space: Mapping[str, Distribution | Mapping[str, Any]],
    primary_metric: str,
    goal: str,
    sampling_algorithm: str | Mapping[str, Any] = "random",
    max_total_trials: int | None = None,
    max_concurrent_trials: int | None = None,
    timeout: int | None = None,
    trial_timeout: int | None = None,
    early_termination: Policy | Mapping[str, Any] | None = None,
    **fields: Any,
) -> SweepJob:
    """A sweep of ``trial`` (a command job: its command, code, environment, environment
    variables and resources become the trial; its inputs, outputs, compute, experiment and
    the like the sweep's). ``fields`` adds other sweep job keys (``name``, ``tags``...)."""
    command = trial.to_dict() if isinstance(trial, CommandJob) else dict(trial)
    command.pop("type", None)
    spec: dict[str, Any] = {k: v for k, v in command.items() if k not in _TRIAL_FIELDS}
    spec.update(fields)
    spec["type"] = "sweep"
    spec["trial"] = {k: v for k, v in command.items() if k in _TRIAL_FIELDS}
    spec["search_space"] = {
        name: value.to_dict() if isinstance(value, Distribution) else dict(value)
        for name, value in search_space.items()
    }
    spec["objective"] = {"primary_metric": primary_metric, "goal": goal}
    spec["sampling_algorithm"] = (
        sampling_algorithm if isinstance(sampling_algorithm, str) else dict(sampling_algorithm)
    )
    limits = {
        "max_total_trials": max_total_trials,
        "max_concurrent_trials": max_concurrent_trials,
        "timeout": timeout,
        "trial_timeout": trial_timeout,
    }
    spec["limits"] = {k: v for k, v in limits.items() if v is not None}
    if early_termination is not None:
        spec["early_termination"] = (
            dict(early_termination)
            if isinstance(early_termination, Mapping)
            else early_termination.to_dict()
        )
    return SweepJob(spec)
