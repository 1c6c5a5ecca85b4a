"""Sampling and early termination for sweeps, done by Optuna's samplers and pruners.

The Optuna study is rebuilt from the trials' records each time it is asked something: the
trials' rows are the truth, so a restarted server, or a second one, carries on exactly where
the sweep was. What a sampler would otherwise keep in memory is made derivable instead:

- each trial is sampled by a sampler seeded with the sweep's seed and the trial's number, so
  a rebuilt sampler does not repeat the previous trial's values;
- the grid sampler's shuffle comes from the sweep's seed alone, and its ``grid_id`` travels
  with each trial's record (``system_attrs``).

Algorithms: random → ``RandomSampler``, grid → ``GridSampler``, bayesian → ``TPESampler``
(with the constant liar, so running trials steer new samples away from themselves).
Policies: ``median_stopping`` → ``MedianPruner``, ``truncation_selection`` →
``PercentilePruner`` keeping the best ``100 - truncation_percentage`` percent, ``bandit`` →
``BanditPruner`` below (Optuna has none). An interval is one logged value of the primary
metric; a policy is first applied at the ``delay_evaluation + 1``-th value, then every
``evaluation_interval`` values.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.pruners import BasePruner, MedianPruner, PercentilePruner
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from shipyard.domain.sweeps import Policy, SweepConfig

_STATES = {
    "running": TrialState.RUNNING,
    "complete": TrialState.COMPLETE,
    "pruned": TrialState.PRUNED,
    "failed": TrialState.FAIL,
}


@dataclass(frozen=True)
class TrialRecord:
    """What the sweep knows of one trial: its raw sampled values, and how it went."""

    number: int
    raw: Mapping[str, Any]
    state: str  # running | complete | pruned | failed
    value: float | None = None  # the primary metric's last value, for a complete trial
    intermediate: Mapping[int, float] = field(default_factory=dict)  # interval -> value
    system_attrs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Sample:
    number: int
    raw: dict[str, Any]
    values: dict[str, Any]
    system_attrs: dict[str, Any]


def sample(config: SweepConfig, records: Sequence[TrialRecord], count: int) -> list[Sample]:
    """The next ``count`` trials' values (numbered after ``records``)."""
    study = _study(config, records)
    distributions = {name: p.distribution for name, p in config.parameters.items()}
    samples: list[Sample] = []
    for _ in range(count):
        number = len(records) + len(samples)
        study.sampler = _sampler(config, number)
        trial = study.ask(fixed_distributions=distributions)
        raw = dict(trial.params)
        attrs = study.get_trials(deepcopy=False)[-1].system_attrs
        samples.append(
            Sample(
                number=trial.number,
                raw=raw,
                values={name: config.parameters[name].value(v) for name, v in raw.items()},
                # Kept with the trial as JSON; the grid sampler needs its grid_id back.
                system_attrs=json.loads(json.dumps(attrs, default=str)),
            )
        )
    return samples


def to_stop(
    config: SweepConfig, records: Sequence[TrialRecord], checked: Mapping[int, int]
) -> tuple[dict[int, str], dict[int, int]]:
    """Running trials the early termination policy stops now, with the reason, and the last
    interval checked for each running trial.

    A pruner expects to be asked after every value a trial reports; a sweep looks from time
    to time, so each interval reported since the last look (``checked``: trial number ->
    interval) is put to the pruner in turn, as if the trial had just reported it."""
    policy = config.policy
    fresh = [
        r
        for r in records
        if r.state == "running"
        and r.intermediate
        and max(r.intermediate) > checked.get(r.number, -1)
    ]
    if policy is None or not fresh:
        return {}, {}  # nothing new to look at: no study to build
    study = _study(config, records)
    pruner = make_pruner(policy)
    distributions = {name: p.distribution for name, p in config.parameters.items()}
    stop: dict[int, str] = {}
    seen: dict[int, int] = {}
    for record in fresh:
        intervals = sorted(record.intermediate)
        for interval in intervals:
            if interval <= checked.get(record.number, -1):
                continue
            partial = create_trial(
                state=TrialState.RUNNING,
                params=dict(record.raw),
                distributions=distributions,
                intermediate_values={k: v for k, v in record.intermediate.items() if k <= interval},
            )
            partial.number = record.number
            if pruner.prune(study, partial):
                value = record.intermediate[interval]
                stop[record.number] = (
                    f"stopped early by the {policy.type} policy at interval {interval + 1} "
                    f"({config.primary_metric} = {value:g})"
                )
                break
        seen[record.number] = intervals[-1]
    return stop, seen


def best(config: SweepConfig, records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The completed trial with the best objective value (the earliest of equals)."""
    scored = [r for r in records if r.state == "complete" and r.value is not None]
    if not scored:
        return None
    sign = -1.0 if config.goal == "maximize" else 1.0
    return min(scored, key=lambda r: (sign * float(r.value or 0.0), r.number))


class BanditPruner(BasePruner):
    """Azure's bandit policy: stop a trial whose value at an evaluation interval is not
    within the slack of the best value any trial had at that interval.

    Maximizing, the slack factor allows down to ``best / (1 + slack_factor)`` and the slack
    amount down to ``best - slack_amount``; minimizing, up to ``best * (1 + slack_factor)``
    or ``best + slack_amount``."""

    def __init__(
        self,
        *,
        slack_factor: float | None,
        slack_amount: float | None,
        evaluation_interval: int = 1,
        delay_evaluation: int = 0,
    ) -> None:
        self.slack_factor = slack_factor
        self.slack_amount = slack_amount
        self.evaluation_interval = evaluation_interval
        self.delay_evaluation = delay_evaluation

    def prune(self, study: Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.delay_evaluation:
            return False
        if (step - self.delay_evaluation) % self.evaluation_interval:
            return False
        mine = trial.intermediate_values[step]
        if math.isnan(mine):
            return True
        values = [mine] + [
            t.intermediate_values[step]
            for t in study.get_trials(deepcopy=False)
            if step in t.intermediate_values and not math.isnan(t.intermediate_values[step])
        ]
        if study.direction == StudyDirection.MAXIMIZE:
            top = max(values)
            if self.slack_factor is not None:
                return mine < top / (1 + self.slack_factor)
            return mine < top - (self.slack_amount or 0.0)
        low = min(values)
        if self.slack_factor is not None:
            return mine > low * (1 + self.slack_factor)
        return mine > low + (self.slack_amount or 0.0)


def make_pruner(policy: Policy) -> BasePruner:
    warmup, interval = policy.delay_evaluation, policy.evaluation_interval
    if policy.type == "bandit":
        return BanditPruner(
            slack_factor=policy.slack_factor,
            slack_amount=policy.slack_amount,
            evaluation_interval=interval,
            delay_evaluation=warmup,
        )
    if policy.type == "median_stopping":
        # Azure's median stopping has no start-up phase: compare from the first trial done.
        return MedianPruner(n_startup_trials=0, n_warmup_steps=warmup, interval_steps=interval)
    # PercentilePruner(p) keeps the top p percent: truncating T percent keeps 100 - T.
    keep = 100.0 - float(policy.truncation_percentage or 0)
    return PercentilePruner(
        keep, n_startup_trials=0, n_warmup_steps=warmup, interval_steps=interval
    )


# -- the study ------------------------------------------------------------------------------


def _study(config: SweepConfig, records: Sequence[TrialRecord]) -> Study:
    # A study is built for every question: Optuna's INFO line saying so would flood the log.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = StudyDirection.MAXIMIZE if config.goal == "maximize" else StudyDirection.MINIMIZE
    study = optuna.create_study(direction=direction, sampler=_sampler(config, len(records)))
    distributions = {name: p.distribution for name, p in config.parameters.items()}
    for record in sorted(records, key=lambda r: r.number):
        state = _STATES[record.state]
        value = record.value if state == TrialState.COMPLETE else None
        if state == TrialState.PRUNED and record.intermediate:
            value = record.intermediate[max(record.intermediate)]  # Optuna's convention
        study.add_trial(
            create_trial(
                state=state,
                value=value,
                params=dict(record.raw),
                distributions=distributions,
                intermediate_values=dict(record.intermediate),
                system_attrs=dict(record.system_attrs),
            )
        )
    return study


def _sampler(config: SweepConfig, number: int) -> BaseSampler:
    if config.algorithm == "grid":
        grid = {name: list(_choices(p.distribution)) for name, p in config.parameters.items()}
        return GridSampler(grid, seed=config.seed)  # one shuffle for the whole sweep
    seed = (config.seed * 1_000_003 + number) % 2**32
    if config.algorithm == "bayesian":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)  # constant_liar's label
            return TPESampler(seed=seed, constant_liar=True)
    return RandomSampler(seed=seed)


def _choices(distribution: Any) -> Sequence[Any]:
    return tuple(distribution.choices)
