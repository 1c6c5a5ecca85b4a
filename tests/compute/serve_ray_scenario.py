"""Online deployments as Ray Serve applications on a real local Ray cluster: run INSIDE a
loopback-only network namespace by tests/compute/test_serve_ray.py, as ``ray_scenario.py``
is (see there).

    unshare -n bash -c 'ip link set lo up && exec python -m \
        tests.compute.serve_ray_scenario OUT DIR'

It starts Ray (4 logical CPUs: a replica takes one), a Shipyard server (SQLite, the shared
environment cache), a Ray compute, a key-auth online endpoint on it with a scoring-script
deployment and one whose ``init()`` raises, scores through the gateway (past its capacity
too), serves an MLflow model with no code, scales to two replicas, deletes the deployments,
and writes what it saw as JSON to OUT; the outer test asserts on it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import ray
from mlflow.sklearn import save_model
from sklearn.linear_model import LinearRegression

from shipyard.sdk.workspaces import WorkspaceHandle
from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.conftest import ServerThread, make_settings

SCORE = """\
import json
import os
import time


def init():
    global PREFIX
    PREFIX = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "prefix.txt")).read().strip()


def run(raw_data):
    data = json.loads(raw_data)
    if data.get("boom"):
        raise ValueError("boom from run()")
    time.sleep(data.get("sleep", 0))
    return {"answer": [PREFIX + str(x) for x in data["data"]], "greeting": os.environ["GREETING"]}
"""
BAD = """\
def init():
    raise RuntimeError("cannot load the model: bad weights")


def run(raw_data):
    return None
"""
SETTLED = ("Succeeded", "Failed")


def main(out: Path, folder: Path) -> int:
    results: dict[str, Any] = {}
    context = ray.init(
        num_cpus=4, include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False
    )
    try:
        settings = make_settings(
            folder / "data",
            f"sqlite:///{folder / 'shipyard.db'}",
            environment_cache_dir=SHARED_ENVIRONMENTS,
            jobs_enabled=False,
            serving_enabled=True,
        )
        run(settings, f"http://{context.dashboard_url}", folder, results)
    except Exception:
        results["crash"] = traceback.format_exc()
    finally:
        out.write_text(json.dumps(results, indent=1, default=str))
        ray.shutdown()
    return 0


def run(settings: Any, address: str, folder: Path, results: dict[str, Any]) -> None:
    (folder / "src").mkdir()
    (folder / "src" / "score.py").write_text(SCORE)
    (folder / "src" / "bad.py").write_text(BAD)
    (folder / "model").mkdir()
    (folder / "model" / "prefix.txt").write_text("ray-\n")
    started = time.monotonic()
    with ServerThread(settings) as server, server.client() as admin:
        admin.workspaces.create("serve-ws")
        ws = admin.workspace("serve-ws")
        ws.computes.create("ray", address=address)
        base = f"{server.url}/api/v1/workspaces/serve-ws/onlineEndpoints"
        http = httpx.Client(headers=server.auth, timeout=30)
        results["refused"] = refusals(http, base)
        made = ws.online_endpoints.create(
            {"name": "on-ray", "auth_mode": "key", "compute": "azureml:ray"}
        )
        results["endpoint_compute"] = made.compute
        changed = http.patch(f"{base}/on-ray", json={"compute": "local"})
        results["endpoint_compute_change"] = [changed.status_code, changed.json().get("field")]
        key = ws.online_endpoints.list_keys("on-ray").primary_key
        deploy(ws, folder, "blue", "score.py", all_traffic=True)
        deploy(ws, folder, "bad", "bad.py")
        blue = settled(ws, "blue")
        results["blue"] = blue
        results["blue_ready_seconds"] = time.monotonic() - started
        url = f"{base}/on-ray/score"
        results["scores"] = score(url, key)
        error_id = results["scores"]["boom"][1].get("error_id", "?")
        results["replica_log"] = wait_for_log(ws, error_id)
        results["bad"] = settled(ws, "bad")
        results["apps_before"] = applications(address)
        results["busy"] = flood(url, key)
        results["mlflow"] = serve_mlflow_model(ws, folder, url, key, address)
        # Two replicas: Serve rolls to the new count.
        ws.online_deployments.update({"name": "blue", "instance_count": 2}, endpoint_name="on-ray")
        results["scaled"] = wait_replicas(ws, 2)
        results["scaled_apps"] = applications(address)
        results["scores_after_scale"] = [score(url, key)["ok"] for _ in range(4)]
        # Prometheus counts Serve's replicas, not the one proxy address they share.
        metrics = http.get(f"{server.url}/metrics").text
        results["ready_metric"] = [
            line
            for line in metrics.splitlines()
            if line.startswith("shipyard_online_deployment_ready_instances{")
            and 'deployment="blue"' in line
        ]
        results["logs"] = ws.online_deployments.get_logs("blue", endpoint_name="on-ray")
        ws.online_endpoints.update("on-ray", traffic={"blue": 0})
        ws.online_deployments.delete("blue", endpoint_name="on-ray")
        ws.online_deployments.delete("bad", endpoint_name="on-ray")
        results["apps_after_delete"] = wait_gone(address)
        gone = http.post(url, json={"data": [1]}, headers={"Authorization": f"Bearer {key}"})
        results["score_after_delete"] = gone.status_code
        http.close()
    results["seconds"] = time.monotonic() - started


def refusals(http: httpx.Client, base: str) -> dict[str, Any]:
    """Client mistakes about the compute: 400 naming it."""
    found: dict[str, Any] = {}
    for label, compute in (("unknown", "azureml:nope"), ("bad_name", "azureml:../x")):
        answer = http.post(base, json={"name": f"ep-{label.replace('_', '-')}", "compute": compute})
        found[label] = [answer.status_code, answer.json().get("field")]
    return found


def deploy(
    ws: WorkspaceHandle, folder: Path, name: str, script: str, *, all_traffic: bool = False
) -> None:
    ws.online_deployments.create(
        {
            "name": name,
            "endpoint_name": "on-ray",
            "model": {"path": "./model"},
            "code_configuration": {"code": "./src", "scoring_script": script},
            "environment": "azureml:shipyard-minimal@latest",
            "environment_variables": {"GREETING": "hello from the replica"},
            "instance_count": 1,
            "request_settings": {"max_concurrent_requests_per_instance": 2},
        },
        base_dir=folder,
        all_traffic=all_traffic,
    )


def settled(ws: WorkspaceHandle, name: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    shown = ws.online_deployments.get(name, endpoint_name="on-ray")
    while shown.provisioning_state not in SETTLED and time.monotonic() < deadline:
        time.sleep(0.5)
        shown = ws.online_deployments.get(name, endpoint_name="on-ray")
    return shown.model_dump(
        mode="json", include={"provisioning_state", "error", "instances", "compute"}
    )


def score(url: str, key: str) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=30) as http:
        ok = http.post(url, json={"data": [1, 2]}, headers=auth)
        boom = http.post(url, json={"boom": True, "data": []}, headers=auth)
        malformed = http.post(
            url, content=b"{nope", headers={**auth, "content-type": "application/json"}
        )
        refused = http.post(url, json={"data": [1]}, headers={"Authorization": "Bearer wrong"})
    return {
        "ok": [ok.status_code, ok.json(), ok.headers.get("azureml-model-deployment")],
        "boom": [boom.status_code, boom.json()],
        "malformed": malformed.status_code,
        "refused": refused.status_code,
    }


def flood(url: str, key: str, count: int = 6) -> list[Any]:
    """``count`` requests at once to a replica taking 2 (max_concurrent_requests_per_instance)
    with one waiting at Serve's proxy: the rest are refused. Statuses, and the refusals.
    The requests start together (a barrier) and each holds its slot 3 s, so on a loaded
    machine a late starter still finds the replica busy rather than a slot come free."""
    start = threading.Barrier(count)
    auth = {"Authorization": f"Bearer {key}"}

    def one(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as http:  # connected before the barrier
            http.get(url.rsplit("/api/", 1)[0] + "/health")
            start.wait(30)
            return http.post(url, json={"data": [1], "sleep": 3.0}, headers=auth)

    with ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(one, range(count)))
    others = [[a.status_code, a.text] for a in answers if a.status_code != 200]
    return [sorted(a.status_code for a in answers), others]


def serve_mlflow_model(
    ws: WorkspaceHandle, folder: Path, url: str, key: str, address: str
) -> dict[str, Any]:
    """An MLflow model with no scoring script, on the cluster: MLflow's pyfunc in the replica
    (the cluster's Python has mlflow and scikit-learn), MLflow's request formats. Deleted
    again, and waited for until Serve has removed its application (which it does after the
    delete returns), so the cluster's CPUs are free and Serve's view is as before for the
    scaling that follows."""
    before = set(applications(address))
    fitted = LinearRegression().fit([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0.0, 2.0, 3.0])
    save_model(fitted, folder / "regression", serialization_format="cloudpickle")
    ws.models.create("regression", folder / "regression", type="mlflow_model")
    ws.online_deployments.create(
        {
            "name": "mlflow",
            "endpoint_name": "on-ray",
            "model": "azureml:regression:1",
            "environment": "azureml:shipyard-minimal@latest",
        }
    )
    found: dict[str, Any] = {"shown": settled(ws, "mlflow")}
    headers = {"Authorization": f"Bearer {key}", "azureml-model-deployment": "mlflow"}
    split = {"dataframe_split": {"columns": ["0", "1"], "data": [[1.0, 1.0]]}}
    with httpx.Client(timeout=30) as http:
        for label, body in (("inputs", {"inputs": [[1.0, 1.0], [2.0, 0.0]]}), ("split", split)):
            answer = http.post(url, json=body, headers=headers)
            found[label] = [answer.status_code, answer.json()]
        found["wrong"] = http.post(url, json={"nothing": 1}, headers=headers).status_code
    ws.online_deployments.delete("mlflow", endpoint_name="on-ray")
    deadline = time.monotonic() + 60
    while set(applications(address)) != before and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def wait_for_log(ws: WorkspaceHandle, text: str, timeout: float = 30) -> str:
    """The deployment's logs once they hold ``text`` (a replica's output is copied from the
    cluster every few seconds), or as they are at the deadline."""
    deadline = time.monotonic() + timeout
    logs = ws.online_deployments.get_logs("blue", endpoint_name="on-ray", lines=1000)
    while text not in logs and time.monotonic() < deadline:
        time.sleep(0.5)
        logs = ws.online_deployments.get_logs("blue", endpoint_name="on-ray", lines=1000)
    return logs


def applications(address: str) -> dict[str, Any]:
    """Serve's own view: each application's status and running replicas."""
    body = httpx.get(f"{address}/api/serve/applications/", timeout=10).json()
    return {
        name: {
            "status": app["status"],
            "route_prefix": app["route_prefix"],
            "running": sum(
                1
                for deployment in app["deployments"].values()
                for replica in deployment.get("replicas") or []
                if replica["state"] == "RUNNING"
            ),
        }
        for name, app in body["applications"].items()
    }


def wait_replicas(ws: WorkspaceHandle, count: int, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        shown = ws.online_deployments.get("blue", endpoint_name="on-ray")
        ready = [i for i in shown.instances if i["state"] == "Ready"]
        done = shown.provisioning_state == "Succeeded" and len(ready) == count
        if done or time.monotonic() > deadline:
            return {"state": shown.provisioning_state, "ready": len(ready), "error": shown.error}
        time.sleep(0.5)


def wait_gone(address: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    apps = applications(address)
    while apps and time.monotonic() < deadline:
        time.sleep(0.5)
        apps = applications(address)
    return apps


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
