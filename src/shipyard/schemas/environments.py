"""Environments: request and response bodies, in Azure ML's environment YAML shape.

A version is a Python version plus pip requirement lines (``python`` + ``pip_requirements``,
or an inline ``conda_file`` whose dependencies are ``python=X.Y``, ``pip`` and a pip list),
or a Docker ``image`` / ``build`` (kept; built only where a Docker engine is). Versions are
immutable apart from description, tags and the archived flag.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from shipyard.domain.environments import ENVIRONMENT_NAME, ENVIRONMENT_VERSION
from shipyard.schemas.common import RequestBody, ResponseBody

MAX_TAGS = 100
NO_NUL = r"^[^\x00]*$"

EnvironmentName = Annotated[str, Field(pattern=ENVIRONMENT_NAME)]
Version = Annotated[str, Field(pattern=ENVIRONMENT_VERSION)]
Text = Annotated[str, Field(max_length=10_000, pattern=NO_NUL)]
TagKey = Annotated[str, Field(min_length=1, max_length=250, pattern=r"^[^\x00]+$")]
Tags = dict[TagKey, Annotated[str, Field(max_length=5_000, pattern=NO_NUL)]]
BuildStatus = Literal["not_built", "building", "ready", "failed"]


class BuildContextBody(RequestBody):
    path: str = Field(min_length=1, max_length=4096, pattern=NO_NUL)
    dockerfile_path: str = Field(default="Dockerfile", max_length=1024, pattern=NO_NUL)


class EnvironmentVersionCreate(RequestBody):
    version: Version | None = Field(
        default=None, description="A new version; omitted: the next number."
    )
    description: Text | None = None
    tags: Tags = Field(default_factory=dict, max_length=MAX_TAGS)
    python: str | None = Field(
        default=None, max_length=20, description="Python version, e.g. '3.11'."
    )
    pip_requirements: list[str] | None = Field(
        default=None, description="Requirement lines (PEP 508), e.g. 'scikit-learn==1.5.2'."
    )
    conda_file: dict[str, Any] | None = Field(
        default=None,
        description="A conda environment file, inline: dependencies python=X.Y, pip and a "
        "pip list.",
    )
    image: str | None = Field(default=None, max_length=512, description="A Docker image.")
    build: BuildContextBody | None = Field(default=None, description="A Docker build context.")
    os_type: Literal["linux", "windows"] | None = None
    inference_config: dict[str, Any] | None = Field(
        default=None, description="Azure's serving routes (kept, for deployments)."
    )


class EnvironmentVersionUpdate(RequestBody):
    """What may change on an immutable version: its description and tags."""

    description: Text | None = None
    tags: Tags | None = Field(default=None, max_length=MAX_TAGS)


class EnvironmentVersionRead(ResponseBody):
    name: str
    version: str
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    python: str | None = None
    pip_requirements: list[str] = Field(default_factory=list)
    conda_file: dict[str, Any] | None = None
    image: str | None = None
    build: dict[str, str] | None = None
    os_type: str = "linux"
    inference_config: dict[str, Any] | None = None
    spec_hash: str = Field(description="The build this version maps to on this server.")
    build_status: BuildStatus = "not_built"
    curated: bool = False
    archived: bool = False
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def id(self) -> str:
        """How jobs refer to it: ``azureml:<name>:<version>``."""
        return f"azureml:{self.name}:{self.version}"


class EnvironmentRead(ResponseBody):
    name: str
    latest_version: str | None = None
    description: str | None = None
    curated: bool = False
    archived: bool = False
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime


class EnvironmentBuildRead(ResponseBody):
    name: str
    version: str
    spec_hash: str
    status: BuildStatus
    cached: bool | None = Field(
        default=None, description="On a build request: whether it was built already."
    )
    python: str | None = None
    size: int | None = None
    error: str | None = None
    log: str = Field(default="", description="The end of the build log.")
    created_at: datetime | None = None
    built_at: datetime | None = None
    last_used_at: datetime | None = None
    build_seconds: float | None = None
