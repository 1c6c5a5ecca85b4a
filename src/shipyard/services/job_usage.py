"""A running job's resource use as system metrics of its run (MLflow's ``system/`` names).

The runner samples a job's process (or container, or Ray job) and its GPUs every
``metrics_interval_seconds``; ``usage_points`` turns one sample into the points it logs.
"""

from __future__ import annotations

from shipyard.compute.gpus import GpuUsage
from shipyard.compute.launchers.local import Usage

MiB = 1024 * 1024
Point = tuple[str, float, int, None]  # (key, value, step, timestamp: now)


def usage_points(
    usage: Usage, *, cpu_seconds_before: float, elapsed: float, step: int, gpu: GpuUsage | None
) -> list[Point]:
    """CPU as a percentage of one core over ``elapsed`` seconds, memory in MB, and the GPUs'
    utilization and memory when sampled."""
    cpu_percent = 100.0 * (usage.cpu_seconds - cpu_seconds_before) / elapsed
    points: list[Point] = [
        ("system/cpu_utilization_percentage", round(cpu_percent, 2), step, None),
        ("system/memory_usage_megabytes", round(usage.rss_bytes / MiB, 2), step, None),
    ]
    if gpu is not None:
        points += [
            ("system/gpu_utilization_percentage", round(gpu.utilization_percent, 2), step, None),
            ("system/gpu_memory_used_megabytes", round(gpu.memory_used_mb, 2), step, None),
        ]
    return points
