"""``ws.online_endpoints`` and ``ws.online_deployments``: scoring URLs and what runs behind
them (docs/endpoints.md).

Both take Azure ML's YAML shapes (``managedOnlineEndpoint``, ``managedOnlineDeployment``) as a
file or a mapping. A deployment's local parts are dealt with here before it is sent: the
``code_configuration.code`` folder is uploaded as a code snapshot (only what the workspace
lacks), an inline environment's local conda or requirements file is read, and an inline model
with a local ``path`` is registered as model ``<endpoint>-<deployment>`` (a new version), so its
files outlive the upload and the deployment names a model version.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.domain.asset_uris import LocalPath, parse_asset_path
from shipyard.domain.endpoints import (
    check_deployment_name,
    check_endpoint_name,
    parse_assignments,
)
from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.endpoint_metrics import DeploymentMetricsRead, EndpointMetricsRead
from shipyard.schemas.endpoints import (
    DeploymentLogsRead,
    EndpointKeysRead,
    EndpointTokenRead,
    OnlineDeploymentRead,
    OnlineEndpointRead,
)
from shipyard.sdk.code import upload_code
from shipyard.sdk.environments import read_local_parts
from shipyard.sdk.http import HttpSession
from shipyard.sdk.models import ModelOperations
from shipyard.sdk.uploads import ContentUploads, UploadProgress
from shipyard.sdk.yaml import load_yaml_file

OnlineEndpoint = OnlineEndpointRead
OnlineDeployment = OnlineDeploymentRead
EndpointKeys = EndpointKeysRead
EndpointToken = EndpointTokenRead
_FILE_ONLY = ("$schema",)


def _root(workspace: str) -> str:
    return f"/api/v1/workspaces/{quote(workspace, safe='')}/onlineEndpoints"


def _spec(
    source: str | Path | Mapping[str, Any], base_dir: Path | None = None
) -> tuple[dict[str, Any], Path | None]:
    """A mapping (local paths relative to ``base_dir``), or a YAML file's mapping and its
    folder (local paths are relative to it)."""
    if isinstance(source, Mapping):
        return dict(source), base_dir
    path = Path(source)
    return dict(load_yaml_file(path).data), path.resolve().parent


def traffic_of(value: str | Mapping[str, int], field: str = "traffic") -> dict[str, int]:
    """``"blue=90 green=10"`` or a mapping, as a mapping."""
    if isinstance(value, str):
        return parse_assignments(value, field=field)
    return dict(value)


class OnlineEndpointOperations:
    """Create, read, change and delete online endpoints; read and replace their credentials.

    Example::

        ws.online_endpoints.create({"name": "churn", "auth_mode": "key"})
        ws.online_deployments.create("blue.yml", all_traffic=True)
        keys = ws.online_endpoints.get_credentials("churn")
        ws.online_endpoints.update("churn", traffic="blue=90 green=10")
    """

    def __init__(self, http: HttpSession, workspace: str) -> None:
        self._http = http
        self._root = _root(workspace)

    def _path(self, name: str) -> str:
        check_endpoint_name(name)
        return f"{self._root}/{quote(name, safe='')}"

    def create(self, endpoint: str | Path | Mapping[str, Any]) -> OnlineEndpoint:
        """From a YAML file or a mapping shaped like Azure's endpoint YAML."""
        spec, _ = _spec(endpoint)
        body = {k: v for k, v in spec.items() if k not in _FILE_ONLY}
        return self._http.send_model("POST", self._root, OnlineEndpoint, body)

    def get(self, name: str) -> OnlineEndpoint:
        return self._http.get_model(self._path(name), OnlineEndpoint)

    def list(self, *, page_size: int | None = None) -> Iterator[OnlineEndpoint]:
        return self._http.iterate(self._root, OnlineEndpoint, {"max_results": page_size})

    def update(
        self,
        name: str,
        *,
        traffic: str | Mapping[str, int] | None = None,
        mirror_traffic: str | Mapping[str, int] | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        auth_mode: str | None = None,
    ) -> OnlineEndpoint:
        """Change only what is given; ``traffic`` as ``"blue=90 green=10"`` or a mapping."""
        changes: dict[str, Any] = {}
        if traffic is not None:
            changes["traffic"] = traffic_of(traffic)
        if mirror_traffic is not None:
            changes["mirror_traffic"] = traffic_of(mirror_traffic, "mirror_traffic")
        if description is not None:
            changes["description"] = description
        if tags is not None:
            changes["tags"] = dict(tags)
        if auth_mode is not None:
            changes["auth_mode"] = auth_mode
        return self.update_from_spec(name, changes)

    def update_from_spec(self, name: str, changes: Mapping[str, Any]) -> OnlineEndpoint:
        body = {k: v for k, v in changes.items() if k not in _FILE_ONLY}
        return self._http.send_model("PATCH", self._path(name), OnlineEndpoint, body)

    def delete(self, name: str) -> None:
        """The endpoint, its deployments and its keys."""
        self._http.request("DELETE", self._path(name))

    def get_credentials(self, name: str) -> EndpointKeys | EndpointToken:
        """The keys of a ``key`` endpoint; a new short-lived token of an ``aml_token`` one."""
        if self.get(name).auth_mode == "aml_token":
            return self.get_token(name)
        return self.list_keys(name)

    def list_keys(self, name: str) -> EndpointKeys:
        return self._http.send_model("POST", self._path(name) + "/listKeys", EndpointKeys)

    def get_token(self, name: str) -> EndpointToken:
        return self._http.send_model("POST", self._path(name) + "/token", EndpointToken)

    def get_metrics(
        self, name: str, *, since: datetime | None = None, until: datetime | None = None
    ) -> EndpointMetricsRead:
        """Each deployment's per-minute figures and their summary (default: the last hour)."""
        return self._http.get_model(
            self._path(name) + "/metrics", EndpointMetricsRead, params=_range(since, until)
        )

    def regenerate_keys(self, name: str, key_type: str = "primary") -> None:
        """Replace one key; the old one stops working at once."""
        self._http.request("POST", self._path(name) + "/regenerateKeys", json={"keyType": key_type})

    def invoke(
        self,
        name: str,
        *,
        request_file: str | Path | None = None,
        body: str | bytes | Mapping[str, Any] | builtins.list[Any] | None = None,
        deployment_name: str | None = None,
        content_type: str = "application/json",
    ) -> str:
        """Score a request at the endpoint's scoring URL and return the answer's body, with
        the endpoint's key (or a new token for ``aml_token``) as Azure's CLI does.
        ``deployment_name`` bypasses the traffic split. A status of 400 or more raises.

        >>> ws.online_endpoints.invoke("churn", body={"data": [[1, 2]]})
        '[0]'
        """
        if (request_file is None) == (body is None):
            raise InvalidInputError(
                "give request_file or body (one of them)", code="missing_field", field="body"
            )
        if request_file is not None:
            data = Path(request_file).read_bytes()
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        credentials = self.get_credentials(name)
        secret = (
            credentials.primary_key
            if isinstance(credentials, EndpointKeysRead)
            else credentials.access_token
        )
        headers = {"Authorization": f"Bearer {secret}", "Content-Type": content_type}
        if deployment_name is not None:
            headers["azureml-model-deployment"] = deployment_name
        response = self._http.request(
            "POST", self._path(name) + "/score", content=data, headers=headers
        )
        return response.text

    def __repr__(self) -> str:
        return f"OnlineEndpointOperations({self._root!r})"


class OnlineDeploymentOperations:
    """Create, read, change and delete the deployments of online endpoints, and read their
    logs.

    Example::

        ws.online_deployments.create("blue.yml", all_traffic=True)
        print(ws.online_deployments.get("blue", endpoint_name="churn").provisioning_state)
        print(ws.online_deployments.get_logs("blue", endpoint_name="churn", lines=50))
    """

    def __init__(self, http: HttpSession, workspace: str, models: ModelOperations) -> None:
        self._http = http
        self._root = _root(workspace)
        self._models = models
        self._code = ContentUploads(
            http, f"/api/v1/workspaces/{quote(workspace, safe='')}/code/artifacts"
        )

    def _base(self, endpoint_name: str) -> str:
        check_endpoint_name(endpoint_name, field="endpoint_name")
        return f"{self._root}/{quote(endpoint_name, safe='')}/deployments"

    def _path(self, name: str, endpoint_name: str) -> str:
        check_deployment_name(name)
        return f"{self._base(endpoint_name)}/{quote(name, safe='')}"

    def create(
        self,
        deployment: str | Path | Mapping[str, Any],
        *,
        endpoint_name: str | None = None,
        all_traffic: bool = False,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> OnlineDeployment:
        """From a YAML file or a mapping shaped like Azure's deployment YAML;
        ``all_traffic``: the endpoint sends it all its live traffic. A mapping's local paths
        are relative to ``base_dir`` (the working folder when None)."""
        spec, base_dir = _spec(deployment, base_dir)
        endpoint = _endpoint_name(spec, endpoint_name)
        body = self.prepare(spec, endpoint, base_dir=base_dir, progress=progress)
        response = self._http.request(
            "POST",
            self._base(endpoint),
            json=body,
            params={"all_traffic": "true"} if all_traffic else None,
        )
        return OnlineDeployment.model_validate(response.json())

    def update(
        self,
        deployment: str | Path | Mapping[str, Any],
        *,
        endpoint_name: str | None = None,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> OnlineDeployment:
        """Replace the fields given (a whole YAML file, or e.g. ``{"name": "blue",
        "instance_count": 3}``); the instances are replaced one at a time."""
        spec, base_dir = _spec(deployment, base_dir)
        endpoint = _endpoint_name(spec, endpoint_name)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError("a name is required", code="missing_field", field="name")
        body = self.prepare(spec, endpoint, base_dir=base_dir, progress=progress)
        return self._http.send_model("PATCH", self._path(name, endpoint), OnlineDeployment, body)

    def prepare(
        self,
        spec: Mapping[str, Any],
        endpoint_name: str,
        *,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> dict[str, Any]:
        """The spec with its local parts uploaded or read (what ``create`` sends)."""
        body = {k: v for k, v in spec.items() if k not in _FILE_ONLY}
        code = body.get("code_configuration")
        if isinstance(code, Mapping) and isinstance(code.get("code"), str):
            code = dict(code)
            if not str(code["code"]).startswith("sha256:"):
                snapshot = upload_code(self._code, code["code"], base_dir=base_dir)
                code["code"] = snapshot.ref
            body["code_configuration"] = code
        environment = body.get("environment")
        if isinstance(environment, Mapping):
            environment = dict(environment)
            read_local_parts(environment, base_dir, field="environment.")
            body["environment"] = environment
        model = body.get("model")
        if isinstance(model, Mapping) and _is_local(model.get("path")):
            body["model"] = self._register(dict(model), endpoint_name, body, base_dir, progress)
        return body

    def _register(
        self,
        model: dict[str, Any],
        endpoint_name: str,
        body: Mapping[str, Any],
        base_dir: Path | None,
        progress: UploadProgress | None,
    ) -> str:
        name = model.get("name") or f"{endpoint_name}-{body.get('name')}"
        spec = {
            "name": name,
            "path": model["path"],
            "type": model.get("type") or "custom_model",
            "description": model.get("description"),
            "version": model.get("version"),
        }
        registered = self._models.create_from_spec(
            {k: v for k, v in spec.items() if v is not None}, base_dir=base_dir, progress=progress
        )
        return f"azureml:{registered.name}:{registered.version}"

    def get(self, name: str, endpoint_name: str) -> OnlineDeployment:
        return self._http.get_model(self._path(name, endpoint_name), OnlineDeployment)

    def list(
        self, endpoint_name: str, *, page_size: int | None = None
    ) -> Iterator[OnlineDeployment]:
        return self._http.iterate(
            self._base(endpoint_name), OnlineDeployment, {"max_results": page_size}
        )

    def delete(self, name: str, endpoint_name: str) -> None:
        """Refused while the endpoint sends it traffic: set its traffic to 0 first."""
        self._http.request("DELETE", self._path(name, endpoint_name))

    def get_logs(self, name: str, endpoint_name: str, *, lines: int | None = None) -> str:
        """The last ``lines`` lines its instances wrote (100 by default)."""
        params = {"lines": lines} if lines is not None else None
        found = self._http.get_model(
            self._path(name, endpoint_name) + "/logs", DeploymentLogsRead, params=params
        )
        return found.text

    def get_metrics(
        self,
        name: str,
        endpoint_name: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> DeploymentMetricsRead:
        """Its per-minute figures and their summary (default: the last hour)."""
        return self._http.get_model(
            self._path(name, endpoint_name) + "/metrics",
            DeploymentMetricsRead,
            params=_range(since, until),
        )

    def __repr__(self) -> str:
        return f"OnlineDeploymentOperations({self._root!r})"


def _range(since: datetime | None, until: datetime | None) -> dict[str, str]:
    given = {"since": since, "until": until}
    return {key: moment.isoformat() for key, moment in given.items() if moment is not None}


def _endpoint_name(spec: Mapping[str, Any], given: str | None) -> str:
    found = given or spec.get("endpoint_name")
    if not isinstance(found, str) or not found:
        raise InvalidInputError(
            "endpoint_name is required (in the file or as an argument)",
            code="missing_field",
            field="endpoint_name",
        )
    return found


def _is_local(path: Any) -> bool:
    if not isinstance(path, str) or not path:
        return False
    try:
        return isinstance(parse_asset_path(path, field="model.path"), LocalPath)
    except InvalidInputError:
        return False


__all__: builtins.list[str] = [
    "EndpointKeys",
    "EndpointToken",
    "OnlineDeployment",
    "OnlineDeploymentOperations",
    "OnlineEndpoint",
    "OnlineEndpointOperations",
    "traffic_of",
]
