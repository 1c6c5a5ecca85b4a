"""Workspace bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shipyard.domain.names import WORKSPACE_NAME
from shipyard.schemas.common import RequestBody, ResponseBody

Tags = dict[str, str]


class StorageSpec(RequestBody):
    """Bring your own storage: an existing folder the server allows (settings.storage_roots)."""

    uri: str = Field(min_length=1, max_length=2048)


class WorkspaceCreate(RequestBody):
    name: str = Field(pattern=WORKSPACE_NAME.pattern)
    display_name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=8192)
    tags: Tags = Field(default_factory=dict)
    storage: StorageSpec | None = None
    environment_registry: Literal["shared", "dedicated"] = "shared"


class WorkspaceUpdate(RequestBody):
    """Only the fields sent are changed; ``tags`` replaces the whole map."""

    display_name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=8192)
    tags: Tags | None = None


class StorageRead(ResponseBody):
    uri: str
    prefix: str
    managed: bool
    default_datastore: str = Field(
        description="The workspace's default datastore (where uploads of local data go): "
        "workspaceblobstore, its own storage, unless another datastore was made the default."
    )


class KeyVaultRead(ResponseBody):
    id: str


class EnvironmentRegistryRead(ResponseBody):
    name: str
    shared: bool


class MonitoringRead(ResponseBody):
    type: str


class WorkspaceRead(ResponseBody):
    id: str
    name: str
    display_name: str | None = None
    description: str | None = None
    tags: Tags = Field(default_factory=dict)
    created_by: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    storage: StorageRead
    key_vault: KeyVaultRead
    environment_registry: EnvironmentRegistryRead
    monitoring: MonitoringRead
    mlflow_tracking_uri: str | None = None
