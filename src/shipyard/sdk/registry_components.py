"""``client.registry("r").components``: command components shared by every workspace.

The same operations as ``ws.components``, against a registry (Azure ML's
``MLClient(registry_name=...).components``)::

    shared = client.registry("shared-assets").components
    shared.create("components/train.yml", code_workspace="churn")  # code goes through churn
    shared.get("train", label="latest").id  # azureml://registries/shared-assets/...
    train = shared.load("train@latest")  # a step maker for the pipeline DSL

A component's local ``code`` folder is uploaded to ``code_workspace`` (by content, as for a
job), and the server copies the snapshot into the registry: the registry keeps its own copy,
and every workspace can run it. Its environment must be inline or curated.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.domain.errors import InvalidInputError
from shipyard.sdk.code import localize_component
from shipyard.sdk.components import CommandComponent, Component, ComponentOperations
from shipyard.sdk.environments import read_local_parts
from shipyard.sdk.http import HttpSession
from shipyard.sdk.uploads import ContentUploads, UploadProgress


class RegistryComponentOperations(ComponentOperations):
    """Register, read, archive and delete a registry's components.

    Example::

        shared = client.registry("shared-assets").components
        shared.create("train.yml", code_workspace="churn")
        for version in shared.list("train"):
            print(version.id, version.definition_hash)
        shared.delete("train", "1")
    """

    def __init__(self, http: HttpSession, registry: str, code_workspace: str | None = None) -> None:
        # Not the workspace group's __init__: every path here is the registry's.
        self._http = http
        self.registry = registry
        self.code_workspace = code_workspace
        self._root = f"/api/v1/registries/{quote(registry, safe='')}/components"

    def _through(self, code_workspace: str | None) -> RegistryComponentOperations:
        if code_workspace is None or code_workspace == self.code_workspace:
            return self
        return RegistryComponentOperations(self._http, self.registry, code_workspace)

    def create(
        self,
        component: str | Path | CommandComponent | Mapping[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
        code_workspace: str | None = None,
    ) -> Component:
        """As ``ws.components.create``; ``code_workspace``: the workspace a local code folder
        is uploaded through (needed when the component has code)."""
        ops = self._through(code_workspace)
        if ops is not self:
            return ops.create(component, base_dir=base_dir, progress=progress)
        return super().create(component, base_dir=base_dir, progress=progress)

    def create_from_spec(
        self,
        spec: Mapping[str, Any],
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
        code_workspace: str | None = None,
    ) -> Component:
        ops = self._through(code_workspace)
        if ops is not self:
            return ops.create_from_spec(spec, base_dir=base_dir, progress=progress)
        body = dict(spec)
        name = body.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError("a name is required", code="missing_field", field="name")
        if body.get("version") in (None, ""):
            body.pop("version", None)
        elif isinstance(body["version"], int) and not isinstance(body["version"], bool):
            body["version"] = str(body["version"])
        if body.get("type") == "pipeline":
            raise InvalidInputError(
                "a registry holds command components only, for now",
                code="unsupported_component_type",
                field="type",
            )
        code = body.get("code")
        local_code = isinstance(code, str) and not code.startswith("sha256:")
        if self.code_workspace is not None:
            uploads = ContentUploads(
                self._http,
                f"/api/v1/workspaces/{quote(self.code_workspace, safe='')}/code/artifacts",
            )
            localize_component(uploads, body, base_dir=base_dir, progress=progress)
            body["code_workspace"] = self.code_workspace
        elif local_code or body.get("additional_includes"):
            raise InvalidInputError(
                "the component has a local code folder: give code_workspace (the CLI: -w), "
                "the workspace it is uploaded through before the registry copies it",
                code="missing_field",
                field="code_workspace",
            )
        elif isinstance(body.get("environment"), dict):
            environment = dict(body["environment"])
            read_local_parts(environment, base_dir, field="environment.")
            body["environment"] = environment
        return self._http.send_model("POST", self._component(name) + "/versions", Component, body)

    def delete(self, name: str, version: str | None = None) -> None:
        """Delete a version, or with no version the whole component (a registry is deleted
        only once it holds none). Pipelines submitted before keep what they pinned."""
        target = self._version(name, version, None) if version else self._component(name)
        self._http.request("DELETE", target)

    def __repr__(self) -> str:
        return f"RegistryComponentOperations({self.registry!r})"


__all__ = ["RegistryComponentOperations"]
