"""Environments over real HTTP: versions, latest, archive, curated environments, builds
(real uv builds of small packages), the bad input every field can carry, and how jobs
resolve references (Azure's curated names, registry URIs, inline specs)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.api.app import build_services
from shipyard.domain.environments import ANONYMOUS_NAME
from shipyard.domain.errors import ForbiddenError, InvalidInputError, NotFoundError
from shipyard.domain.principals import Principal
from shipyard.services.environments import Environments
from shipyard.store import users as user_store
from tests.conftest import RunningServer, start_server, unique


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    """A server without a container engine (tests/compute/test_containers.py has one)."""
    with start_server(
        tmp_path_factory.mktemp("data"), module_database_url, container_engine="none"
    ) as running:
        yield running


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=120) as client:
        yield client


@pytest.fixture
def ws(http: httpx.Client) -> str:
    name = unique()
    assert http.post("/api/v1/workspaces", json={"name": name}).status_code == 201
    return name


@pytest.fixture(scope="module")
def environments(server: RunningServer) -> Environments:
    """The service the job path calls, on the server's own database and data folder."""
    return build_services(server.settings, server.db).environments


@pytest.fixture(scope="module")
def admin_principal(server: RunningServer) -> Principal:
    with server.db.read() as session:
        admin = user_store.find_admin(session)
        assert admin is not None
        return Principal(admin.id, admin.name, is_admin=True)


def url(ws: str, rest: str = "") -> str:
    return f"/api/v1/workspaces/{ws}/environments{rest}"


def create(http: httpx.Client, ws: str, name: str, **body: Any) -> httpx.Response:
    return http.post(url(ws, f"/{name}/versions"), json=body)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


# -- versions -------------------------------------------------------------------------------


def test_versions_number_themselves_and_latest_is_the_newest(http: httpx.Client, ws: str) -> None:
    first = create(http, ws, "train", pip_requirements=["Six == 1.17.0", "packaging"])
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["name"], body["version"]) == ("train", "1")
    assert body["pip_requirements"] == ["packaging", "six==1.17.0"]
    assert body["build_status"] == "not_built"
    assert len(body["spec_hash"]) == 64
    assert body["curated"] is False
    assert body["created_by"] == "admin"

    second = create(http, ws, "train", python="3.11", description="pinned", tags={"t": "1"})
    assert second.json()["version"] == "2"
    assert create(http, ws, "train", version="v3", pip_requirements=[]).status_code == 201
    latest = http.get(url(ws, "/train/versions/latest")).json()
    assert latest["version"] == "v3"
    versions = http.get(url(ws, "/train/versions")).json()["items"]
    assert [v["version"] for v in versions] == ["v3", "2", "1"]

    again = problem(create(http, ws, "train", version="2"), 409)
    assert (again["code"], again["field"]) == ("environment_version_exists", "version")
    bad = problem(create(http, ws, "train", version="latest"), 400)
    assert bad["field"] == "version"

    changed = http.patch(url(ws, "/train/versions/2"), json={"description": "d", "tags": {}})
    assert changed.status_code == 200
    assert (changed.json()["description"], changed.json()["tags"]) == ("d", {})

    assert http.post(url(ws, "/train/versions/v3/archive")).status_code == 204
    assert http.get(url(ws, "/train/versions/latest")).json()["version"] == "2"
    assert http.get(url(ws, "/train/versions/v3")).json()["archived"] is True
    listed = http.get(url(ws, "/train/versions")).json()["items"]
    assert [v["version"] for v in listed] == ["2", "1"]
    assert http.post(url(ws, "/train/versions/v3/restore")).status_code == 204
    assert http.post(url(ws, "/train/archive")).status_code == 204
    assert "train" not in [e["name"] for e in http.get(url(ws)).json()["items"]]
    assert http.post(url(ws, "/train/restore")).status_code == 204


def test_a_conda_file_is_read_for_python_and_pip(http: httpx.Client, ws: str) -> None:
    conda = {
        "name": "train",
        "channels": ["conda-forge"],
        "dependencies": ["python=3.11", "pip", {"pip": ["scikit-learn==1.5.2", "pandas"]}],
    }
    made = create(http, ws, "conda-env", conda_file=conda, os_type="linux")
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["python"] == "3.11"
    assert body["pip_requirements"] == ["pandas", "scikit-learn==1.5.2"]
    assert body["conda_file"] == conda  # as given


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        (
            {"pip_requirements": ["six", "--index-url http://evil.example/simple"]},
            "pip_requirements.1",
            "requirement_refused",
        ),
        ({"pip_requirements": ["-r /etc/passwd"]}, "pip_requirements.0", "requirement_refused"),
        (
            {"pip_requirements": ["git+https://github.com/example/x.git"]},
            "pip_requirements.0",
            "requirement_refused",
        ),
        (
            {"pip_requirements": ["x @ https://evil.example/x.whl"]},
            "pip_requirements.0",
            "requirement_refused",
        ),
        ({"pip_requirements": ["./local"]}, "pip_requirements.0", "requirement_refused"),
        (
            {"pip_requirements": ["six\n-r /etc/passwd"]},
            "pip_requirements.0",
            "invalid_requirement",
        ),
        (
            {"conda_file": {"dependencies": ["python=3.11", "numpy"]}},
            "conda_file.dependencies.1",
            "conda_package_refused",
        ),
        (
            {"conda_file": {"dependencies": [{"pip": ["-e ."]}]}},
            "conda_file.dependencies.0.pip.0",
            "requirement_refused",
        ),
        ({"python": "2.7"}, "python", "invalid_python"),
        ({"os_type": "windows"}, "os_type", "invalid_os_type"),
        ({"image": "python:3.11", "build": {"path": "ctx"}}, "build", "invalid_environment"),
        ({"pip_requirements": [], "conda_file": {}}, "pip_requirements", "invalid_environment"),
        ({"pip_requirements": "six"}, "pip_requirements", "invalid_field"),
        ({"channels": ["conda-forge"]}, "channels", "unknown_field"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(
    http: httpx.Client, ws: str, body: dict[str, Any], field: str, code: str
) -> None:
    found = problem(create(http, ws, "bad", **body), 400)
    assert (found["field"], found["code"]) == (field, code), found


def test_names_are_checked_and_curated_names_are_reserved(http: httpx.Client, ws: str) -> None:
    for name in ("shipyard-sklearn", "AzureML-sklearn-1.5", "azureml-mine"):
        found = problem(create(http, ws, name, pip_requirements=[]), 409)
        assert (found["code"], found["field"]) == ("environment_name_reserved", "name")
    assert problem(create(http, ws, "-bad", pip_requirements=[]), 400)["field"] == "name"
    missing = problem(http.get(url(ws, "/nope/versions/1")), 404)
    assert (missing["code"], missing["field"]) == ("environment_not_found", "name")
    no_version = problem(http.get(url(ws, "/shipyard-minimal/versions/7")), 404)
    assert no_version["code"] == "environment_version_not_found"
    gone = problem(http.get(url("no-such-ws")), 404)
    assert gone["code"] == "workspace_not_found"


def test_curated_environments_are_in_every_workspace_and_cannot_change(
    http: httpx.Client, ws: str
) -> None:
    create(http, ws, "alpha", pip_requirements=[])
    create(http, ws, "zulu", pip_requirements=[])
    listed = http.get(url(ws)).json()["items"]
    assert [e["name"] for e in listed] == ["alpha", "shipyard-minimal", "shipyard-sklearn", "zulu"]
    assert [e["curated"] for e in listed] == [False, True, True, False]
    # Paged one at a time, the curated ones come where their names sort.
    names, token = [], None
    while True:
        params = {"max_results": 1, **({"page_token": token} if token else {})}
        page = http.get(url(ws), params=params).json()
        names += [e["name"] for e in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert names == ["alpha", "shipyard-minimal", "shipyard-sklearn", "zulu"]

    sklearn = http.get(url(ws, "/shipyard-sklearn/versions/latest")).json()
    assert sklearn["curated"] is True
    assert sklearn["version"] == "1"
    assert any(line.startswith("scikit-learn==") for line in sklearn["pip_requirements"])
    assert [
        v["version"] for v in http.get(url(ws, "/shipyard-sklearn/versions")).json()["items"]
    ] == ["1"]
    for method, path, body in (
        ("PATCH", "/shipyard-sklearn/versions/1", {"description": "mine"}),
        ("POST", "/shipyard-sklearn/versions/1/archive", None),
        ("POST", "/shipyard-sklearn/archive", None),
    ):
        found = problem(http.request(method, url(ws, path), json=body), 409)
        assert found["code"] == "curated_environment"


# -- builds ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_build_now_then_a_cache_hit_and_the_build_log(http: httpx.Client, ws: str) -> None:
    made = create(http, ws, "six", pip_requirements=["six==1.17.0"]).json()
    before = http.get(url(ws, "/six/versions/1/build")).json()
    assert before["status"] == "not_built"
    assert before["spec_hash"] == made["spec_hash"]

    built = http.post(url(ws, "/six/versions/1/build"))
    assert built.status_code == 200, built.text
    body = built.json()
    assert (body["status"], body["cached"]) == ("ready", False)
    assert "six==1.17.0" in body["log"]
    assert body["size"] > 0
    again = http.post(url(ws, "/six/versions/latest/build")).json()
    assert (again["status"], again["cached"]) == ("ready", True)
    shown = http.get(url(ws, "/six/versions/1/build")).json()
    assert shown["status"] == "ready"
    assert shown["cached"] is None
    assert "$ uv venv" in shown["log"]
    assert http.get(url(ws, "/six/versions/1")).json()["build_status"] == "ready"

    # The same spec in another workspace is the same build: shared by every workspace.
    other = unique()
    http.post("/api/v1/workspaces", json={"name": other})
    create(http, other, "mine", pip_requirements=["six == 1.17.0"])
    assert http.post(url(other, "/mine/versions/1/build")).json()["cached"] is True


@pytest.mark.slow
def test_a_failed_build_answers_failed_with_its_log(http: httpx.Client, ws: str) -> None:
    create(http, ws, "broken", pip_requirements=["shipyard-no-such-package-77f1==1.0"])
    built = http.post(url(ws, "/broken/versions/1/build"))
    assert built.status_code == 200, built.text
    body = built.json()
    assert (body["status"], body["cached"]) == ("failed", False)
    assert "shipyard-no-such-package-77f1" in body["error"]
    assert "shipyard-no-such-package-77f1" in body["log"]
    assert http.get(url(ws, "/broken/versions/1/build")).json()["status"] == "failed"

    create(http, ws, "old-python", python="3.4")
    missing = http.post(url(ws, "/old-python/versions/1/build")).json()
    assert missing["status"] == "failed"
    assert "Python 3.4 is not on this machine" in missing["error"]


def test_image_environments_are_stored_but_not_built_without_an_engine(
    http: httpx.Client, ws: str
) -> None:
    made = create(http, ws, "img", image="mcr.microsoft.com/azureml/minimal-ubuntu22.04:latest")
    assert made.status_code == 201, made.text
    assert made.json()["image"].startswith("mcr.microsoft.com/")
    found = problem(http.post(url(ws, "/img/versions/1/build")), 400)
    assert found["field"] == "image"
    assert found["code"] == "docker_unavailable"


@pytest.mark.slow
def test_the_curated_minimal_environment_logs_to_mlflow_from_a_job_process(
    http: httpx.Client, ws: str, server: RunningServer, tmp_path: Path
) -> None:
    built = http.post(url(ws, "/shipyard-minimal/versions/1/build"))
    assert built.json()["status"] == "ready", built.text
    digest = built.json()["spec_hash"]
    bin_dir = server.settings.data_dir / "environments" / digest / "bin"
    run = http.post(f"/api/v1/workspaces/{ws}/runs", json={}).json()["id"]
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "MLFLOW_TRACKING_URI": f"{server.url}/mlflow/workspaces/{ws}",
        "MLFLOW_TRACKING_TOKEN": server.admin_token,
        "MLFLOW_RUN_ID": run,
    }
    script = "import mlflow; mlflow.log_metric('accuracy', 0.93); print(mlflow.__version__)"
    result = subprocess.run(
        ["python", "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # Its console scripts work too, though the venv was built elsewhere and moved.
    version = subprocess.run(
        [str(bin_dir / "mlflow"), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"mlflow, version {result.stdout.splitlines()[0]}"
    metrics = http.get(f"/api/v1/workspaces/{ws}/runs/{run}").json()["metrics"]
    assert metrics["accuracy"]["value"] == pytest.approx(0.93)


def test_pip_options_pass_where_the_admin_allows_them(tmp_path: Path, database_url: str) -> None:
    server = start_server(tmp_path, database_url, environment_allow_pip_options=True)
    with server as running, httpx.Client(base_url=running.url, headers=running.auth) as client:
        name = unique()
        client.post("/api/v1/workspaces", json={"name": name})
        lines = ["--extra-index-url https://pypi.example/simple", "six==1.17.0"]
        made = create(client, name, "opts", pip_requirements=lines)
        assert made.status_code == 201, made.text
        assert made.json()["pip_requirements"] == lines


# -- what jobs resolve ----------------------------------------------------------------------


def test_references_resolve_to_pinned_versions(
    http: httpx.Client, ws: str, environments: Environments, admin_principal: Principal
) -> None:
    create(http, ws, "train", pip_requirements=["six==1.17.0"])
    create(http, ws, "train", pip_requirements=["packaging"])
    for ref, version in (
        ("azureml:train:1", "1"),
        ("shipyard:train:1", "1"),
        ("train:1", "1"),
        ("azureml:train@latest", "2"),
        ("train@latest", "2"),
        ("train", "2"),
    ):
        found = environments.resolve(admin_principal, ws, ref)
        assert (found.name, found.version, found.curated) == ("train", version, False), ref
    pinned = environments.pin(admin_principal, ws, "train@latest")
    assert pinned["ref"] == "azureml:train:2"
    assert pinned["spec"]["pip"] == ["packaging"]
    assert len(pinned["spec_hash"]) == 64

    for ref in (
        "azureml:AzureML-sklearn-1.5@latest",
        "azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu:1",
        "azureml://registries/azureml/environments/sklearn-1.5/labels/latest",
        "azureml://registries/azureml/environments/sklearn-1.5/versions/21",
        "shipyard-sklearn@latest",
    ):
        found = environments.resolve(admin_principal, ws, ref)
        assert (found.name, found.version, found.curated) == ("shipyard-sklearn", "1", True), ref
    minimal = environments.resolve(admin_principal, ws, "azureml:AzureML-minimal-ubuntu22.04:3")
    assert minimal.name == "shipyard-minimal"


@pytest.mark.parametrize(
    ("ref", "error", "field"),
    [
        ("azureml:nope:1", NotFoundError, "environment"),
        ("azureml:train-x@latest", NotFoundError, "environment"),
        ("shipyard-minimal:9", NotFoundError, "environment"),
        ("azureml:AzureML-ACPT-pytorch-2.2-cuda12.1:3", InvalidInputError, "environment"),
        ("azureml://registries/other/environments/x/versions/1", NotFoundError, "environment"),
        ("azureml:nope", NotFoundError, "environment"),
        ("azureml:a:b:c", InvalidInputError, "environment"),
        ({"image": "python:3.11-slim"}, InvalidInputError, "environment.image"),
        (
            {"pip_requirements": ["-r /etc/passwd"]},
            InvalidInputError,
            "environment.pip_requirements.0",
        ),
        (
            {"conda_file": {"dependencies": ["numpy"]}},
            InvalidInputError,
            "environment.conda_file.dependencies.0",
        ),
        ({"requirements": ["six"]}, InvalidInputError, "environment.requirements"),
        (7, InvalidInputError, "environment"),
    ],
)
def test_bad_references_name_the_field(
    ws: str,
    environments: Environments,
    admin_principal: Principal,
    ref: Any,
    error: type[Exception],
    field: str,
) -> None:
    with pytest.raises(error) as caught:
        environments.resolve(admin_principal, ws, ref)
    assert getattr(caught.value, "field", None) == field


def test_a_reference_is_read_with_the_callers_rights(
    http: httpx.Client, ws: str, environments: Environments, server: RunningServer
) -> None:
    create(http, ws, "private", pip_requirements=[])
    name = unique("user")
    made = http.post("/api/v1/users", json={"name": name}).json()
    stranger = Principal(made["id"], name, is_admin=False)
    with pytest.raises((NotFoundError, ForbiddenError)):
        environments.resolve(stranger, ws, "azureml:private:1")


@pytest.mark.slow
def test_inline_environments_register_once_under_the_anonymous_name_and_build(
    http: httpx.Client, ws: str, environments: Environments, admin_principal: Principal
) -> None:
    inline = {"conda_file": {"dependencies": ["python=3.11", {"pip": ["six==1.17.0"]}]}}
    first = environments.resolve(admin_principal, ws, inline)
    again = environments.resolve(admin_principal, ws, dict(inline))
    assert first.name == ANONYMOUS_NAME
    assert first.version == again.version
    assert len(first.version) == 32
    versions = http.get(url(ws, f"/{ANONYMOUS_NAME}/versions")).json()["items"]
    assert [v["version"] for v in versions] == [first.version]

    lines: list[str] = []
    built = environments.ensure_built(first, lines.append)
    assert built.spec_hash == first.spec_hash
    assert built.python.is_file()
    bin_dir = environments.prepare(first.pinned(), lines.append).bin_dir
    assert bin_dir == built.bin_dir
    assert lines[-1].endswith("(cached)")
    result = subprocess.run(
        [str(bin_dir / "python"), "-c", "import six; print(six.__version__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": os.defpath},
    )
    assert result.stdout.strip() == "1.17.0"
