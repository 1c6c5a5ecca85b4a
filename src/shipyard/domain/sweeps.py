"""A sweep's settings, checked: the sampling algorithm against the search space
(``domain.search_space``), the objective, the limits and the early termination policy; and the
trial's command with its hyperparameters as inputs. Pure: every error names its field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.search_space import Parameter, choices, parse_parameter

#: What Azure's bayesian sampling takes (and so do we: TPE models these well).
BAYESIAN = frozenset({"choice", "uniform", "quniform"})
ALGORITHMS = ("random", "grid", "bayesian")
POLICIES = ("bandit", "median_stopping", "truncation_selection")
#: A grid larger than this is refused: Optuna's grid sampler holds every point in memory.
MAX_GRID_POINTS = 100_000
SEARCH_SPACE_REFERENCE = re.compile(
    r"\$\{\{\s*search_space\.(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\}\}"
)


@dataclass(frozen=True)
class Policy:
    """An early termination policy (Azure's names and fields)."""

    type: str
    evaluation_interval: int = 1
    delay_evaluation: int = 0
    slack_factor: float | None = None
    slack_amount: float | None = None
    truncation_percentage: int | None = None


@dataclass(frozen=True)
class SweepConfig:
    parameters: dict[str, Parameter]
    algorithm: str
    seed: int
    goal: str  # maximize | minimize
    primary_metric: str
    max_total_trials: int
    max_concurrent_trials: int
    timeout: int | None
    trial_timeout: int | None
    policy: Policy | None

    @property
    def grid_size(self) -> int | None:
        if self.algorithm != "grid":
            return None
        return math.prod(len(choices(p)) for p in self.parameters.values())

    @property
    def trial_limit(self) -> int:
        """How many trials the sweep runs at most: a grid stops when it is enumerated."""
        grid = self.grid_size
        return self.max_total_trials if grid is None else min(grid, self.max_total_trials)


def sweep_config(
    search_space: Mapping[str, Mapping[str, Any]],
    algorithm: Mapping[str, Any],
    objective: Mapping[str, Any],
    limits: Mapping[str, Any],
    early_termination: Mapping[str, Any] | None,
    *,
    seed: int,
    field: str = "",
) -> SweepConfig:
    """The checked sweep. The mappings are the YAML's (types already checked by the
    request schema); ``seed`` is used when ``algorithm`` has none. Errors name fields
    under ``field`` (``jobs.<step>.`` for a pipeline step)."""
    parameters = {
        name: parse_parameter(name, spec, field=f"{field}search_space.{name}")
        for name, spec in search_space.items()
    }
    if not parameters:
        raise InvalidInputError(
            "the search space is empty", code="invalid_search_space", field=f"{field}search_space"
        )
    kind = str(algorithm.get("type") or "random")
    _check_algorithm(kind, algorithm, parameters, early_termination, field)
    max_total = int(limits.get("max_total_trials") or 1000)
    return SweepConfig(
        parameters=parameters,
        algorithm=kind,
        seed=int(algorithm["seed"]) if algorithm.get("seed") is not None else seed,
        goal=str(objective["goal"]),
        primary_metric=str(objective["primary_metric"]),
        max_total_trials=max_total,
        max_concurrent_trials=int(limits.get("max_concurrent_trials") or max_total),
        timeout=limits.get("timeout"),
        trial_timeout=limits.get("trial_timeout"),
        policy=_policy(early_termination, field) if early_termination else None,
    )


def trial_command(
    command: str, parameters: Mapping[str, Parameter], inputs: Collection[str], *, field: str
) -> str:
    """The trial's command with each ``${{search_space.x}}`` as ``${{inputs.x}}``: every
    trial gets its sampled values as literal inputs, which the runner quotes like any input.
    A hyperparameter may not share its name with one of the sweep's inputs."""
    for name in parameters:
        if name in inputs:
            raise InvalidInputError(
                f"hyperparameter {name!r} has the name of one of the sweep's inputs; the "
                "trial gets its sampled value as an input: rename one of them",
                code="name_clash",
                field=f"{field}search_space.{name}",
            )

    def rewrite(found: re.Match[str]) -> str:
        name = found.group("name")
        if name not in parameters:
            raise InvalidInputError(
                f"the command uses ${{{{search_space.{name}}}}} but the search space has no "
                f"{name!r} (it has {', '.join(sorted(parameters))})",
                code="undefined_reference",
                field=f"{field}trial.command",
            )
        return f"${{{{inputs.{name}}}}}"

    return SEARCH_SPACE_REFERENCE.sub(rewrite, command)


def trial_input(value: Any) -> dict[str, Any]:
    """A sampled value as a trial's literal input (the shape submitted literals take)."""
    if isinstance(value, bool):
        kind, text = "boolean", str(value)
    elif isinstance(value, int):
        kind, text = "integer", str(value)
    elif isinstance(value, float):
        kind, text = "number", repr(value)
    else:
        kind, text = "string", str(value)
    return {"kind": "literal", "type": kind, "value": text}


# -- checks ---------------------------------------------------------------------------------


def _check_algorithm(
    kind: str,
    algorithm: Mapping[str, Any],
    parameters: Mapping[str, Parameter],
    early_termination: Mapping[str, Any] | None,
    field: str,
) -> None:
    if kind not in ALGORITHMS:
        raise InvalidInputError(
            f"unknown sampling algorithm {kind!r}: use {', '.join(ALGORITHMS)}",
            code="invalid_sampling_algorithm",
            field=f"{field}sampling_algorithm.type",
        )
    if algorithm.get("rule") not in (None, "random"):
        raise InvalidInputError(
            "only rule 'random' is supported (Sobol sequences are not)",
            code="invalid_sampling_algorithm",
            field=f"{field}sampling_algorithm.rule",
        )
    if kind == "grid":
        for name, parameter in parameters.items():
            if parameter.kind != "choice":
                raise InvalidInputError(
                    f"grid sampling enumerates choices: {name!r} is a {parameter.kind} "
                    "distribution (use choice, or random or bayesian sampling)",
                    code="grid_needs_choice",
                    field=f"{field}search_space.{name}",
                )
        points = math.prod(len(choices(p)) for p in parameters.values())
        if points > MAX_GRID_POINTS:
            raise InvalidInputError(
                f"the grid has {points} points; at most {MAX_GRID_POINTS} can be enumerated",
                code="invalid_search_space",
                field=f"{field}search_space",
            )
    if kind == "bayesian":
        for name, parameter in parameters.items():
            if parameter.kind not in BAYESIAN:
                raise InvalidInputError(
                    f"bayesian sampling takes choice, uniform and quniform: {name!r} is a "
                    f"{parameter.kind} distribution",
                    code="invalid_search_space",
                    field=f"{field}search_space.{name}",
                )
        if early_termination:
            raise InvalidInputError(
                "bayesian sampling does not take an early termination policy (it learns "
                "from every trial's result): remove early_termination or sample randomly",
                code="invalid_early_termination",
                field=f"{field}early_termination",
            )


def _policy(given: Mapping[str, Any], field: str) -> Policy:
    where = f"{field}early_termination"
    kind = str(given.get("type"))
    if kind not in POLICIES:
        raise InvalidInputError(
            f"unknown early termination policy {kind!r}: use {', '.join(POLICIES)}",
            code="invalid_early_termination",
            field=f"{where}.type",
        )
    factor, amount = given.get("slack_factor"), given.get("slack_amount")
    percentage = given.get("truncation_percentage")
    if kind == "bandit" and (factor is None) == (amount is None):
        raise InvalidInputError(
            "a bandit policy takes one of slack_factor and slack_amount",
            code="invalid_early_termination",
            field=f"{where}.slack_factor",
        )
    if kind != "bandit" and (factor is not None or amount is not None):
        key = "slack_factor" if factor is not None else "slack_amount"
        raise InvalidInputError(
            f"{key} is a bandit policy's; {kind} does not take it",
            code="invalid_early_termination",
            field=f"{where}.{key}",
        )
    if (kind == "truncation_selection") != (percentage is not None):
        raise InvalidInputError(
            "truncation_percentage is what a truncation_selection policy takes (and only it)",
            code="invalid_early_termination",
            field=f"{where}.truncation_percentage",
        )
    return Policy(
        type=kind,
        evaluation_interval=int(given.get("evaluation_interval") or 1),
        delay_evaluation=int(given.get("delay_evaluation") or 0),
        slack_factor=factor,
        slack_amount=amount,
        truncation_percentage=percentage,
    )
