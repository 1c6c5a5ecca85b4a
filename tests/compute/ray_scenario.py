"""Jobs on a real local Ray cluster, end to end: run INSIDE a loopback-only network
namespace by tests/compute/test_ray_launcher.py (Ray's servers listen on every interface).

    unshare -n bash -c 'ip link set lo up && exec python -m tests.compute.ray_scenario OUT DIR'

It starts one Ray cluster (2 CPUs, dashboard on 127.0.0.1), a Shipyard server (SQLite in
DIR, the shared environment cache, which the outer test filled: there is no package index
in here), a Ray compute with the dashboard's address, and runs the jobs below at once
(fractional CPUs, so they fit the 2 CPUs together), then one across a server restart. It
writes what it saw as JSON to OUT; the outer test asserts on it. Nothing is asserted here,
so a failure shows every job's outcome, not only the first.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import ray

from shipyard.schemas.jobs import JobRead
from shipyard.sdk.jobs import command
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.api.test_jobs import ARGV, SHARED_ENVIRONMENTS
from tests.conftest import ServerThread, free_port, make_settings

SECRET = "s3cr3t-ray-value-8f1c"
NASTY = "; rm -rf / #$(id)`id`\nline2 'q' \"d\" \\ $HOME *"
MAIN = """\
import os, sys
print('hello from', os.environ['SHIPYARD_JOB_NAME'])
print('python', sys.executable)
print('secret', os.environ['API_KEY'])
os.makedirs('outputs', exist_ok=True)
open('outputs/result.txt', 'w').write('42')
"""
LOG_MLFLOW = (
    "import mlflow; mlflow.log_metric('loss', 0.5); mlflow.log_param('alpha', '0.1'); "
    "print('logged')"
)
HOG = "x = bytearray(300 * 1024 * 1024); import time; time.sleep(60)"
BUSY = "import time; end = time.time() + 2; exec('while time.time() < end: pass')"
TERMINAL = ("Completed", "Failed", "Canceled")


def main(out: Path, folder: Path) -> int:
    results: dict[str, Any] = {}
    context = ray.init(
        num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False
    )
    try:
        address = f"http://{context.dashboard_url}"
        results["address"] = address
        settings = make_settings(
            folder / "data",
            f"sqlite:///{folder / 'shipyard.db'}",
            environment_cache_dir=SHARED_ENVIRONMENTS,
            job_kill_grace_seconds=3,
            job_metrics_interval_seconds=0.5,
        )
        run(settings, address, folder, results)
    except Exception:
        results["crash"] = traceback.format_exc()
    finally:
        out.write_text(json.dumps(results, indent=1, default=str))
        ray.shutdown()
    return 0


def run(settings: Any, address: str, folder: Path, results: dict[str, Any]) -> None:
    code = folder / "src"
    code.mkdir()
    (code / "main.py").write_text(MAIN)
    (code / "argv.py").write_text(ARGV + "\n")
    with ServerThread(settings) as server, server.client() as admin:
        admin.workspaces.create("ray-ws")
        ws = admin.workspace("ray-ws")
        ws.secrets.set("api-key", SECRET)
        made = ws.computes.create(
            "ray", address=address, cost={"rate": 0.12, "unit": "core"}, description="local"
        )
        results["compute"] = made.model_dump(mode="json")
        ws.computes.create("ray-nodes", address=address, cost={"rate": 2.0, "unit": "node"})
        small = {"compute": "azureml:ray", "resources": {"cpu": 0.1}}
        secret_env = {"API_KEY": "${{secrets.api-key}}"}
        names = {
            "hello": submit(
                ws, "python main.py", code=code, environment_variables=secret_env, **small
            ),
            "argv": submit(
                ws, "python argv.py ${{inputs.x}}", code=code, inputs={"x": NASTY}, **small
            ),
            "fail": submit(ws, "echo about to fail; exit 3", **small),
            "mlflow": submit(ws, f'python -c "{LOG_MLFLOW}"', **small),
            "sleeper": submit(ws, "echo sleeping; sleep 60; echo woke", **small),
            "multi": submit(
                ws,
                "echo RANK=$RANK WORLD_SIZE=$WORLD_SIZE LOCAL_RANK=$LOCAL_RANK "
                "MASTER_ADDR=$MASTER_ADDR MASTER_PORT=$MASTER_PORT",
                compute="ray",
                resources={"cpu": 0.5, "instance_count": 2},
            ),
            "multi_fail": submit(
                ws,
                'if [ "$RANK" = 1 ]; then echo rank 1 fails; exit 4; fi; sleep 60',
                compute="ray",
                resources={"cpu": 0.2, "instance_count": 2},
            ),
            "per_node": submit(ws, "echo billed", compute="ray-nodes", resources={"cpu": 0.1}),
            "hog": submit(
                ws, f'python -c "{HOG}"', compute="ray", resources={"cpu": 0.1, "memory": "100m"}
            ),
            "busy": submit(ws, f'python -c "{BUSY}"', **small),
        }
        results["submitted"] = {k: ws.jobs.get_job(v).status for k, v in names.items()}
        # Cancel the sleeper once it runs and has said so.
        started = wait_for_log(ws, names["sleeper"], "sleeping", timeout=60)
        results["sleeper_started"] = started
        results["sleeper_status_before_cancel"] = ws.jobs.get_job(names["sleeper"]).status
        canceled_at = time.monotonic()
        ws.jobs.cancel(names["sleeper"])
        results["sleeper"] = outcome(ws, names["sleeper"])
        results["sleeper"]["cancel_seconds"] = time.monotonic() - canceled_at
        for key, name in names.items():
            results[key] = results.get(key) or outcome(ws, name)
        results["hello"]["artifacts"] = sorted(
            e.path for e in ws.jobs.artifacts(results["hello"]["id"]).list(recursive=True)
        )
        run_read = ws.jobs.get_run(results["mlflow"]["id"])
        results["mlflow"]["metrics"] = {k: m.value for k, m in run_read.metrics.items()}
        results["mlflow"]["params"] = run_read.params
        busy = ws.jobs.get_run(results["busy"]["id"]).metrics
        results["busy"]["metrics"] = sorted(busy)
        results["cost_report"] = ws.costs.report(by="compute").model_dump(mode="json")
        # A job that runs across a restart of the server.
        restart = submit(
            ws,
            'echo before "$API_KEY"; sleep 6; echo after "$API_KEY"',
            environment_variables=secret_env,
            **small,
        )
        results["restart_seen_before"] = wait_for_log(ws, restart, "before", timeout=60)
        results["restart_status_at_stop"] = ws.jobs.get_job(restart).status
    settings2 = settings.model_copy(update={"port": free_port()})
    with ServerThread(settings2) as server, server.client() as admin:
        ws = admin.workspace("ray-ws")
        results["restart_status_after_start"] = ws.jobs.get_job(restart).status
        results["restart"] = outcome(ws, restart)


def submit(ws: WorkspaceHandle, line: str, **fields: Any) -> str:
    return ws.jobs.create(command(command=line, **fields)).name


def wait_for_log(ws: WorkspaceHandle, name: str, text: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data, _, status, _ = ws.jobs._submitted.logs(name, 0)
        if text.encode() in data:
            return True
        if status in TERMINAL:
            return False
        time.sleep(0.2)
    return False


def outcome(ws: WorkspaceHandle, name: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: JobRead = ws.jobs.get_job(name)
    while job.status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(0.2)
        job = ws.jobs.get_job(name)
    found = job.model_dump(mode="json", include={"id", "status", "exit_code", "error", "cost"})
    found["history"] = [s.status for s in job.status_history]
    found["log"] = "".join(piece.text for piece in ws.jobs._submitted.follow(name))
    return found


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
