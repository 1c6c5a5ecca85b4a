"""Experiment, run and logging bodies.

Metric values may be NaN or ±infinity. JSON has no spelling for them, so they travel as the
strings "NaN", "Infinity" and "-Infinity" (numbers otherwise), in both directions.
"""

from __future__ import annotations

import base64
import binascii
import math
import sys
from array import array
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, PlainSerializer, model_validator

from shipyard.schemas.common import RequestBody, ResponseBody

KEY = Field(min_length=1, max_length=250, pattern=r"^[^\x00]+$")
MAX_METRICS, MAX_PARAMS, MAX_TAGS = 1000, 100, 100
# Points per call in the column form (``LogBatch.columns``): about 400 kB of JSON, well under
# the default request body limit.
MAX_COLUMN_POINTS = 10_000

_SPECIAL = {
    "nan": math.nan,
    "infinity": math.inf,
    "inf": math.inf,
    "-infinity": -math.inf,
    "-inf": -math.inf,
}


def _to_float(value: object) -> object:
    if isinstance(value, str) and value.strip().lower() in _SPECIAL:
        return _SPECIAL[value.strip().lower()]
    return value


def metric_json(value: float) -> float | str:
    """A metric value as it travels in JSON (see the module's note on NaN and infinity)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


MetricValue = Annotated[float, BeforeValidator(_to_float), PlainSerializer(metric_json)]

RunStatus = Literal[
    "NotStarted",
    "Queued",
    "Preparing",
    "Running",
    "Finalizing",
    "Completed",
    "Failed",
    "CancelRequested",
    "Canceled",
    "NotResponding",
]
TERMINAL = frozenset({"Completed", "Failed", "Canceled"})


class ExperimentCreate(RequestBody):
    name: str = Field(min_length=1, max_length=256)
    tags: dict[str, str] = Field(default_factory=dict)


class ExperimentUpdate(RequestBody):
    name: str | None = Field(default=None, min_length=1, max_length=256)
    tags: dict[str, str] | None = None


class ExperimentRead(ResponseBody):
    id: str
    name: str
    lifecycle_stage: str
    tags: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class RunCreate(RequestBody):
    experiment: str = Field(default="Default", min_length=1, max_length=256)
    name: str | None = Field(default=None, max_length=256)
    parent_run_id: str | None = Field(default=None, max_length=32)
    tags: dict[str, str] = Field(default_factory=dict)
    start_time: datetime | None = Field(default=None, description="Default: now.")


class RunUpdate(RequestBody):
    name: str | None = Field(default=None, min_length=1, max_length=256)
    status: RunStatus | None = None
    end_time: datetime | None = Field(
        default=None, description="When a final status was reached; default: now."
    )


class RunSearch(RequestBody):
    """``filter`` uses MLflow's grammar plus OR and parentheses, e.g.
    ``metrics.accuracy > 0.9 AND (params.optimizer = 'adam' OR tags.team = 'nlp')``."""

    filter: str | None = Field(default=None, max_length=10_000)
    order_by: list[str] = Field(default_factory=list, max_length=20)
    experiments: list[str] | None = Field(default=None, max_length=1000)
    include_deleted: bool = False
    max_results: int = Field(default=100, ge=1, le=1000)
    page_token: str | None = None


class MetricIn(RequestBody):
    key: str = KEY
    value: MetricValue
    step: int = Field(default=0, ge=-(2**63), lt=2**63)
    timestamp: int | None = Field(default=None, ge=0, lt=2**63, description="ms since epoch")


class KeyValue(RequestBody):
    key: str = KEY
    value: str = Field(max_length=8000)


def _packed(code: str, what: str) -> Callable[[object], list[Any]]:
    """A validator that reads a column sent as base64 of a little-endian array."""
    size = array(code).itemsize
    longest = 4 * -(-MAX_COLUMN_POINTS * size // 3)  # base64 of the most points allowed

    def unpack(value: object) -> list[Any]:
        if isinstance(value, list):  # already decoded (a model built in process)
            return value
        if not isinstance(value, str) or len(value) > longest:
            raise ValueError(f"must be base64 of at most {MAX_COLUMN_POINTS} little-endian {what}")
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"is not base64 ({exc})") from exc
        if len(raw) % size:
            raise ValueError(f"holds {len(raw)} bytes, not a whole number of {what}")
        column = array(code)
        column.frombytes(raw)
        if sys.byteorder == "big":
            column.byteswap()
        return column.tolist()

    return unpack


class MetricColumns(RequestBody):
    """Many points as columns, the SDK's compact form: point ``i`` is metric
    ``keys[key_index[i]]`` (``keys[0]`` when ``key_index`` is left out) with ``values[i]`` at
    ``steps[i]`` and ``timestamps[i]`` (ms since the epoch).

    The columns travel as base64 of little-endian arrays: ``values`` of 8-byte floats (NaN and
    infinities included), ``steps`` and ``timestamps`` of 8-byte signed integers,
    ``key_index`` of 4-byte unsigned integers. Both sides then convert a column at C speed
    instead of reading and checking a JSON number per point."""

    keys: list[Annotated[str, KEY]] = Field(min_length=1, max_length=MAX_METRICS)
    key_index: Annotated[
        list[int] | None,
        BeforeValidator(_packed("I", "4-byte unsigned integers"), json_schema_input_type=str),
    ] = Field(default=None, max_length=MAX_COLUMN_POINTS)
    values: Annotated[
        list[float],
        BeforeValidator(_packed("d", "8-byte floats"), json_schema_input_type=str),
    ] = Field(max_length=MAX_COLUMN_POINTS)
    steps: Annotated[
        list[int],
        BeforeValidator(_packed("q", "8-byte integers"), json_schema_input_type=str),
    ] = Field(max_length=MAX_COLUMN_POINTS)
    timestamps: Annotated[
        list[Annotated[int, Field(ge=0)]],
        BeforeValidator(_packed("q", "8-byte integers"), json_schema_input_type=str),
    ] = Field(max_length=MAX_COLUMN_POINTS)

    @model_validator(mode="after")
    def _aligned(self) -> MetricColumns:
        count = len(self.values)
        for name in ("steps", "timestamps", "key_index"):
            column = getattr(self, name)
            if column is not None and len(column) != count:
                raise ValueError(f"{name} has {len(column)} entries, values has {count}")
        if self.key_index and max(self.key_index) >= len(self.keys):
            raise ValueError(f"key_index refers past the {len(self.keys)} keys given")
        return self


class LogBatch(RequestBody):
    metrics: list[MetricIn] = Field(default_factory=list, max_length=MAX_METRICS)
    columns: MetricColumns | None = Field(
        default=None, description="More points, as columns (up to 10,000 per call)."
    )
    params: list[KeyValue] = Field(default_factory=list, max_length=MAX_PARAMS)
    tags: list[KeyValue] = Field(default_factory=list, max_length=MAX_TAGS)


class LatestMetric(ResponseBody):
    model_config = ConfigDict(extra="ignore", ser_json_inf_nan="strings")

    value: MetricValue
    step: int
    timestamp: int


class RunRead(ResponseBody):
    id: str
    name: str
    experiment: str
    experiment_id: str
    job_type: str
    status: str
    parent_run_id: str | None = None
    created_by: str | None = None
    lifecycle_stage: str
    start_time: datetime
    end_time: datetime | None = None
    status_history: list[tuple[str, datetime]] = Field(default_factory=list)
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, LatestMetric] = Field(default_factory=dict)


class MetricPoint(ResponseBody):
    step: int
    timestamp: int
    value: MetricValue


class MetricHistory(ResponseBody):
    key: str
    points: list[MetricPoint]
    total_points: int
    downsampled: bool
