"""Components: request and response bodies, in Azure ML's command and pipeline component
YAML shapes.

The create body is the component YAML itself, with ``code`` already a code snapshot
(``sha256:<digest>``; the SDK and CLI upload a local folder, with its
``additional_includes``, and put this here). The server checks the rest
(``domain.components``): these models give the shape, the domain the rules, so a component
inlined in a pipeline is checked exactly like a registered one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from shipyard.schemas.common import RequestBody, ResponseBody

MAX_TAGS = 100
NO_NUL = r"^[^\x00]*$"

Text = Annotated[str, Field(max_length=10_000, pattern=NO_NUL)]
TagKey = Annotated[str, Field(min_length=1, max_length=250, pattern=r"^[^\x00]+$")]
Tags = dict[TagKey, Annotated[str, Field(max_length=5_000, pattern=NO_NUL)]]


class ComponentInputBody(RequestBody):
    """A declared input: ``string``, ``number``, ``integer``, ``boolean``, or a data or model
    type (``uri_file``, ``uri_folder``, ``mltable``, ``mlflow_model``, ``custom_model``)."""

    type: Any = Field(default=None, description="Required: the input's type.")
    default: Any = Field(default=None, description="Used when a step gives no value.")
    optional: Any = Field(default=None, description="true: a step may leave it unset.")
    min: Any = Field(default=None, description="number and integer inputs only.")
    max: Any = Field(default=None, description="number and integer inputs only.")
    enum: Any = Field(default=None, description="string inputs only: the allowed values.")
    description: Any = None
    mode: Any = Field(default=None, description="data inputs: ro_mount, download, direct...")


class ComponentOutputBody(RequestBody):
    type: Any = Field(default=None, description="Required: a data or model type.")
    description: Any = None
    mode: Any = Field(default=None, description="rw_mount, upload, direct or mount.")


class ComponentVersionCreate(RequestBody):
    """A command component, as in Azure ML's ``commandComponent`` YAML; or with ``type:
    pipeline``, a pipeline component (``pipelineComponent``: ports and ``jobs``)."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: str | None = Field(default=None, alias="$schema")
    type: Any = Field(default="command", description="'command' or 'pipeline'.")
    name: Any = Field(default=None, description="If given, the name in the path.")
    version: Any = Field(default=None, description="A new version; omitted: the next number.")
    display_name: Any = None
    description: Any = None
    tags: Any = None
    is_deterministic: Any = Field(
        default=True, description="false: a pipeline never reuses this component's steps."
    )
    command: Any = Field(
        default=None, description="Required: ${{inputs.x}}, ${{outputs.y}}, $[[ ... ]]."
    )
    code: Any = Field(
        default=None,
        description="'sha256:<digest>' of a committed code upload (the SDK and CLI upload a "
        "local folder and its additional_includes, and put this here).",
    )
    additional_includes: Any = Field(
        default=None, description="Folded into the code snapshot by the SDK and CLI."
    )
    environment: Any = Field(
        default=None,
        description="Required: azureml:<name>:<version>, <name>@latest, or an inline "
        "environment; pinned when the version is created.",
    )
    resources: Any = None
    distribution: Any = None
    inputs: dict[str, ComponentInputBody | None] | None = None
    outputs: dict[str, ComponentOutputBody | None] | None = None
    jobs: Any = Field(
        default=None,
        description="A pipeline component's steps, as in a pipeline job; their components are "
        "pinned when the version is created.",
    )


class RegistryComponentVersionCreate(ComponentVersionCreate):
    """A command component created in a registry: its environment inline (or curated), and
    its code snapshot uploaded to a workspace first, which the server copies into the
    registry."""

    code_workspace: str | None = Field(
        default=None,
        max_length=63,
        description="The workspace the code snapshot was uploaded to (needs "
        "workspaces/jobs/read there); the registry keeps its own copy.",
    )


class ComponentVersionUpdate(RequestBody):
    """What may change on an immutable version: its description and tags."""

    description: Text | None = None
    tags: Tags | None = Field(default=None, max_length=MAX_TAGS)


class ComponentInputRead(ResponseBody):
    type: str
    default: str | int | float | bool | None = None
    optional: bool = False
    min: int | float | None = None
    max: int | float | None = None
    enum: list[str] | None = None
    description: str | None = None
    mode: str | None = None


class ComponentOutputRead(ResponseBody):
    type: str
    description: str | None = None
    mode: str | None = None


class ComponentVersionRead(ResponseBody):
    name: str
    version: str
    type: str = "command"
    display_name: str | None = None
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    is_deterministic: bool = True
    command: str = ""
    code: str | None = Field(default=None, description="The code snapshot: 'sha256:<digest>'.")
    environment: str | None = Field(
        default=None, description="The environment, pinned: azureml:<name>:<version>."
    )
    resources: dict[str, Any] = Field(default_factory=dict)
    distribution: dict[str, Any] | None = None
    inputs: dict[str, ComponentInputRead] = Field(default_factory=dict)
    outputs: dict[str, ComponentOutputRead] = Field(default_factory=dict)
    jobs: dict[str, Any] | None = Field(
        default=None,
        description="A pipeline component's steps, each component pinned "
        "(azureml:<name>:<version>).",
    )
    definition_hash: str = Field(
        description="sha256 of what decides what a step runs (part of its reuse fingerprint)."
    )
    archived: bool = False
    registry: str | None = Field(
        default=None, description="The registry it belongs to (None: a workspace's)."
    )
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def id(self) -> str:
        """How pipelines refer to it: ``azureml:<name>:<version>``, or for a registry's
        ``azureml://registries/<registry>/components/<name>/versions/<version>``."""
        if self.registry is not None:
            return (
                f"azureml://registries/{self.registry}/components/{self.name}"
                f"/versions/{self.version}"
            )
        return f"azureml:{self.name}:{self.version}"


class ComponentRead(ResponseBody):
    name: str
    latest_version: str | None = None
    archived: bool = False
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime
