"""Online endpoints end to end: deployments run as real instance processes in real
environments (built with uv, shared across test runs), scored through the real gateway with
the endpoint's keys."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shipyard.api.deps import Services
from shipyard.domain.errors import InvalidInputError, NotFoundError, ShipyardError
from shipyard.mlflow.paths import tracking_uri
from shipyard.schemas.endpoints import OnlineDeploymentRead
from shipyard.sdk.client import Client
from shipyard.sdk.workspaces import WorkspaceHandle
from shipyard.services.scoring_stats import DeploymentStats
from shipyard.store import endpoints as endpoint_store
from shipyard.store.endpoints import OnlineEndpointRow
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.cli.test_cli import as_admin, invoke, run
from tests.conftest import RunningServer, start_server, unique

MINIMAL = "azureml:shipyard-minimal@latest"
SCORE = """\
import json
import os

factor = None


def init():
    global factor
    if os.environ.get("FAIL_INIT"):
        raise ValueError("no weights here: " + os.environ["FAIL_INIT"])
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.json")) as handle:
        factor = json.load(handle)["factor"]


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return {"predictions": [factor * x for x in rows], "version": os.environ.get("VERSION")}
"""


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    thread = start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        environment_cache_dir=SHARED_ENVIRONMENTS,
        jobs_enabled=False,
        serving_enabled=True,
    )
    with thread as running:
        yield running


@pytest.fixture(scope="module")
def services(server: RunningServer) -> Services:
    return server.services


@pytest.fixture(scope="module")
def sdk(server: RunningServer) -> Iterator[Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def files(sdk: Client, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace with a model (a factor in a JSON file) and the scoring code."""
    name = unique("ws")
    sdk.workspaces.create(name)
    root = tmp_path_factory.mktemp("files")
    (root / "model").mkdir()
    (root / "model" / "weights.json").write_text(json.dumps({"factor": 3}))
    (root / "src").mkdir()
    (root / "src" / "score.py").write_text(SCORE)
    ws = sdk.workspace(name)
    ws.models.create("triple", root / "model")
    return {"ws": ws, "name": name, "root": root}


def _deploy(
    files: dict[str, Any], endpoint: str, name: str, *, all_traffic: bool = False, **fields: Any
) -> OnlineDeploymentRead:
    spec = {
        "name": name,
        "endpoint_name": endpoint,
        "model": "azureml:triple:1",
        "code_configuration": {"code": "./src", "scoring_script": "score.py"},
        "environment": MINIMAL,
        "instance_count": 1,
        **fields,
    }
    ws: WorkspaceHandle = files["ws"]
    return ws.online_deployments.create(spec, base_dir=files["root"], all_traffic=all_traffic)


def _settled(
    ws: WorkspaceHandle, endpoint: str, name: str, timeout: float = 600
) -> OnlineDeploymentRead:
    """Succeeded or Failed (the first build of an environment takes a while)."""
    deadline = time.monotonic() + timeout
    while True:
        found = ws.online_deployments.get(name, endpoint_name=endpoint)
        if found.provisioning_state in ("Succeeded", "Failed"):
            return found
        assert time.monotonic() < deadline, f"{name} still {found.provisioning_state}"
        time.sleep(0.2)


def _endpoint(ws: WorkspaceHandle) -> tuple[str, str]:
    name = unique("ep")
    ws.online_endpoints.create({"name": name, "auth_mode": "key"})
    keys = ws.online_endpoints.list_keys(name)
    return name, keys.primary_key


def _score_url(server: RunningServer, files: dict[str, Any], endpoint: str) -> str:
    return f"{server.url}/api/v1/workspaces/{files['name']}/onlineEndpoints/{endpoint}/score"


def _headers(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def test_a_scoring_script_deployment_serves_with_its_keys(
    server: RunningServer, files: dict[str, Any]
) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint, key = _endpoint(ws)
    made = _deploy(files, endpoint, "blue", all_traffic=True)
    assert made.provisioning_state == "Creating"
    shown = _settled(ws, endpoint, "blue")
    assert shown.provisioning_state == "Succeeded", shown.error
    assert [i["state"] for i in shown.instances] == ["Ready"]
    url = _score_url(server, files, endpoint)
    body = {"data": [1, 2]}
    with httpx.Client(timeout=30) as http:
        answer = http.post(url, json=body, headers=_headers(key))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"predictions": [3, 6], "version": None}
        assert answer.headers["azureml-model-deployment"] == "blue"
        secondary = ws.online_endpoints.list_keys(endpoint).secondary_key
        assert http.post(url, json=body, headers=_headers(secondary)).status_code == 200
        # Missing, wrong, or another endpoint's key: 401, and the instance never sees it.
        _other, other_key = _endpoint(ws)
        for headers in ({}, _headers("shk_wrong"), _headers(other_key), {"Authorization": key}):
            refused = http.post(url, json=body, headers=headers)
            assert refused.status_code == 401, refused.text
            assert refused.json()["code"] == "invalid_endpoint_credentials"
            assert refused.headers["www-authenticate"] == "Bearer"
        # A workspace token is not an endpoint credential.
        assert http.post(url, json=body, headers=server.auth).status_code == 401
        # The instance's own answers pass through: malformed JSON is its 400, run() raising
        # its 500 with an error id (and it keeps serving).
        bad = http.post(
            url, content=b"{nope", headers=_headers(key, **{"content-type": "application/json"})
        )
        assert bad.status_code == 400, bad.text
        failed = http.post(url, json={"rows": []}, headers=_headers(key))
        assert failed.status_code == 500, failed.text
        assert "error_id" in failed.json()
        too_big = http.post(url, content=b"x" * (2 * 1024 * 1024), headers=_headers(key))
        assert too_big.status_code == 413
        assert too_big.json()["code"] == "payload_too_large"
        assert http.post(url, json=body, headers=_headers(key)).status_code == 200
    # The SDK and the CLI's invoke use the endpoint's key.
    request = files["root"] / "request.json"
    request.write_text(json.dumps({"data": [5]}))
    assert json.loads(ws.online_endpoints.invoke(endpoint, request_file=request)) == {
        "predictions": [15], "version": None,
    }  # fmt: skip
    assert json.loads(ws.online_endpoints.invoke(endpoint, body={"data": [1]}))["predictions"] == [
        3
    ]
    with pytest.raises(InvalidInputError):
        ws.online_endpoints.invoke(endpoint)
    cli = ["online-endpoint", "invoke", "-n", endpoint, "-w", files["name"]]
    printed = invoke([*cli, "--request-file", str(request)], as_admin(server))
    assert json.loads(printed.stdout) == {"predictions": [15], "version": None}
    pinned = invoke([*cli, "-r", str(request), "--deployment-name", "blue"], as_admin(server))
    assert json.loads(pinned.stdout)["predictions"] == [15]
    unknown = run([*cli, "-r", str(request), "--deployment-name", "nope"], as_admin(server))
    assert unknown.returncode == 1
    assert "'nope'" in unknown.stderr
    logs = ws.online_deployments.get_logs("blue", endpoint_name=endpoint)
    assert "starting instance" in logs


def test_an_mlflow_model_is_served_without_code(
    server: RunningServer, files: dict[str, Any], tmp_path: Path
) -> None:
    """The model the tracking and jobs issues make: saved with mlflow.sklearn, served through
    MLflow's pyfunc in the curated scikit-learn environment, with MLflow's request formats."""
    from mlflow.sklearn import save_model
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression().fit([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0.0, 2.0, 3.0])
    # cloudpickle: the curated environment has it (skops, mlflow's default now, it has not).
    save_model(fitted, tmp_path / "regression", serialization_format="cloudpickle")
    ws: WorkspaceHandle = files["ws"]
    ws.models.create("regression", tmp_path / "regression", type="mlflow_model")
    endpoint, key = _endpoint(ws)
    ws.online_deployments.create(
        {
            "name": "sklearn",
            "endpoint_name": endpoint,
            "model": "azureml:regression:1",
            "environment": "azureml:shipyard-sklearn@latest",
        },
        all_traffic=True,
    )
    shown = _settled(ws, endpoint, "sklearn")
    assert shown.provisioning_state == "Succeeded", shown.error
    url = _score_url(server, files, endpoint)
    with httpx.Client(timeout=30) as http:
        split = {"dataframe_split": {"columns": ["0", "1"], "data": [[1.0, 1.0]]}}
        for body in ({"inputs": [[1.0, 1.0], [2.0, 0.0]]}, split):
            answer = http.post(url, json=body, headers=_headers(key))
            assert answer.status_code == 200, answer.text
            predictions = answer.json()["predictions"]
            assert predictions[0] == pytest.approx(5.0)
        wrong = http.post(url, json={"nothing": 1}, headers=_headers(key))
        assert wrong.status_code == 400, wrong.text


def test_an_mlflow_model_without_an_environment_runs_in_its_own_requirements(
    server: RunningServer, files: dict[str, Any], tmp_path: Path
) -> None:
    """MLflow's defaults all the way: saved in MLflow 3's default format (skops, which no
    curated environment has), deployed with neither code nor environment: the instance runs
    in what the model's requirements.txt pins."""
    from mlflow.sklearn import save_model
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression().fit([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0.0, 2.0, 3.0])
    save_model(fitted, tmp_path / "plain")
    assert "skops" in (tmp_path / "plain" / "requirements.txt").read_text()
    ws: WorkspaceHandle = files["ws"]
    ws.models.create("plain", tmp_path / "plain", type="mlflow_model")
    endpoint, key = _endpoint(ws)
    spec = {"name": "plain", "endpoint_name": endpoint, "model": "azureml:plain:1"}
    ws.online_deployments.create(spec, all_traffic=True)
    shown = _settled(ws, endpoint, "plain")
    assert shown.provisioning_state == "Succeeded", shown.error
    with httpx.Client(timeout=30) as http:
        answer = http.post(
            _score_url(server, files, endpoint),
            json={"inputs": [[1.0, 1.0]]},
            headers=_headers(key),
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"][0] == pytest.approx(5.0)


WALKTHROUGH_SCORE = """\
import json
import os

import mlflow.pyfunc

model = None


def init():
    global model
    model = mlflow.pyfunc.load_model(os.environ["AZUREML_MODEL_DIR"])


def run(raw_data):
    rows = json.loads(raw_data)["data"]
    return model.predict(rows).tolist()
"""


def test_the_walkthrough_deploys_the_model_a_run_registered(
    server: RunningServer,
    files: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docs/endpoints.md's step by step: a model logged and registered with the real mlflow
    client, then deployed with a scoring script and called with a key."""
    import mlflow
    from sklearn.linear_model import LogisticRegression

    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri(server.url, files["name"]))
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", server.admin_token)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    with mlflow.start_run():
        model = LogisticRegression().fit([[0, 0], [1, 1], [2, 2], [3, 3]], [0, 0, 1, 1])
        mlflow.sklearn.log_model(model, name="model", registered_model_name="walkthrough")
    (tmp_path / "score").mkdir()
    (tmp_path / "score" / "score.py").write_text(WALKTHROUGH_SCORE)
    ws: WorkspaceHandle = files["ws"]
    endpoint, key = _endpoint(ws)
    spec = {
        "name": "blue",
        "endpoint_name": endpoint,
        "model": "azureml:walkthrough:1",
        "code_configuration": {"code": "./score", "scoring_script": "score.py"},
        "environment": {"pip_requirements": WALKTHROUGH_PACKAGES},
        "request_settings": {"max_concurrent_requests_per_instance": 8},
    }
    ws.online_deployments.create(spec, base_dir=tmp_path, all_traffic=True)
    shown = _settled(ws, endpoint, "blue")
    assert shown.provisioning_state == "Succeeded", shown.error
    answer = httpx.post(
        _score_url(server, files, endpoint),
        json={"data": [[0, 0], [3, 3]]},
        headers=_headers(key),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == [0, 1]


# What the walkthrough's environment lists: the curated scikit-learn one has no skops, the
# format MLflow 3 saves scikit-learn models in by default.
WALKTHROUGH_PACKAGES = [
    "mlflow-skinny==3.17.2",
    "pandas==3.1.1",
    "scikit-learn==1.9.1",
    "skops==0.16.0",
]


def test_init_failing_fails_the_deployment_with_its_traceback(
    server: RunningServer, files: dict[str, Any]
) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint, key = _endpoint(ws)
    # A secret in the variables is revealed to the instance and masked in its log.
    ws.secrets.set("init-secret", "s3cr3t-value")
    _deploy(
        files,
        endpoint,
        "broken",
        all_traffic=True,
        environment_variables={"FAIL_INIT": "${{secrets.init-secret}}"},
    )
    started = time.monotonic()
    shown = _settled(ws, endpoint, "broken")
    assert shown.provisioning_state == "Failed"
    assert time.monotonic() - started < 60
    assert shown.error is not None
    assert "Traceback" in shown.error
    assert "ValueError: no weights here" in shown.error
    logs = ws.online_deployments.get_logs("broken", endpoint_name=endpoint, lines=500)
    assert "ValueError: no weights here: ***" in logs
    assert "s3cr3t-value" not in logs
    answer = httpx.post(
        _score_url(server, files, endpoint), json={"data": [1]}, headers=_headers(key)
    )
    assert answer.status_code == 503
    assert answer.json()["code"] == "no_ready_deployment"
    # Fixed by an update, it starts over and serves.
    ws.online_deployments.update(
        {"name": "broken", "environment_variables": {}}, endpoint_name=endpoint
    )
    _until(
        lambda: (
            ws.online_deployments.get("broken", endpoint_name=endpoint).provisioning_state
            == "Succeeded"
        )
    )
    assert ws.online_deployments.get("broken", endpoint_name=endpoint).error is None
    assert json.loads(ws.online_endpoints.invoke(endpoint, body={"data": [1]}))["predictions"] == [
        3
    ]


def test_an_aml_token_endpoint_takes_its_tokens(
    server: RunningServer, files: dict[str, Any]
) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint = unique("ep")
    ws.online_endpoints.create({"name": endpoint, "auth_mode": "aml_token"})
    _deploy(files, endpoint, "blue", all_traffic=True)
    assert _settled(ws, endpoint, "blue").provisioning_state == "Succeeded"
    token = ws.online_endpoints.get_token(endpoint).access_token
    url = _score_url(server, files, endpoint)
    assert httpx.post(url, json={"data": [1]}, headers=_headers(token)).status_code == 200
    assert httpx.post(url, json={"data": [1]}, headers=_headers(token + "x")).status_code == 401
    # The SDK's invoke gets a token itself.
    assert json.loads(ws.online_endpoints.invoke(endpoint, body={"data": [2]}))["predictions"] == [
        6
    ]


def test_traffic_shifts_and_updates_without_a_failed_request(
    server: RunningServer, services: Services, files: dict[str, Any]
) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint, key = _endpoint(ws)
    _deploy(files, endpoint, "blue", all_traffic=True, environment_variables={"VERSION": "blue"})
    _deploy(files, endpoint, "green", environment_variables={"VERSION": "green"})
    for name in ("blue", "green"):
        assert _settled(ws, endpoint, name).provisioning_state == "Succeeded"
    url = _score_url(server, files, endpoint)
    served: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                answer = http.post(url, json={"data": [1]}, headers=_headers(key))
                if answer.status_code != 200:
                    failures.append(f"{answer.status_code} {answer.text}")
                else:
                    served[answer.json()["version"]] += 1

    thread = threading.Thread(target=load)
    thread.start()
    try:
        time.sleep(1)
        ws.online_endpoints.update(endpoint, traffic="blue=90 green=10")
        _until(lambda: served["green"] > 0)
        ws.online_endpoints.update(endpoint, traffic="blue=0 green=100")
        time.sleep(1)  # the gateway routes by the new split at once; let it run a while
        before = served["blue"]
        time.sleep(1)
        assert served["blue"] == before  # nothing reaches blue any more
        # An update of green rolls its instance over with no failed request either.
        ws.online_deployments.update(
            {"name": "green", "environment_variables": {"VERSION": "green-2"}},
            endpoint_name=endpoint,
        )
        _until(lambda: served["green-2"] > 0, timeout=120)
        assert _settled(ws, endpoint, "green").provisioning_state == "Succeeded"
    finally:
        stop.set()
        thread.join()
    assert not failures, failures[:5]
    assert served["blue"] > 0
    assert served["green"] > 0
    with httpx.Client(timeout=30) as http:
        # The header picks a deployment whatever the split says; an unknown one is a 404.
        pinned = http.post(
            url, json={"data": [2]}, headers=_headers(key, **{"azureml-model-deployment": "blue"})
        )
        assert pinned.status_code == 200
        assert pinned.json() == {"predictions": [6], "version": "blue"}
        unknown = http.post(
            url, json={"data": [2]}, headers=_headers(key, **{"azureml-model-deployment": "red"})
        )
        assert unknown.status_code == 404
        assert unknown.json()["field"] == "azureml-model-deployment"
        assert "'red'" in unknown.json()["detail"]
    # The gateway counted per deployment.
    stats = _stats(server, services, endpoint, "green")
    assert stats.requests > 0
    assert stats.by_status.get(200, 0) > 0
    # Deleting blue stops its instance.
    pids = [i["pid"] for i in ws.online_deployments.get("blue", endpoint_name=endpoint).instances]
    assert pids
    assert all(pids)
    ws.online_deployments.delete("blue", endpoint_name=endpoint)
    _until(lambda: not any(_alive(pid) for pid in pids), timeout=30)
    with pytest.raises(NotFoundError):
        ws.online_deployments.get("blue", endpoint_name=endpoint)


def test_a_killed_instance_is_restarted_while_the_others_serve(
    server: RunningServer, files: dict[str, Any]
) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint, key = _endpoint(ws)
    _deploy(files, endpoint, "pair", all_traffic=True, instance_count=2)
    shown = _settled(ws, endpoint, "pair")
    assert shown.provisioning_state == "Succeeded"
    victim = shown.instances[0]
    url = _score_url(server, files, endpoint)
    statuses: Counter[int] = Counter()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                statuses[http.post(url, json={"data": [1]}, headers=_headers(key)).status_code] += 1

    thread = threading.Thread(target=load)
    thread.start()
    try:
        time.sleep(0.5)
        os.kill(victim["pid"], signal.SIGKILL)
        _until(lambda: _restarted(ws, endpoint, victim["id"]), timeout=60)
        served = statuses[200]
        _until(lambda: statuses[200] > served + 20)
    finally:
        stop.set()
        thread.join()
    # At most the request in flight on the killed instance failed; the rest went on.
    assert sum(n for status, n in statuses.items() if status != 200) <= 1, statuses
    assert ws.online_deployments.get("pair", endpoint_name=endpoint).provisioning_state == (
        "Succeeded"
    )


def test_a_new_instance_count_scales_without_rolling(
    server: RunningServer, files: dict[str, Any]
) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint, _ = _endpoint(ws)
    _deploy(files, endpoint, "scaled", all_traffic=True)
    first = _settled(ws, endpoint, "scaled").instances
    updated = ws.online_deployments.update(
        {"name": "scaled", "instance_count": 2}, endpoint_name=endpoint
    )
    assert updated.generation == 2

    def two_ready() -> bool:
        found = ws.online_deployments.get("scaled", endpoint_name=endpoint)
        ready = [i for i in found.instances if i["state"] == "Ready"]
        return found.provisioning_state == "Succeeded" and len(ready) == 2

    _until(two_ready)
    now = ws.online_deployments.get("scaled", endpoint_name=endpoint).instances
    assert first[0]["pid"] in {i["pid"] for i in now}  # the first instance kept running
    ws.online_deployments.update({"name": "scaled", "instance_count": 1}, endpoint_name=endpoint)
    _until(lambda: len(ws.online_deployments.get("scaled", endpoint_name=endpoint).instances) == 1)


def _restarted(ws: WorkspaceHandle, endpoint: str, instance: str) -> bool:
    found = ws.online_deployments.get("pair", endpoint_name=endpoint)
    return any(
        i["id"] == instance and i["restarts"] >= 1 and i["state"] == "Ready"
        for i in found.instances
    )


def test_mirrored_traffic_is_copied_and_its_answers_dropped(
    server: RunningServer, services: Services, files: dict[str, Any]
) -> None:
    ws: WorkspaceHandle = files["ws"]
    endpoint, key = _endpoint(ws)
    _deploy(files, endpoint, "live", all_traffic=True, environment_variables={"VERSION": "live"})
    _deploy(files, endpoint, "shadow", environment_variables={"VERSION": "shadow"})
    for name in ("live", "shadow"):
        assert _settled(ws, endpoint, name).provisioning_state == "Succeeded"
    ws.online_endpoints.update(endpoint, mirror_traffic="shadow=50")
    url = _score_url(server, files, endpoint)
    time.sleep(0.5)
    with httpx.Client(timeout=30) as http:
        for _ in range(40):
            answer = http.post(url, json={"data": [1]}, headers=_headers(key))
            assert answer.json()["version"] == "live"
    _until(lambda: _stats(server, services, endpoint, "shadow").requests > 0)


def test_a_restarted_server_starts_the_instances_again(tmp_path: Path, database_url: str) -> None:
    def serve() -> Any:
        return start_server(
            tmp_path / "data",
            database_url,
            environment_cache_dir=SHARED_ENVIRONMENTS,
            jobs_enabled=False,
            serving_enabled=True,
        )

    model, code = tmp_path / "model", tmp_path / "src"
    model.mkdir()
    (model / "weights.json").write_text(json.dumps({"factor": 2}))
    code.mkdir()
    (code / "score.py").write_text(SCORE)
    with serve() as first, first.client() as sdk:
        sdk.workspaces.create("restart")
        ws = sdk.workspace("restart")
        ws.models.create("double", model)
        ws.online_endpoints.create({"name": "again"})
        spec = {
            "name": "blue",
            "endpoint_name": "again",
            "model": "azureml:double:1",
            "code_configuration": {"code": str(code), "scoring_script": "score.py"},
            "environment": MINIMAL,
        }
        ws.online_deployments.create(spec, all_traffic=True)
        assert _settled(ws, "again", "blue").provisioning_state == "Succeeded"
        pid = ws.online_deployments.get("blue", endpoint_name="again").instances[0]["pid"]
    assert not _alive(pid)  # the server stopped its instances with it
    with serve() as second, second.client() as sdk:
        ws = sdk.workspace("restart")
        _until(lambda: _answer(ws) == [4], timeout=120)


def _answer(ws: WorkspaceHandle) -> Any:
    try:
        return json.loads(ws.online_endpoints.invoke("again", body={"data": [2]}))["predictions"]
    except ShipyardError:
        return None


def _stats(server: RunningServer, services: Services, endpoint: str, name: str) -> DeploymentStats:
    """The gateway's counts of one deployment (the in-process server's own)."""
    with server.db.read() as session:
        parent = session.scalars(
            select(OnlineEndpointRow).where(OnlineEndpointRow.name == endpoint)
        ).one()
        row = endpoint_store.get_deployment(session, parent.id, name)
        assert row is not None
        deployment_id = row.id
    return services.scoring_stats.get(deployment_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose: its status says so.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
