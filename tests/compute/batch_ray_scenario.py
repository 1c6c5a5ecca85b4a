"""A batch endpoint's job on a real local Ray cluster: run INSIDE a loopback-only network
namespace by tests/compute/test_batch_ray.py, as ``ray_scenario.py`` is (see there).

    unshare -n bash -c 'ip link set lo up && exec python -m \
        tests.compute.batch_ray_scenario OUT DIR'

It starts Ray (2 CPUs), a Shipyard server (SQLite, the shared environment cache), a Ray
compute, a batch endpoint whose deployment runs on it, invokes it on a folder of files, and
writes what it saw as JSON to OUT; the outer test asserts on it.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import ray

from tests.api.test_jobs import SHARED_ENVIRONMENTS
from tests.conftest import ServerThread, make_settings

SCORE = """\
import os


def init():
    pass


def run(mini_batch):
    return [[os.path.basename(p), len(open(p).read().split())] for p in mini_batch]
"""
TERMINAL = ("Completed", "Failed", "Canceled")


def main(out: Path, folder: Path) -> int:
    results: dict[str, Any] = {}
    context = ray.init(
        num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False
    )
    try:
        settings = make_settings(
            folder / "data",
            f"sqlite:///{folder / 'shipyard.db'}",
            environment_cache_dir=SHARED_ENVIRONMENTS,
            job_kill_grace_seconds=3,
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
    (folder / "model").mkdir()
    (folder / "model" / "readme.txt").write_text("no weights\n")
    (folder / "docs").mkdir()
    for index in range(4):
        (folder / "docs" / f"doc{index}.txt").write_text("word " * (index + 1))
    with ServerThread(settings) as server, server.client() as admin:
        admin.workspaces.create("ray-ws")
        ws = admin.workspace("ray-ws")
        ws.computes.create("ray", address=address)
        ws.batch_endpoints.create({"name": "ray-batch"})
        made = ws.batch_deployments.create(
            {
                "name": "on-ray",
                "endpoint_name": "ray-batch",
                "model": {"path": "./model"},
                "code_configuration": {"code": "./src", "scoring_script": "score.py"},
                "environment": "azureml:shipyard-minimal@latest",
                "compute": "azureml:ray",
                "settings": {"mini_batch_size": 2, "max_concurrency_per_instance": 2},
            },
            base_dir=folder,
        )
        results["deployment_compute"] = made.compute
        job = ws.batch_endpoints.invoke("ray-batch", input=str(folder / "docs"))
        deadline = time.monotonic() + 150
        shown = ws.jobs.get_job(job.name)
        while shown.status not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.5)
            shown = ws.jobs.get_job(job.name)
        results["job"] = shown.model_dump(
            mode="json", include={"status", "compute", "error", "tags"}
        )
        results["log"] = "".join(piece.text for piece in ws.jobs._submitted.follow(job.name))
        score = ws.jobs.download(job.name, output_name="score", download_path=folder / "out")
        predictions = score / "predictions.csv"
        results["predictions"] = predictions.read_text() if predictions.exists() else None


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
