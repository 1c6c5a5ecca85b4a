"""Compute target bodies: a Ray cluster by address, or Azure ML's ``amlcompute`` YAML mapped
onto one.

An ``amlcompute`` file loads unchanged: its scale fields (``size``, ``tier``,
``min_instances``, ``max_instances``, ``idle_time_before_scale_down``...) are kept in
``properties`` and shown back, with the Ray autoscaler settings they correspond to
(``autoscaler``). Shipyard does not provision machines: the Ray cluster at ``address`` does,
with its own autoscaler. SSH passwords and keys in such a file are accepted and dropped,
never stored.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from shipyard.schemas.common import RequestBody, ResponseBody

# Like datastore names: they appear in job files (`compute: azureml:gpu-cluster`).
COMPUTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
COMPUTE_TYPES = ("ray", "amlcompute")
# Names a job's `compute:` already means something for.
RESERVED_NAMES = frozenset({"local", "serverless"})
# Azure's other compute types, and why they are refused.
AZURE_TYPES = {
    "computeinstance": "a personal development machine, not a compute target for jobs here",
    "kubernetes": "an attached Kubernetes cluster, which Shipyard cannot run jobs on yet",
    "virtualmachine": "an attached virtual machine, which Shipyard cannot run jobs on",
    "synapsespark": "a Synapse Spark pool, which Shipyard cannot reach",
}
# Azure's amlcompute defaults, applied when the file leaves a field out.
AML_DEFAULTS = {"min_instances": 0, "max_instances": 1, "idle_time_before_scale_down": 120}

NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Field(max_length=8192, pattern=NO_NUL)]
Tags = dict[
    Annotated[str, Field(min_length=1, max_length=256, pattern=NO_NUL)],
    Annotated[str, Field(max_length=4096, pattern=NO_NUL)],
]
CostUnit = Literal["core", "node"]


class ComputeCost(RequestBody):
    """The price the cost report charges: ``rate`` per core-hour (``unit: core``) or per
    node-hour (``unit: node``, one node per instance of a job)."""

    rate: float = Field(default=0.0, ge=0, le=1_000_000)
    unit: CostUnit = "core"


class ComputeCreate(RequestBody):
    """``type: ray`` takes ``address``, the Ray dashboard's address (``http://host:8265``,
    where Ray's job submission API answers). ``type: amlcompute`` is Azure ML's cluster YAML:
    it needs ``address`` too, since Shipyard runs its jobs on that Ray cluster."""

    model_config = ConfigDict(populate_by_name=True)

    schema_: str | None = Field(default=None, alias="$schema")
    name: str = Field(min_length=1, max_length=256)
    type: str = Field(max_length=64)
    description: Text | None = None
    tags: Tags = Field(default_factory=dict, max_length=100)
    address: str | None = Field(
        default=None, max_length=2048, description="The Ray dashboard: http://host:8265."
    )
    cost: ComputeCost = Field(default_factory=ComputeCost)
    # Azure amlcompute fields: kept in `properties`, mapped onto the Ray autoscaler.
    size: str | None = Field(default=None, max_length=256, pattern=NO_NUL)
    tier: Literal["dedicated", "low_priority"] | None = None
    min_instances: int | None = Field(default=None, ge=0, le=100_000)
    max_instances: int | None = Field(default=None, ge=1, le=100_000)
    idle_time_before_scale_down: int | None = Field(
        default=None, ge=0, le=10_000_000, description="Seconds (Azure's unit)."
    )
    location: str | None = Field(default=None, max_length=256, pattern=NO_NUL)
    ssh_public_access_enabled: bool | None = None
    enable_node_public_ip: bool | None = None
    admin_username: str | None = Field(default=None, max_length=256, pattern=NO_NUL)
    # Accepted so an Azure file loads; never stored or shown.
    admin_password: SecretStr | None = Field(default=None, max_length=1024, exclude=True)
    ssh_key_value: SecretStr | None = Field(default=None, max_length=16384, exclude=True)
    network_settings: dict[str, Any] | None = None
    identity: dict[str, Any] | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        lowered = value.lower()
        if lowered == "local":
            raise ValueError(
                "every workspace has the 'local' compute already; create 'ray' or 'amlcompute'"
            )
        if lowered in AZURE_TYPES:
            raise ValueError(
                f"{value!r} is {AZURE_TYPES[lowered]}; compute targets here are type 'ray' "
                "(a Ray cluster by address) or 'amlcompute' (mapped onto a Ray cluster)"
            )
        if lowered not in COMPUTE_TYPES:
            raise ValueError(f"the type must be 'ray' or 'amlcompute', not {value[:64]!r}")
        return lowered

    @model_validator(mode="after")
    def _instances_in_order(self) -> ComputeCreate:
        low = self.min_instances if self.min_instances is not None else 0
        if self.max_instances is not None and self.max_instances < low:
            raise ValueError("max_instances is smaller than min_instances")
        return self


class ComputeCapacity(ResponseBody):
    """What the ``local`` compute hands out to jobs."""

    cpus: float
    memory_mb: int
    gpus: int


class ComputeCostRead(ResponseBody):
    rate: float
    unit: CostUnit


class RayAutoscaler(ResponseBody):
    """The Ray cluster settings an ``amlcompute`` file corresponds to (set them in the Ray
    cluster's own configuration: Shipyard does not provision machines)."""

    min_workers: int
    max_workers: int
    idle_timeout_minutes: float


class ComputeRead(ResponseBody):
    name: str
    type: Literal["local", "ray"]
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    address: str | None = None
    cost: ComputeCostRead
    capacity: ComputeCapacity | None = Field(default=None, description="local only")
    properties: dict[str, Any] = Field(
        default_factory=dict, description="What the file said beyond the above (amlcompute)."
    )
    autoscaler: RayAutoscaler | None = None
    created_by: str | None = None
    created_at: datetime | None = None
