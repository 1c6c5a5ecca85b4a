"""What a run consumed: datasets and models (MLflow's ``log_inputs``), with MLflow's limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from shipyard.schemas.common import RequestBody, ResponseBody

MAX_DATASETS = 1000  # per call, as MLflow


class DatasetIn(RequestBody):
    name: str = Field(min_length=1, max_length=500)
    digest: str = Field(min_length=1, max_length=36)
    source_type: str = Field(min_length=1, max_length=36)
    source: str = Field(max_length=65535)
    # Both are documents MLflow's client computes (JSON); stored as sent, never parsed.
    schema_: str | None = Field(None, alias="schema", max_length=1048575)
    profile: str | None = Field(None, max_length=16777215)


class DatasetInputIn(RequestBody):
    dataset: DatasetIn
    tags: dict[str, str] = Field(default_factory=dict, max_length=100)


class RunInputsIn(RequestBody):
    datasets: list[DatasetInputIn] = Field(default_factory=list, max_length=MAX_DATASETS)
    models: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=MAX_DATASETS
    )


class DatasetRead(ResponseBody):
    name: str
    digest: str
    source_type: str
    source: str
    schema_: str | None = Field(None, alias="schema")
    profile: str | None = None


class DatasetInputRead(ResponseBody):
    dataset: DatasetRead
    tags: dict[str, str]


class RunInputsRead(ResponseBody):
    datasets: list[DatasetInputRead] = []
    models: list[str] = []
