"""The queue policy: priority, fair share between workspaces, aging, and reserving capacity
for a job that has waited too long."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shipyard.compute.scheduler import Candidate, Capacity, pick

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def job(
    job_id: str,
    *,
    ws: str = "a",
    priority: int = 1,
    waited: float = 0,
    cpus: float = 1,
    memory_mb: int = 0,
    gpus: int = 0,
) -> Candidate:
    return Candidate(job_id, ws, priority, NOW - timedelta(seconds=waited), cpus, memory_mb, gpus)


def ids(chosen: list[Candidate]) -> list[str]:
    return [c.job_id for c in chosen]


def test_oldest_first_within_a_priority_and_only_what_fits() -> None:
    queue = [job("new", waited=1), job("old", waited=10), job("mid", waited=5)]
    assert ids(pick(queue, Capacity(2, 0, 0), {}, NOW)) == ["old", "mid"]


def test_higher_priority_goes_first() -> None:
    queue = [job("low", priority=0, waited=30), job("high", priority=2, waited=1)]
    assert ids(pick(queue, Capacity(1, 0, 0), {}, NOW)) == ["high"]


def test_fair_share_prefers_the_workspace_with_fewer_running_jobs() -> None:
    queue = [job("a1", ws="a", waited=10), job("a2", ws="a", waited=9), job("b1", ws="b", waited=1)]
    # "a" already runs two jobs, "b" none: b's job starts first although it came last.
    assert ids(pick(queue, Capacity(2, 0, 0), {"a": 2}, NOW)) == ["b1", "a1"]


def test_picks_alternate_between_workspaces_as_slots_fill() -> None:
    queue = [job(f"a{i}", ws="a", waited=100 - i) for i in range(4)]
    queue += [job(f"b{i}", ws="b", waited=50 - i) for i in range(4)]
    assert ids(pick(queue, Capacity(4, 0, 0), {}, NOW)) == ["a0", "b0", "a1", "b1"]


def test_aging_lifts_a_long_waiting_low_priority_job() -> None:
    queue = [job("low", priority=0, waited=3 * 60 * 60), job("high", priority=2, waited=1)]
    assert ids(pick(queue, Capacity(1, 0, 0), {}, NOW, aging=timedelta(minutes=5))) == ["low"]


def test_small_jobs_fill_gaps_until_a_big_one_has_waited_too_long() -> None:
    big = job("big", cpus=4, waited=60)
    small = job("small", cpus=1, waited=1)
    assert ids(pick([big, small], Capacity(2, 0, 0), {}, NOW)) == ["small"]
    starving = job("big", cpus=4, waited=3600)
    assert pick([starving, small], Capacity(2, 0, 0), {}, NOW) == []


def test_memory_and_gpus_are_accounted() -> None:
    queue = [
        job("gpu", gpus=1, waited=5),
        job("mem", memory_mb=800, waited=4),
        job("cpu", waited=3),
    ]
    chosen = pick(queue, Capacity(8, 1000, 0), {}, NOW)
    assert ids(chosen) == ["mem", "cpu"]
    assert ids(
        pick([job("m1", memory_mb=600), job("m2", memory_mb=600)], Capacity(8, 1000, 0), {}, NOW)
    ) == ["m1"]


def test_workspaces_take_turns_when_one_slot_frees_at_a_time() -> None:
    queue = [job(f"a{i}", ws="a", waited=100 - i) for i in range(3)]
    queue += [job(f"b{i}", ws="b", waited=50 - i) for i in range(3)]
    queue += [job("c0", ws="c", waited=1)]
    served = {"a": NOW - timedelta(seconds=2), "b": NOW - timedelta(seconds=1)}
    # Nobody runs anything and one slot is free: c, never served, goes first although its
    # job is the newest; then the workspace served longest ago.
    assert ids(pick(queue, Capacity(1, 0, 0), {}, NOW, last_served=served)) == ["c0"]
    assert ids(pick(queue[:6], Capacity(1, 0, 0), {}, NOW, last_served=served)) == ["a0"]
