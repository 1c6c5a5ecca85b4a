"""``ws.batch_endpoints`` and ``ws.batch_deployments``: score data as jobs
(docs/batch-endpoints.md).

Both take Azure ML's YAML shapes (``batchEndpoint``, ``modelBatchDeployment``,
``pipelineComponentBatchDeployment``) as a file or a mapping. A deployment's local parts are
dealt with as an online deployment's are (its code folder uploaded, a local model folder
registered); ``invoke`` uploads a local input folder or file first, as a job's local inputs.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shipyard.domain.batch_endpoints import DATA_INPUT, input_type_of
from shipyard.domain.endpoints import check_deployment_name, check_endpoint_name
from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.batch_endpoints import BatchDeploymentRead, BatchEndpointRead
from shipyard.schemas.jobs import JobRead
from shipyard.sdk.endpoints import OnlineDeploymentOperations
from shipyard.sdk.http import HttpSession
from shipyard.sdk.jobs import Input, JobSubmissions
from shipyard.sdk.models import ModelOperations
from shipyard.sdk.uploads import UploadProgress
from shipyard.sdk.yaml import load_yaml_file

BatchEndpoint = BatchEndpointRead
BatchDeployment = BatchDeploymentRead
_FILE_ONLY = ("$schema",)


def _root(workspace: str) -> str:
    return f"/api/v1/workspaces/{quote(workspace, safe='')}/batchEndpoints"


def _spec(
    source: str | Path | Mapping[str, Any], base_dir: Path | None = None
) -> tuple[dict[str, Any], Path | None]:
    if isinstance(source, Mapping):
        return dict(source), base_dir
    path = Path(source)
    return dict(load_yaml_file(path).data), path.resolve().parent


class BatchEndpointOperations:
    """Create, read, change and delete batch endpoints; invoke them.

    Example::

        ws.batch_endpoints.create({"name": "churn-batch"})
        ws.batch_deployments.create("deployment.yml")
        job = ws.batch_endpoints.invoke("churn-batch", input="./data")
        ws.jobs.stream(job.name)
    """

    def __init__(self, http: HttpSession, workspace: str, jobs: JobSubmissions) -> None:
        self._http = http
        self._root = _root(workspace)
        self._jobs = jobs

    def _path(self, name: str) -> str:
        check_endpoint_name(name)
        return f"{self._root}/{quote(name, safe='')}"

    def create(self, endpoint: str | Path | Mapping[str, Any]) -> BatchEndpoint:
        """From a YAML file or a mapping shaped like Azure's batch endpoint YAML."""
        spec, _ = _spec(endpoint)
        body = {k: v for k, v in spec.items() if k not in _FILE_ONLY}
        return self._http.send_model("POST", self._root, BatchEndpoint, body)

    def get(self, name: str) -> BatchEndpoint:
        return self._http.get_model(self._path(name), BatchEndpoint)

    def list(self, *, page_size: int | None = None) -> Iterator[BatchEndpoint]:
        return self._http.iterate(self._root, BatchEndpoint, {"max_results": page_size})

    def update(
        self,
        name: str,
        *,
        default_deployment: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> BatchEndpoint:
        """Change only what is given."""
        changes: dict[str, Any] = {}
        if default_deployment is not None:
            changes["defaults"] = {"deployment_name": default_deployment}
        if description is not None:
            changes["description"] = description
        if tags is not None:
            changes["tags"] = dict(tags)
        return self.update_from_spec(name, changes)

    def update_from_spec(self, name: str, changes: Mapping[str, Any]) -> BatchEndpoint:
        body = {k: v for k, v in changes.items() if k not in _FILE_ONLY}
        return self._http.send_model("PATCH", self._path(name), BatchEndpoint, body)

    def delete(self, name: str) -> None:
        """The endpoint and its deployments (the jobs it started stay)."""
        self._http.request("DELETE", self._path(name))

    def invoke(
        self,
        endpoint_name: str,
        *,
        deployment_name: str | None = None,
        input: str | Input | None = None,  # Azure's name for it
        input_type: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        experiment_name: str | None = None,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> JobRead:
        """Start a scoring job of the deployment (the endpoint's default when None) and
        return it. ``input``: a local folder or file (uploaded first), a datastore URI or a
        data asset (``azureml:name@latest``); ``inputs``: named inputs (a pipeline
        deployment's), each an ``Input`` or a ``{type, path}`` mapping (data) or a literal.

        >>> job = ws.batch_endpoints.invoke("churn-batch", input="./data")
        >>> ws.jobs.stream(job.name)
        """
        if (input is None) == (inputs is None):
            raise InvalidInputError(
                "give input or inputs (one of them)", code="missing_field", field="inputs"
            )
        given: dict[str, Any] = {}
        if input is not None:
            given[DATA_INPUT] = _as_input(input, input_type)
        else:
            assert inputs is not None
            given = {k: _as_named_input(v) for k, v in inputs.items()}
        prepared = self._jobs.prepare({"inputs": given}, base_dir=base_dir, progress=progress)
        body: dict[str, Any] = {"inputs": prepared["inputs"]}
        if deployment_name is not None:
            body["deployment_name"] = check_deployment_name(deployment_name)
        if experiment_name is not None:
            body["experiment_name"] = experiment_name
        return self._http.send_model("POST", self._path(endpoint_name) + "/jobs", JobRead, body)

    def list_jobs(self, endpoint_name: str, *, max_results: int = 100) -> builtins.list[JobRead]:
        """The jobs invoking the endpoint started, newest first."""
        response = self._http.request(
            "GET", self._path(endpoint_name) + "/jobs", params={"max_results": max_results}
        )
        return [JobRead.model_validate(item) for item in response.json()]

    def __repr__(self) -> str:
        return f"BatchEndpointOperations({self._root!r})"


def _as_input(value: str | Input, input_type: str | None) -> dict[str, Any]:
    if isinstance(value, Input):
        return value.to_dict()
    return {"type": input_type_of(input_type), "path": value}


def _as_named_input(value: Any) -> Any:
    """An ``Input`` or a ``{type, path}`` mapping is data; anything else a literal."""
    if isinstance(value, Input):
        return value.to_dict()
    if isinstance(value, Mapping):
        return dict(value)
    return value


class BatchDeploymentOperations:
    """Create, read, change and delete the deployments of batch endpoints.

    Example::

        ws.batch_deployments.create(
            {
                "name": "main",
                "endpoint_name": "churn-batch",
                "model": "azureml:churn@latest",
                "code_configuration": {"code": "./src", "scoring_script": "batch_score.py"},
                "environment": "azureml:shipyard-sklearn@latest",
                "settings": {"mini_batch_size": 5},
            },
            set_default=True,
        )
    """

    def __init__(self, http: HttpSession, workspace: str, models: ModelOperations) -> None:
        self._http = http
        self._root = _root(workspace)
        # The same local parts as an online deployment's: one way to upload them.
        self._local = OnlineDeploymentOperations(http, workspace, models)

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
        set_default: bool = False,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> BatchDeployment:
        """From a YAML file or a mapping shaped like Azure's batch deployment YAML;
        ``set_default``: the endpoint's default from now on (its first deployment is)."""
        spec, base_dir = _spec(deployment, base_dir)
        endpoint = _endpoint_name(spec, endpoint_name)
        body = self._local.prepare(spec, endpoint, base_dir=base_dir, progress=progress)
        response = self._http.request(
            "POST",
            self._base(endpoint),
            json=body,
            params={"set_default": "true"} if set_default else None,
        )
        return BatchDeployment.model_validate(response.json())

    def update(
        self,
        deployment: str | Path | Mapping[str, Any],
        *,
        endpoint_name: str | None = None,
        set_default: bool = False,
        base_dir: Path | None = None,
        progress: UploadProgress | None = None,
    ) -> BatchDeployment:
        """Replace the fields given (a whole YAML file, or e.g. ``{"name": "main",
        "settings": {"mini_batch_size": 20}}``)."""
        spec, base_dir = _spec(deployment, base_dir)
        endpoint = _endpoint_name(spec, endpoint_name)
        name = spec.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidInputError("a name is required", code="missing_field", field="name")
        body = self._local.prepare(spec, endpoint, base_dir=base_dir, progress=progress)
        response = self._http.request(
            "PATCH",
            self._path(name, endpoint),
            json=body,
            params={"set_default": "true"} if set_default else None,
        )
        return BatchDeployment.model_validate(response.json())

    def get(self, name: str, endpoint_name: str) -> BatchDeployment:
        return self._http.get_model(self._path(name, endpoint_name), BatchDeployment)

    def list(
        self, endpoint_name: str, *, page_size: int | None = None
    ) -> Iterator[BatchDeployment]:
        return self._http.iterate(
            self._base(endpoint_name), BatchDeployment, {"max_results": page_size}
        )

    def delete(self, name: str, endpoint_name: str) -> None:
        """Refused for the default while the endpoint has other deployments."""
        self._http.request("DELETE", self._path(name, endpoint_name))

    def __repr__(self) -> str:
        return f"BatchDeploymentOperations({self._root!r})"


def _endpoint_name(spec: Mapping[str, Any], given: str | None) -> str:
    found = given or spec.get("endpoint_name")
    if not isinstance(found, str) or not found:
        raise InvalidInputError(
            "endpoint_name is required (in the file or as an argument)",
            code="missing_field",
            field="endpoint_name",
        )
    return found


__all__: builtins.list[str] = [
    "BatchDeployment",
    "BatchDeploymentOperations",
    "BatchEndpoint",
    "BatchEndpointOperations",
]
