"""Data assets: request and response bodies, in Azure ML's shape.

A data asset is a name in a workspace with immutable versions; each version points at a file
(``uri_file``), a folder (``uri_folder``) or a table (``mltable``: a folder with an
``MLTable`` file) by ``path``: a datastore URI, or an http(s) URL the server keeps as a
reference. Versions are strings; an omitted one becomes the next number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from shipyard.schemas.common import RequestBody, ResponseBody

MAX_TAGS = 100
NO_NUL = r"^[^\x00]*$"
DataType = Literal["uri_file", "uri_folder", "mltable"]
# Azure ML's rules: letters, digits, '-', '_' and '.', starting with a letter or digit.
DATA_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$"
DATA_VERSION = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: Not a version: the label that names the newest one.
LATEST = "latest"

DataName = Annotated[str, Field(pattern=DATA_NAME)]
Version = Annotated[str, Field(pattern=DATA_VERSION)]
Text = Annotated[str, Field(max_length=10_000, pattern=NO_NUL)]
TagKey = Annotated[str, Field(min_length=1, max_length=250, pattern=r"^[^\x00]+$")]
Tags = dict[TagKey, Annotated[str, Field(max_length=5_000, pattern=NO_NUL)]]


class DataVersionCreate(RequestBody):
    version: Version | None = Field(
        default=None, description="A new version; omitted: the next number."
    )
    type: DataType = "uri_folder"
    path: str = Field(
        min_length=1,
        max_length=4096,
        pattern=NO_NUL,
        description="azureml://datastores/<name>/paths/<path>, or an http(s) URL.",
    )
    description: Text | None = None
    tags: Tags = Field(default_factory=dict, max_length=MAX_TAGS)
    properties: Tags = Field(default_factory=dict, max_length=MAX_TAGS)


class DataVersionUpdate(RequestBody):
    """What may change on an immutable version: its description and tags."""

    description: Text | None = None
    tags: Tags | None = Field(default=None, max_length=MAX_TAGS)


class DataVersionRead(ResponseBody):
    name: str
    version: str
    type: DataType
    path: str
    datastore: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    properties: dict[str, str] = Field(default_factory=dict)
    archived: bool = False
    content_digest: str | None = None
    size: int | None = None
    file_count: int | None = None
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def id(self) -> str:
        """How jobs and models refer to it: ``azureml:<name>:<version>``."""
        return f"azureml:{self.name}:{self.version}"


class DataAssetRead(ResponseBody):
    name: str
    latest_version: str | None = None
    archived: bool = False
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime


class DataFileRead(ResponseBody):
    path: str
    is_dir: bool
    size: int = 0


class DataFileList(ResponseBody):
    items: list[DataFileRead]


class ColumnRead(ResponseBody):
    name: str
    type: str


class DataPreview(ResponseBody):
    columns: list[ColumnRead]
    rows: list[list[Any]]
    files: list[str] = Field(default_factory=list, description="The files the rows came from.")
