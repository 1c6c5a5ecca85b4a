"""Which queued jobs start now: priorities, fair share between workspaces, no starvation.

Pure policy: the runner gives it the queue and the free capacity, and starts what it picks.

- Higher priority first; a job's priority rises by one level for every ``aging`` it has
  waited, so a low-priority job is not passed over forever by a stream of higher ones.
- Among equals, the workspace with the fewest running jobs goes first, then the one served
  least recently (fair share: one busy team cannot fill every slot while another waits, and
  with one slot freeing at a time the workspaces take turns), then the job that has waited
  longest.
- Jobs that fit start, smaller ones may fill gaps behind a big one, but once the first job
  that does not fit has waited longer than ``reserve_after``, nothing behind it starts until
  it has: capacity drains to it instead of being taken by a stream of small jobs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Candidate:
    job_id: str
    workspace_id: str
    priority: int
    queued_at: datetime
    cpus: float
    memory_mb: int
    gpus: int


@dataclass(frozen=True)
class Capacity:
    cpus: float
    memory_mb: int  # 0: memory is not accounted
    gpus: int

    def fits(self, job: Candidate) -> bool:
        return (
            job.cpus <= self.cpus + 1e-9
            and (self.memory_mb == 0 or job.memory_mb <= self.memory_mb)
            and job.gpus <= self.gpus
        )

    def minus(self, job: Candidate) -> Capacity:
        memory = max(self.memory_mb - job.memory_mb, 1) if self.memory_mb else 0
        return Capacity(self.cpus - job.cpus, memory, self.gpus - job.gpus)


def pick(
    queue: Sequence[Candidate],
    free: Capacity,
    running_by_workspace: Mapping[str, int],
    now: datetime,
    *,
    last_served: Mapping[str, datetime] | None = None,
    aging: timedelta = timedelta(minutes=5),
    reserve_after: timedelta = timedelta(minutes=10),
) -> list[Candidate]:
    """The jobs to start now, in order. ``last_served`` says when each workspace last had a
    job started (a workspace not in it was never served: it goes first among equals)."""
    running = Counter(running_by_workspace)
    served = dict(last_served or {})
    # A job's own part of its rank does not change while this call picks: work it out once.
    aged = now - aging if aging else None  # queued before this: priority lifted
    own = {
        job.job_id: (
            -(job.priority + int((now - job.queued_at) / aging))
            if aged is not None and job.queued_at <= aged
            else -job.priority,
            job.queued_at,
        )
        for job in queue
    }

    def rank(job: Candidate) -> tuple[int, int, datetime, datetime]:
        effective, queued_at = own[job.job_id]
        last = served.get(job.workspace_id, _NEVER)
        return (effective, running[job.workspace_id], last, queued_at)

    waiting = list(queue)
    chosen: list[Candidate] = []
    while waiting and any(free.fits(job) for job in waiting):
        started: Candidate | None = min(waiting, key=rank)  # usually the best job fits
        if started is not None and not free.fits(started):
            started = None
            for job in sorted(waiting, key=rank):
                if free.fits(job):
                    started = job
                    break
                if now - job.queued_at >= reserve_after:
                    return chosen  # hold the capacity for the job that has waited too long
        if started is None:
            break
        chosen.append(started)
        waiting.remove(started)
        free = free.minus(started)
        running[started.workspace_id] += 1
        served[started.workspace_id] = now + timedelta(microseconds=len(chosen))
    return chosen


_NEVER = datetime.min.replace(tzinfo=UTC)
