"""Online endpoints and deployments: Azure ML's ``managedOnlineEndpoint`` and
``managedOnlineDeployment`` YAML as request bodies, and what the API shows of them.

``compute`` (Azure's Kubernetes endpoint field, here also on a deployment, which wins) names
a Ray compute: the deployments run there as Ray Serve applications (docs/endpoints.md).

Fields Azure accepts that mean nothing here (``identity``, ``public_network_access``,
``instance_type``, ``scale_settings``, ``app_insights_enabled``, ``data_collector``,
``egress_public_network_access``) are accepted, kept, and ignored, so a file written for Azure
runs unchanged. Traffic values are checked by the service (domain/endpoints.py), so its errors
name the deployment at fault.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from shipyard.schemas.common import RequestBody, ResponseBody

MAX_REQUEST_TIMEOUT_MS = 180_000
MAX_INSTANCES = 100


class OnlineEndpointCreate(RequestBody):
    schema_: str | None = Field(default=None, alias="$schema")
    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    auth_mode: Literal["key", "aml_token"] = Field(
        default="key",
        description="key: two keys that do not expire; aml_token: short-lived tokens from "
        "POST .../token. (Azure's aad_token is not available.)",
    )
    traffic: dict[str, Any] = Field(
        default_factory=dict, description="Percent of live requests per deployment; 0 or 100."
    )
    mirror_traffic: dict[str, Any] = Field(
        default_factory=dict, description="One deployment, at most 50%, copies of requests."
    )
    identity: dict[str, Any] | None = None
    public_network_access: str | None = None
    kind: str | None = None
    compute: str | None = Field(
        default=None,
        max_length=200,
        description="azureml:<ray compute>: the deployments run on that Ray cluster as Ray "
        "Serve applications; none (or local): on the server's host. Cannot change later.",
    )


class OnlineEndpointUpdate(RequestBody):
    """Only the fields given change."""

    schema_: str | None = Field(default=None, alias="$schema")
    name: str | None = None
    description: str | None = None
    tags: dict[str, str] | None = None
    auth_mode: Literal["key", "aml_token"] | None = None
    traffic: dict[str, Any] | None = None
    mirror_traffic: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None
    public_network_access: str | None = None
    kind: str | None = None
    compute: str | None = Field(default=None, max_length=200, description="As it is, or left out.")


class OnlineEndpointRead(ResponseBody):
    name: str
    description: str | None
    tags: dict[str, str]
    auth_mode: str
    traffic: dict[str, int]
    mirror_traffic: dict[str, int]
    provisioning_state: str
    scoring_uri: str
    openapi_uri: str | None = None
    compute: str | None = Field(default=None, description="The Ray compute; none: local.")
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class EndpointKeysRead(ResponseBody):
    primary_key: str
    secondary_key: str


class EndpointTokenRead(ResponseBody):
    access_token: str
    token_type: str = "Bearer"  # noqa: S105  (the scheme's name, not a secret)
    expiry_time_utc: int = Field(description="Seconds since the epoch, as Azure's.")
    refresh_after_time_utc: int


class RegenerateKeysBody(RequestBody):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, populate_by_name=True)

    key_type: str = Field(alias="keyType", description="primary or secondary (any case).")


class CodeConfiguration(RequestBody):
    code: str = Field(
        min_length=1,
        max_length=200,
        description="sha256:<digest> of an uploaded code snapshot (the CLI and SDK upload a "
        "local folder and fill this in).",
    )
    scoring_script: str = Field(min_length=1, max_length=1024)


class InlineModel(RequestBody):
    path: str = Field(min_length=1, max_length=4096)
    type: Literal["custom_model", "mlflow_model"] = "custom_model"
    name: str | None = None
    version: str | None = None
    description: str | None = None


class RequestSettings(RequestBody):
    request_timeout_ms: int = Field(default=5000, ge=1, le=MAX_REQUEST_TIMEOUT_MS)
    max_concurrent_requests_per_instance: int = Field(default=1, ge=1, le=1000)
    max_queue_wait_ms: int | None = Field(default=None, ge=0, description="Deprecated; ignored.")


class Probe(RequestBody):
    initial_delay: int = Field(default=10, ge=0, le=3600)
    period: int = Field(default=10, ge=1, le=3600)
    timeout: int = Field(default=2, ge=1, le=3600)
    success_threshold: int = Field(default=1, ge=1, le=100)
    failure_threshold: int = Field(default=30, ge=1, le=1000)


class OnlineDeploymentCreate(RequestBody):
    schema_: str | None = Field(default=None, alias="$schema")
    name: str = Field(min_length=1, max_length=255)
    endpoint_name: str | None = Field(default=None, description="Must match the path's.")
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    model: str | InlineModel | None = Field(
        default=None,
        description="azureml:<name>:<version>, azureml:<name>@latest, or {path, type} (a "
        "datastore URI, a job output, runs:/...; the CLI and SDK register a local folder).",
    )
    code_configuration: CodeConfiguration | None = None
    environment: str | dict[str, Any] | None = None
    environment_variables: dict[str, str] = Field(default_factory=dict)
    instance_type: str | None = Field(default=None, description="Accepted, ignored.")
    compute: str | None = Field(
        default=None,
        max_length=200,
        description="azureml:<ray compute> (or local), instead of the endpoint's; cannot change.",
    )
    instance_count: int = Field(default=1, ge=1, le=MAX_INSTANCES)
    request_settings: RequestSettings = Field(default_factory=RequestSettings)
    liveness_probe: Probe = Field(default_factory=Probe)
    readiness_probe: Probe = Field(default_factory=Probe)
    scale_settings: dict[str, Any] | None = None
    app_insights_enabled: bool | None = None
    data_collector: dict[str, Any] | None = None
    egress_public_network_access: str | None = None


class OnlineDeploymentUpdate(RequestBody):
    """Only the fields given change (``update -f`` sends them all); the name stays."""

    schema_: str | None = Field(default=None, alias="$schema")
    name: str | None = None
    endpoint_name: str | None = None
    description: str | None = None
    tags: dict[str, str] | None = None
    model: str | InlineModel | None = None
    code_configuration: CodeConfiguration | None = None
    environment: str | dict[str, Any] | None = None
    environment_variables: dict[str, str] | None = None
    instance_type: str | None = None
    compute: str | None = Field(default=None, max_length=200, description="As it is.")
    instance_count: int | None = Field(default=None, ge=1, le=MAX_INSTANCES)
    request_settings: RequestSettings | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    scale_settings: dict[str, Any] | None = None
    app_insights_enabled: bool | None = None
    data_collector: dict[str, Any] | None = None
    egress_public_network_access: str | None = None


class OnlineDeploymentRead(ResponseBody):
    name: str
    endpoint_name: str
    description: str | None
    tags: dict[str, str]
    model: str | dict[str, Any] | None = Field(
        description="The pinned reference (azureml:<name>:<version>) or the inline model."
    )
    model_type: str | None
    code_configuration: dict[str, Any] | None
    environment: str | None = Field(description="The pinned environment reference.")
    environment_variables: dict[str, str]
    instance_type: str | None
    compute: str | None = Field(
        default=None, description="The Ray compute it runs on as a Serve application; none: local."
    )
    instance_count: int
    request_settings: dict[str, Any]
    data_collector: dict[str, Any] | None = Field(
        default=None,
        description="What is sampled and where it goes: sampling_rate, rolling_rate and each "
        "collection's datastore path (and data asset), as resolved; none: nothing.",
    )
    liveness_probe: dict[str, Any]
    readiness_probe: dict[str, Any]
    provisioning_state: str
    generation: int = Field(description="Grows with every change of the spec.")
    instances: list[dict[str, Any]] = Field(
        default_factory=list, description="Per instance, as the runtime reports it."
    )
    error: str | None = None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class DeploymentLogsRead(ResponseBody):
    text: str
    lines: int
