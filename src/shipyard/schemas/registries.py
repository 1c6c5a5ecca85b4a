"""Registry bodies.

Azure's registry YAML also has ``location`` and ``replication_locations`` (regions to copy
assets to). A Shipyard server has no regions, so the REST API refuses those fields as unknown
(a 400 naming them); the CLI drops them from a file with a note, so an Azure ``registry.yml``
works unchanged there (see docs/registries.md).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from shipyard.domain.names import WORKSPACE_NAME
from shipyard.schemas.common import RequestBody, ResponseBody

Tags = dict[str, str]
# Registries are named like workspaces: they appear in URLs and in azureml://registries/ URIs.
REGISTRY_NAME = WORKSPACE_NAME


class RegistryCreate(RequestBody):
    name: str = Field(pattern=REGISTRY_NAME.pattern)
    description: str | None = Field(default=None, max_length=8192)
    tags: Tags = Field(default_factory=dict)


class RegistryUpdate(RequestBody):
    """Only the fields sent are changed; ``tags`` replaces the whole map (null clears it)."""

    description: str | None = Field(default=None, max_length=8192)
    tags: Tags | None = None


class RegistryRead(ResponseBody):
    id: str
    name: str
    description: str | None = None
    tags: Tags = Field(default_factory=dict)
    created_by: str
    created_at: datetime
    updated_at: datetime
