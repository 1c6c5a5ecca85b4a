"""The sweep's search space, settings, sampling and early termination, without a server."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.domain.search_space import parse_parameter
from shipyard.domain.sweep_sampling import (
    BanditPruner,
    TrialRecord,
    best,
    make_pruner,
    sample,
    to_stop,
)
from shipyard.domain.sweeps import Policy, SweepConfig, sweep_config, trial_command

SPACE: dict[str, dict[str, Any]] = {
    "choice": {"type": "choice", "values": ["a", 2, 0.5, True]},
    "randint": {"type": "randint", "upper": 3},
    "uniform": {"type": "uniform", "min_value": -1, "max_value": 1},
    "loguniform": {"type": "loguniform", "min_value": -3, "max_value": 0},
    "quniform": {"type": "quniform", "min_value": 0, "max_value": 1, "q": 0.1},
    "qloguniform": {"type": "qloguniform", "min_value": 0, "max_value": 3, "q": 2},
    "normal": {"type": "normal", "mu": 10, "sigma": 2},
    "lognormal": {"type": "lognormal", "mu": 0, "sigma": 0.5},
    "qnormal": {"type": "qnormal", "mu": 10, "sigma": 2, "q": 1},
    "qlognormal": {"type": "qlognormal", "mu": 1, "sigma": 0.5, "q": 0.5},
}


def config(
    space: Mapping[str, Mapping[str, Any]] = SPACE,
    algorithm: str = "random",
    goal: str = "maximize",
    policy: dict[str, Any] | None = None,
    **limits: Any,
) -> SweepConfig:
    return sweep_config(
        space,
        {"type": algorithm},
        {"goal": goal, "primary_metric": "score"},
        limits,
        policy,
        seed=11,
    )


def running(samples: list[Any]) -> list[TrialRecord]:
    return [TrialRecord(s.number, s.raw, "running", system_attrs=s.system_attrs) for s in samples]


def test_random_samples_lie_in_each_distribution() -> None:
    drawn = sample(config(), [], 40)
    assert [s.number for s in drawn] == list(range(40))
    for s in drawn:
        v = s.values
        assert v["choice"] in ("a", 2, 0.5, True)
        assert v["randint"] in (0, 1, 2)
        assert -1 <= v["uniform"] <= 1
        assert math.exp(-3) <= v["loguniform"] <= 1
        assert round(v["quniform"] * 10) == pytest.approx(v["quniform"] * 10)  # a step of 0.1
        assert len(repr(v["quniform"])) <= 4  # 0.3, not 0.30000000000000004
        assert isinstance(v["qloguniform"], int)  # an integer q gives integers
        assert v["qloguniform"] % 2 == 0
        assert 0 <= v["qloguniform"] <= 22
        assert v["lognormal"] > 0
        assert isinstance(v["qnormal"], int)
        assert (v["qlognormal"] / 0.5) == pytest.approx(round(v["qlognormal"] / 0.5))
    normals = [s.values["normal"] for s in drawn]
    assert 8 < sum(normals) / len(normals) < 12  # around mu = 10
    assert len({s.values["uniform"] for s in drawn}) == 40


def test_the_study_is_rebuilt_from_records_with_the_same_samples() -> None:
    """What a restarted server samples next is what the first would have: the store holds
    everything the samplers need."""
    for algorithm, space in (
        ("random", SPACE),
        ("grid", {"a": SPACE["choice"], "b": {"type": "choice", "values": [1, 2, 3]}}),
        ("bayesian", {"u": SPACE["uniform"], "c": SPACE["choice"], "q": SPACE["quniform"]}),
    ):
        cfg = config(space, algorithm)
        at_once = sample(cfg, [], 5)
        one_by_one: list[Any] = []
        for _ in range(5):
            one_by_one += sample(cfg, running(one_by_one), 1)
        assert [s.raw for s in one_by_one] == [s.raw for s in at_once], algorithm
        assert sample(cfg, running(at_once), 1) == sample(cfg, running(at_once), 1)


def test_grid_sampling_enumerates_exactly_the_product() -> None:
    space = {
        "a": {"type": "choice", "values": [1, 2]},
        "b": {"type": "choice", "values": ["x", "y", "z"]},
    }
    cfg = config(space, "grid", max_total_trials=100)
    assert (cfg.grid_size, cfg.trial_limit) == (6, 6)
    drawn = sample(cfg, [], 6)
    assert sorted((s.values["a"], s.values["b"]) for s in drawn) == sorted(
        itertools.product([1, 2], ["x", "y", "z"])
    )
    assert config(space, "grid", max_total_trials=4).trial_limit == 4


def test_bayesian_sampling_steers_by_the_results_so_far() -> None:
    cfg = config({"x": {"type": "uniform", "min_value": 0, "max_value": 1}}, "bayesian")
    records: list[TrialRecord] = []
    for _ in range(20):
        (drawn,) = sample(cfg, records, 1)
        assert 0 <= drawn.values["x"] <= 1
        records.append(TrialRecord(drawn.number, drawn.raw, "complete", -abs(drawn.raw["x"] - 0.3)))
    # The next value is TPE's choice from the results, not the random sampler's draw.
    random = sample(config({"x": {"type": "uniform", "min_value": 0, "max_value": 1}}), records, 1)
    assert sample(cfg, records, 1)[0].raw != random[0].raw
    top = best(cfg, records)
    assert top is not None
    assert abs(top.raw["x"] - 0.3) < 0.05


def test_the_best_trial_follows_the_goal_and_ignores_unfinished_ones() -> None:
    records = [
        TrialRecord(0, {}, "complete", 0.5),
        TrialRecord(1, {}, "complete", 0.9),
        TrialRecord(2, {}, "running", None, {0: 5.0}),
        TrialRecord(3, {}, "complete", 0.9),
        TrialRecord(4, {}, "failed"),
    ]
    space = {"x": SPACE["uniform"]}
    top = best(config(space), records)
    assert top is not None
    assert top.number == 1  # the earlier of equals
    low = best(config(space, goal="minimize"), records)
    assert low is not None
    assert low.number == 0
    assert best(config(space), [TrialRecord(0, {}, "failed")]) is None


def _records(*series: tuple[str, dict[int, float]]) -> list[TrialRecord]:
    return [
        TrialRecord(n, {"x": 0.5}, state, 1.0 if state == "complete" else None, values)
        for n, (state, values) in enumerate(series)
    ]


def test_the_bandit_policy_stops_what_is_outside_the_slack_of_the_best() -> None:
    space = {"x": SPACE["uniform"]}
    records = _records(
        ("complete", {0: 0.8, 1: 0.9}),
        ("running", {0: 0.75, 1: 0.85}),  # within 0.8 / 1.1, then 0.9 / 1.1
        ("running", {0: 0.5}),  # below 0.8 / 1.1 at the first interval
    )
    stop, checked = to_stop(
        config(space, policy={"type": "bandit", "slack_factor": 0.1}), records, {}
    )
    assert list(stop) == [2]
    assert "bandit" in stop[2]
    assert "interval 1" in stop[2]
    assert checked == {1: 1, 2: 0}
    amount = config(space, policy={"type": "bandit", "slack_amount": 0.35})
    assert to_stop(amount, records, {})[0] == {}
    minimizing = config(space, goal="minimize", policy={"type": "bandit", "slack_factor": 0.5})
    low = _records(("complete", {0: 1.0}), ("running", {0: 1.4}), ("running", {0: 1.6}))
    assert list(to_stop(minimizing, low, {})[0]) == [2]  # above 1.0 * 1.5
    # What was looked at already is not looked at again.
    assert (
        to_stop(config(space, policy={"type": "bandit", "slack_factor": 0.1}), records, checked)[0]
        == {}
    )


def test_the_bandit_policy_waits_for_its_delay_and_keeps_its_interval() -> None:
    import optuna

    pruner = BanditPruner(
        slack_factor=0.1, slack_amount=None, evaluation_interval=2, delay_evaluation=1
    )
    study = optuna.create_study(direction="maximize")
    x = optuna.distributions.FloatDistribution(0, 1)
    study.add_trial(
        optuna.trial.create_trial(
            params={"x": 0.5},
            distributions={"x": x},
            value=1,
            intermediate_values={0: 1, 1: 1, 2: 1, 3: 1},
        )
    )
    bad = {0: 0.1, 1: 0.1, 2: 0.1, 3: 0.1}
    decisions = []
    for step in range(4):
        trial = optuna.trial.create_trial(
            state=optuna.trial.TrialState.RUNNING,
            params={"x": 0.5},
            distributions={"x": x},
            intermediate_values={k: v for k, v in bad.items() if k <= step},
        )
        decisions.append(pruner.prune(study, trial))
    assert decisions == [False, True, False, True]  # intervals 2 and 4 (steps 1 and 3)


def test_median_stopping_and_truncation_selection_compare_with_completed_trials() -> None:
    space = {"x": SPACE["uniform"]}
    done = [("complete", {0: v}) for v in (1.0, 2.0, 3.0, 4.0)]
    records = _records(*done, ("running", {0: 1.5}), ("running", {0: 3.2}), ("running", {0: 4.5}))
    median = config(space, policy={"type": "median_stopping"})
    assert list(to_stop(median, records, {})[0]) == [4]  # below the median, 2.5
    truncating = config(space, policy={"type": "truncation_selection", "truncation_percentage": 80})
    # Only what is in the top 20 % stays: above the completed trials' 80th percentile, 3.4.
    assert sorted(to_stop(truncating, records, {})[0]) == [4, 5]
    nothing_done = _records(("running", {0: 0.1}), ("running", {0: 5.0}))
    assert to_stop(median, nothing_done, {})[0] == {}
    keep_90 = make_pruner(Policy("truncation_selection", truncation_percentage=10))
    assert keep_90.prune.__self__ is keep_90  # a pruner Optuna can call


def test_the_command_takes_sampled_values_as_inputs() -> None:
    cfg = config({"lr": SPACE["uniform"], "opt": SPACE["choice"]})
    command = "train --lr ${{ search_space.lr }} --opt '${{search_space.opt}}' -d ${{inputs.d}}"
    assert trial_command(command, cfg.parameters, {"d"}, field="") == (
        "train --lr ${{inputs.lr}} --opt '${{inputs.opt}}' -d ${{inputs.d}}"
    )
    with pytest.raises(InvalidInputError) as error:
        trial_command("train ${{search_space.momentum}}", cfg.parameters, set(), field="")
    assert error.value.field == "trial.command"
    with pytest.raises(InvalidInputError) as error:
        trial_command("train", cfg.parameters, {"lr"}, field="jobs.tune.")
    assert error.value.field == "jobs.tune.search_space.lr"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"type": "beta"}, "x.type"),
        ({}, "x.type"),
        ({"type": "uniform", "min_value": 1}, "x.max_value"),
        ({"type": "uniform", "min_value": 1, "max_value": 0}, "x.min_value"),
        ({"type": "uniform", "min_value": "a", "max_value": 1}, "x.min_value"),
        ({"type": "uniform", "min_value": 0, "max_value": 1, "values": [1]}, "x.values"),
        ({"type": "loguniform", "min_value": 0, "max_value": 800}, "x.max_value"),
        ({"type": "quniform", "min_value": 0, "max_value": 1, "q": 0}, "x.q"),
        ({"type": "qnormal", "mu": 0, "sigma": 1, "q": -1}, "x.q"),
        ({"type": "normal", "mu": 0, "sigma": 0}, "x.sigma"),
        ({"type": "normal", "mu": math.inf, "sigma": 1}, "x.mu"),
        ({"type": "lognormal", "mu": 690, "sigma": 2}, "x.sigma"),
        ({"type": "choice", "values": []}, "x.values"),
        ({"type": "choice", "values": "abc"}, "x.values"),
        ({"type": "choice", "values": [[1, 2]]}, "x.values.0"),
        ({"type": "choice", "values": [1, 2, 1]}, "x.values.2"),
        ({"type": "randint", "upper": 0}, "x.upper"),
        ({"type": "randint", "upper": 2.5}, "x.upper"),
    ],
)
def test_bad_distributions_name_their_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputError) as error:
        parse_parameter("x", spec, field="x")
    assert error.value.field == field


def test_bad_settings_name_their_field() -> None:
    uniform = {"x": SPACE["uniform"]}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"space": uniform, "algorithm": "grid"}, "search_space.x"),
        ({"space": {"x": SPACE["normal"]}, "algorithm": "bayesian"}, "search_space.x"),
        (
            {"space": uniform, "algorithm": "bayesian", "policy": {"type": "median_stopping"}},
            "early_termination",
        ),
        ({"space": uniform, "policy": {"type": "bandit"}}, "early_termination.slack_factor"),
        (
            {"space": uniform, "policy": {"type": "bandit", "slack_factor": 1, "slack_amount": 1}},
            "early_termination.slack_factor",
        ),
        (
            {"space": uniform, "policy": {"type": "median_stopping", "slack_amount": 1}},
            "early_termination.slack_amount",
        ),
        (
            {"space": uniform, "policy": {"type": "truncation_selection"}},
            "early_termination.truncation_percentage",
        ),
        ({"space": {}}, "search_space"),
        ({"space": {"9lives": SPACE["uniform"]}}, "search_space.9lives"),
        (
            {
                "space": {f"p{i}": {"type": "choice", "values": list(range(10))} for i in range(6)},
                "algorithm": "grid",
            },
            "search_space",
        ),
    ]
    for given, field in cases:
        with pytest.raises(InvalidInputError) as error:
            config(given["space"], given.get("algorithm", "random"), policy=given.get("policy"))
        assert error.value.field == field, given
    with pytest.raises(InvalidInputError) as error:
        sweep_config(
            uniform,
            {"type": "random", "rule": "sobol"},
            {"goal": "maximize", "primary_metric": "m"},
            {},
            None,
            seed=1,
        )
    assert error.value.field == "sampling_algorithm.rule"


def test_limits_default_as_azure_does() -> None:
    cfg = config({"x": SPACE["uniform"]})
    assert (cfg.max_total_trials, cfg.max_concurrent_trials) == (1000, 1000)
    cfg = config({"x": SPACE["uniform"]}, max_total_trials=8, max_concurrent_trials=2)
    assert (cfg.max_total_trials, cfg.max_concurrent_trials, cfg.trial_limit) == (8, 2, 8)
