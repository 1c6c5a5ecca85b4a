"""Thinning a metric's history for charts while keeping its shape.

The history is cut into equal buckets; each bucket keeps its lowest and its highest point, and
the last point always stays. So the extremes a chart must show survive, whatever is dropped.
NaN points compare with nothing; a bucket keeps its first NaN only if it has no number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

Point = TypeVar("Point", bound=tuple[int, int, float])


def downsample(points: Sequence[Point], max_points: int) -> list[Point]:
    """At most ``max_points`` (≥ 3) of ``points`` (in step order), shape kept."""
    if max_points < 3:
        raise ValueError("max_points must be at least 3")
    if len(points) <= max_points:
        return list(points)
    body, last = points[:-1], points[-1]
    buckets = (max_points - 1) // 2
    size = math.ceil(len(body) / buckets)
    kept: list[int] = []
    for start in range(0, len(body), size):
        chunk = range(start, min(start + size, len(body)))
        numbers = [i for i in chunk if not math.isnan(body[i][2])]
        if not numbers:
            kept.append(chunk[0])
            continue
        low = min(numbers, key=lambda i: body[i][2])
        high = max(numbers, key=lambda i: body[i][2])
        kept.extend(sorted({low, high}))
    return [body[i] for i in kept] + [last]
