"""``client.registries`` and the ``client.registry(name)`` handle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

from shipyard.schemas.registries import RegistryRead
from shipyard.sdk.http import HttpSession
from shipyard.sdk.registry_components import RegistryComponentOperations

Registry = RegistryRead
_UNSET: Any = object()
COLLECTION = "/api/v1/registries"


def registry_path(name: str) -> str:
    return f"{COLLECTION}/{quote(name, safe='')}"


class RegistryOperations:
    """Create, read, update and delete registries: containers for assets (models,
    components, environments, data) shared by many workspaces.

    Creating one needs ``registries/write`` at global scope; its creator becomes its Owner
    and may then give others roles there (``client.role_assignments.create(...,
    registry=...)``).

    Example::

        shared = client.registries.create("shared-assets", description="Vetted models")
        for r in client.registries.list():
            print(r.name, r.description)
        client.registries.update("shared-assets", tags={"team": "platform"})
        client.registries.delete("shared-assets")
    """

    def __init__(self, http: HttpSession) -> None:
        self._http = http

    def create(
        self, name: str, *, description: str | None = None, tags: dict[str, str] | None = None
    ) -> Registry:
        spec: dict[str, Any] = {"name": name, "description": description, "tags": tags or {}}
        return self.create_from_spec(spec)

    def create_from_spec(self, spec: dict[str, Any]) -> Registry:
        """Create from a mapping shaped like the registry YAML (what the CLI sends, without
        Azure's region fields, which the server refuses)."""
        return self._http.send_model("POST", COLLECTION, Registry, spec)

    def get(self, name: str) -> Registry:
        return self._http.get_model(registry_path(name), Registry)

    def list(self, *, page_size: int | None = None) -> Iterator[Registry]:
        """Every registry you may read, page after page."""
        return self._http.iterate(COLLECTION, Registry, {"max_results": page_size})

    def update(
        self,
        name: str,
        *,
        description: str | None = _UNSET,
        tags: dict[str, str] | None = _UNSET,
    ) -> Registry:
        """Change only the fields given; ``None`` clears a field, ``tags`` replaces all tags."""
        given = {"description": description, "tags": tags}
        return self.update_from_spec(name, {k: v for k, v in given.items() if v is not _UNSET})

    def update_from_spec(self, name: str, changes: dict[str, Any]) -> Registry:
        """Send these changes as they are (what the CLI sends; the server checks the fields)."""
        return self._http.send_model("PATCH", registry_path(name), Registry, changes)

    def delete(self, name: str) -> None:
        """Delete the registry and every role assignment made at it."""
        self._http.request("DELETE", registry_path(name))


class RegistryHandle:
    """One registry and its asset groups (``reg.components``; models and environments
    later)."""

    def __init__(self, http: HttpSession, name: str) -> None:
        self._http = http
        self.name = name
        self.components = RegistryComponentOperations(http, name)

    def get(self) -> Registry:
        return self._http.get_model(registry_path(self.name), Registry)

    def __repr__(self) -> str:
        return f"RegistryHandle(name={self.name!r})"
