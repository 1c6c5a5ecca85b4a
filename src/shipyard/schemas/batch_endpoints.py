"""Batch endpoints and deployments: Azure ML's ``batchEndpoint``, ``modelBatchDeployment`` and
``pipelineComponentBatchDeployment`` YAML as request bodies, what the API shows of them, and
the body of an invoke (Azure's REST shape, or a simpler one).

Fields Azure accepts that mean nothing here (``identity``, ``public_network_access``) are
accepted and ignored, so a file written for Azure runs unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from shipyard.schemas.common import RequestBody, ResponseBody
from shipyard.schemas.endpoints import CodeConfiguration, InlineModel

MAX_MINI_BATCH = 10_000
MAX_CONCURRENCY = 64
MAX_INSTANCES = 100


class BatchEndpointDefaults(RequestBody):
    deployment_name: str | None = None


class BatchEndpointCreate(RequestBody):
    schema_: str | None = Field(default=None, alias="$schema")
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    auth_mode: Literal["aad_token"] = Field(
        default="aad_token",
        description="Azure's only mode; here: the caller's Shipyard token or session.",
    )
    defaults: BatchEndpointDefaults = Field(default_factory=BatchEndpointDefaults)
    identity: dict[str, Any] | None = None
    public_network_access: str | None = None


class BatchEndpointUpdate(RequestBody):
    """Only the fields given change."""

    schema_: str | None = Field(default=None, alias="$schema")
    name: str | None = None
    description: str | None = None
    tags: dict[str, str] | None = None
    auth_mode: Literal["aad_token"] | None = None
    defaults: BatchEndpointDefaults | None = None
    identity: dict[str, Any] | None = None
    public_network_access: str | None = None


class BatchEndpointRead(ResponseBody):
    name: str
    description: str | None
    tags: dict[str, str]
    auth_mode: str
    defaults: dict[str, str | None]
    scoring_uri: str = Field(description="POST an invoke body here to start a job.")
    provisioning_state: str = "Succeeded"
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class RetrySettings(RequestBody):
    max_retries: int = Field(default=3, ge=0, le=100)
    timeout: int = Field(default=30, ge=1, le=86_400, description="Seconds per mini-batch.")


class ModelBatchSettings(RequestBody):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    max_concurrency_per_instance: int = Field(default=1, ge=1, le=MAX_CONCURRENCY)
    mini_batch_size: int = Field(default=10, ge=1, le=MAX_MINI_BATCH)
    error_threshold: int = Field(default=-1, ge=-1, description="Failed files; -1 ignores.")
    logging_level: Literal["warning", "info", "debug"] = "info"
    retry_settings: RetrySettings = Field(default_factory=RetrySettings)
    output_action: Literal["append_row", "summary_only"] = "append_row"
    output_file_name: str = Field(default="predictions.csv", min_length=1, max_length=128)
    environment_variables: dict[str, str] = Field(default_factory=dict)


class BatchResources(RequestBody):
    model_config = ConfigDict(extra="allow")  # Azure's instance_type and others

    instance_count: int = Field(default=1, ge=1, le=MAX_INSTANCES)


class BatchDeploymentCreate(RequestBody):
    schema_: str | None = Field(default=None, alias="$schema")
    name: str = Field(min_length=1, max_length=255)
    endpoint_name: str | None = Field(default=None, description="Must match the path's.")
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    type: Literal["model", "pipeline"] = "model"
    # type: model
    model: str | InlineModel | None = None
    code_configuration: CodeConfiguration | None = None
    environment: str | dict[str, Any] | None = None
    compute: str | None = Field(default=None, description="azureml:<compute>; local if unset.")
    resources: BatchResources = Field(default_factory=BatchResources)
    # type: model: ModelBatchSettings; type: pipeline: pipeline settings (checked by type)
    settings: dict[str, Any] = Field(default_factory=dict)
    # type: pipeline
    component: str | dict[str, Any] | None = None
    job_definition: str | dict[str, Any] | None = None


class BatchDeploymentUpdate(RequestBody):
    """Only the fields given change (``update -f`` sends them all); the name stays."""

    schema_: str | None = Field(default=None, alias="$schema")
    name: str | None = None
    endpoint_name: str | None = None
    description: str | None = None
    tags: dict[str, str] | None = None
    type: Literal["model", "pipeline"] | None = None
    model: str | InlineModel | None = None
    code_configuration: CodeConfiguration | None = None
    environment: str | dict[str, Any] | None = None
    compute: str | None = None
    resources: BatchResources | None = None
    settings: dict[str, Any] | None = None
    component: str | dict[str, Any] | None = None
    job_definition: str | dict[str, Any] | None = None


class BatchDeploymentRead(ResponseBody):
    name: str
    endpoint_name: str
    description: str | None
    tags: dict[str, str]
    type: str
    model: str | dict[str, Any] | None = None
    model_type: str | None = None
    code_configuration: dict[str, Any] | None = None
    environment: str | None = None
    compute: str | None = None
    resources: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    component: str | None = None
    job_definition: str | None = None
    is_default: bool = False
    provisioning_state: str = "Succeeded"
    created_by: str | None
    created_at: datetime
    updated_at: datetime


# -- invoke ----------------------------------------------------------------------------------


class AzureJobInput(RequestBody):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    JobInputType: str = Field(default="UriFolder")  # Azure's keys
    Uri: str | None = Field(default=None, max_length=4096)
    Value: Any = None  # a literal input of a pipeline deployment


class AzureInvokeProperties(RequestBody):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    InputData: dict[str, AzureJobInput] = Field(default_factory=dict)
    OutputData: dict[str, Any] = Field(default_factory=dict)


class BatchInvoke(RequestBody):
    """Either Azure's ``{"properties": {"InputData": {...}}}`` or Shipyard's
    ``{"inputs": {"<name>": {"type": "uri_folder", "path": "..."} | <literal>}}``; a model
    deployment takes exactly one data input (its name does not matter)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    properties: AzureInvokeProperties | None = None
    inputs: dict[str, Any] | None = None
    deployment_name: str | None = Field(
        default=None, description="The deployment to run (the endpoint's default when unset)."
    )
    experiment_name: str | None = Field(default=None, min_length=1, max_length=256)
    display_name: str | None = Field(default=None, max_length=256)
    tags: dict[str, str] = Field(default_factory=dict)
