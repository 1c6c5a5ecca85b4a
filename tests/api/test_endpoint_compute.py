"""An online endpoint's (or deployment's) ``compute``: what is accepted, shown and refused.

No Ray cluster here (the compute is created without asking it, and this server runs no
deployments); tests/compute/test_serve_ray.py runs deployments on a real one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer, start_server, unique

ENV = "azureml:shipyard-minimal@latest"
SCORE = "def init():\n    pass\n\n\ndef run(raw):\n    return 1\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, module_database_url: str) -> Iterator[Any]:
    data = tmp_path_factory.mktemp("data")
    with start_server(data, module_database_url, jobs_enabled=False) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def setup(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A workspace with a Ray compute (nothing answers at its address), a model, code."""
    root = tmp_path_factory.mktemp("files")
    (root / "model").mkdir()
    (root / "model" / "weights.txt").write_text("1\n")
    (root / "src").mkdir()
    (root / "src" / "score.py").write_text(SCORE)
    with server.client() as sdk:
        ws = unique("ws")
        sdk.workspaces.create(ws)
        handle = sdk.workspace(ws)
        handle.computes.create("ray", address="http://127.0.0.1:9", skip_validation=True)
        handle.models.create("m", root / "model")
        yield {"ws": ws, "root": root, "handle": handle, "sdk": sdk}


def _endpoints(setup: dict[str, Any]) -> str:
    return f"/api/v1/workspaces/{setup['ws']}/onlineEndpoints"


def _problem(response: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    return body


def _deploy(setup: dict[str, Any], endpoint: str, name: str, **fields: Any) -> Any:
    spec = {
        "name": name,
        "endpoint_name": endpoint,
        "model": "azureml:m:1",
        "code_configuration": {"code": "./src", "scoring_script": "score.py"},
        "environment": ENV,
        **fields,
    }
    return setup["handle"].online_deployments.create(spec, base_dir=setup["root"])


def test_an_endpoint_on_a_ray_compute_shows_it_and_its_deployments_run_there(
    http: httpx.Client, setup: dict[str, Any]
) -> None:
    name = unique("ep")
    made = http.post(_endpoints(setup), json={"name": name, "compute": "azureml:ray"})
    assert made.status_code == 201, made.text
    assert made.json()["compute"] == "ray"
    assert http.get(f"{_endpoints(setup)}/{name}").json()["compute"] == "ray"
    # The endpoint's compute by default; a deployment may name its own (local here).
    assert _deploy(setup, name, "blue").compute == "ray"
    assert _deploy(setup, name, "green", compute="local").compute is None
    # Naming the same compute again is no change.
    same = http.patch(f"{_endpoints(setup)}/{name}", json={"compute": "ray"})
    assert same.status_code == 200, same.text


def test_an_endpoint_without_compute_is_local(http: httpx.Client, setup: dict[str, Any]) -> None:
    name = unique("ep")
    made = http.post(_endpoints(setup), json={"name": name})
    assert made.status_code == 201, made.text
    assert made.json()["compute"] is None
    local = http.post(_endpoints(setup), json={"name": unique("ep"), "compute": "local"})
    assert local.json()["compute"] is None
    assert _deploy(setup, name, "blue", compute="azureml:ray").compute == "ray"


@pytest.mark.parametrize("compute", ["azureml:nope", "nope", "azureml:../x", "azureml:ray:1"])
def test_an_unknown_compute_is_a_400_naming_it(
    http: httpx.Client, setup: dict[str, Any], compute: str
) -> None:
    refused = http.post(_endpoints(setup), json={"name": unique("ep"), "compute": compute})
    assert _problem(refused, 400, "compute")["code"] == "compute_not_found"
    endpoint = unique("ep")
    assert http.post(_endpoints(setup), json={"name": endpoint}).status_code == 201
    body = setup["handle"].online_deployments.prepare(
        {
            "name": "blue",
            "model": "azureml:m:1",
            "code_configuration": {"code": "./src", "scoring_script": "score.py"},
            "environment": ENV,
            "compute": compute,
        },
        endpoint,
        base_dir=setup["root"],
    )
    deployment = http.post(f"{_endpoints(setup)}/{endpoint}/deployments", json=body)
    _problem(deployment, 400, "compute")


def test_the_compute_cannot_change(http: httpx.Client, setup: dict[str, Any]) -> None:
    name = unique("ep")
    assert http.post(_endpoints(setup), json={"name": name, "compute": "ray"}).status_code == 201
    moved = http.patch(f"{_endpoints(setup)}/{name}", json={"compute": "local"})
    assert _problem(moved, 409, "compute")["code"] == "compute_immutable"
    _deploy(setup, name, "blue")
    path = f"{_endpoints(setup)}/{name}/deployments/blue"
    changed = http.patch(path, json={"compute": "local"})
    assert _problem(changed, 409, "compute")["code"] == "compute_immutable"
    assert http.get(path).json()["compute"] == "ray"
    # Another field changes as usual.
    assert http.patch(path, json={"instance_count": 2}).status_code == 200
