"""One online deployment as a Ray Serve application: the Serve side, run on the cluster.

``python ray_serve.py deploy CONFIG`` and ``python ray_serve.py delete CONFIG`` are the
entrypoints of the short Ray jobs that ``ray_serve_deployment.py`` submits; they connect to
the cluster they run in and call Serve's Python API. This file is run by path there, with
Ray's own Python, and never imported by the server: it needs only the standard library, Ray
and the scoring server next to it.

Why a Ray job rather than Serve's REST API (``PUT /api/serve/applications/``): that API is
declarative for the whole cluster (each PUT replaces every application, so two deployments,
or two Shipyard servers, sharing a cluster would remove each other's), it deletes only all
applications at once, and its ``import_path`` must be importable from a remote
``working_dir`` URI. A job calling ``serve.run_many`` adds or updates one named application
next to the others, ``serve.delete`` removes just that one, and the class below travels
pickled by value (this file runs as ``__main__``), so nothing has to be installed on the
cluster. Measured on a local cluster (2 cores): a deploy job takes 5-8 s (the first, which
starts Serve, about 15 s), then the replicas start; the Serve application answered through
Shipyard's gateway 20-30 s after the deployment was created.

The replica (``ScoringReplica``) serves the same contract as a local instance by running the
scoring server's own code (``scoring_server.load_scorer`` and the scorer's ``score``): Azure's
``init()`` / ``run(raw_data)``, MLflow's pyfunc formats, 400 for a bad body, 500 with an
error id for an exception in ``run()`` (the traceback on the replica's stderr), 504 past
``request_timeout_ms``. ``run()`` calls go to a pool of ``max_concurrent_requests`` threads
(Serve sends a replica no more than that many at once: ``max_ongoing_requests``; past that
``max_queued_requests`` wait at Serve's proxy, and the proxy refuses the rest with a 503 the
gateway turns into 429). An ``init()`` that raises fails the replica's constructor, and Serve
reports its traceback in the application's status.

Files: the model, the code, the deployment's environment and this file are read where the
server prepared them. That holds on a local cluster (the node is the server's host) or where
those folders are on a filesystem every node mounts at the same path; the server assumes it.
The replica runs in the cluster's Python; the environment's ``site-packages`` are added after
the cluster's own (Ray's dependencies win a clash), so it must be built for the same Python
``major.minor``.

Config (JSON, read once and removed: it holds the revealed secret values): ``app``,
``route_prefix``, ``http_host``, ``http_port``, ``num_replicas``, ``max_ongoing_requests``,
``max_queued_requests``, ``num_cpus``, ``scoring_server`` (path), ``site_packages``,
``environment`` (variables) and ``scorer`` (the scoring server's config: model_dir, code_dir,
scoring_script, mlflow_model, request_timeout_ms, max_concurrent_requests).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

DEPLOYMENT = "score"  # the one Serve deployment of each application


def load_scoring_server(path: str) -> ModuleType:
    """The scoring server by path, under a name of its own (the replica's ``sys.path`` has
    the user's code folder first, which may hold a module of any name)."""
    spec = importlib.util.spec_from_file_location("_shipyard_scoring_server", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the scoring server at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def add_site_packages(folder: str | None) -> None:
    """The deployment's environment's packages, after the cluster's own."""
    if not folder:
        return
    wanted = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if os.path.basename(os.path.dirname(folder)) != wanted:
        raise RuntimeError(
            f"the deployment's environment is built for another Python ({folder}); the Ray "
            f"cluster runs {wanted}: build the environment with that Python"
        )
    if folder not in sys.path:
        sys.path.append(folder)


class ScoringReplica:
    """One replica: ``init()`` in the constructor, a scoring call per HTTP request."""

    def __init__(self, config: dict[str, Any], environment: dict[str, str]) -> None:
        os.environ.update(environment)
        add_site_packages(config.get("site_packages"))
        server = load_scoring_server(config["scoring_server"])
        scorer_config = config["scorer"]
        self.scorer = server.load_scorer(scorer_config)
        self.timeout = max(0.001, int(scorer_config.get("request_timeout_ms", 5000)) / 1000)
        workers = max(1, int(scorer_config.get("max_concurrent_requests", 1)))
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="run")
        self.timed_out = json.dumps(
            {"error": f"the request took longer than {self.timeout * 1000:g} ms"}
        ).encode()

    async def __call__(self, request: Any) -> Any:
        from starlette.responses import Response  # Serve's own dependency

        if request.method != "POST":
            return Response(b'{"error":"use POST"}', 405, media_type="application/json")
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        loop = asyncio.get_running_loop()
        work = loop.run_in_executor(self.pool, self.scorer.score, body, content_type)
        try:
            status, payload = await asyncio.wait_for(asyncio.shield(work), self.timeout)
        except TimeoutError:
            # The thread runs on (Python cannot stop it) and holds its pool slot until done.
            status, payload = 504, self.timed_out
        return Response(payload, status, media_type="application/json")


def start_serve(host: str, port: int, attempts: int = 30) -> None:
    """Serve on the cluster, with its HTTP proxies on ``host:port`` (ignored, as Serve
    says, when Serve already runs). Two deploy jobs at once on a cluster without Serve both
    create its controller: the one that loses finds it the next time round."""
    from ray import serve
    from ray.exceptions import ActorAlreadyExistsError

    for attempt in range(attempts):
        try:
            serve.start(http_options={"host": host, "port": port})
            return
        except ActorAlreadyExistsError:
            if attempt == attempts - 1:
                raise
            time.sleep(1.0)


def deploy(config: dict[str, Any]) -> None:
    import ray
    from ray import serve

    ray.init(log_to_driver=False)  # the cluster this job runs in
    start_serve(config["http_host"], int(config["http_port"]))
    options: dict[str, Any] = {
        "name": DEPLOYMENT,
        "num_replicas": int(config["num_replicas"]),
        "max_ongoing_requests": int(config["max_ongoing_requests"]),
        "max_queued_requests": int(config["max_queued_requests"]),
        "ray_actor_options": {"num_cpus": float(config["num_cpus"])},
    }
    app = serve.deployment(**options)(ScoringReplica)
    replica = {key: config[key] for key in ("scoring_server", "site_packages", "scorer")}
    bound = app.bind(replica, config["environment"])
    target = serve.RunTarget(bound, name=config["app"], route_prefix=config["route_prefix"])
    # Not waiting for the replicas: the server follows the application's status itself.
    serve.run_many([target], wait_for_applications_running=False)
    print(f"shipyard: application {config['app']} deployed at {config['route_prefix']}")


def delete(config: dict[str, Any]) -> None:
    import ray
    from ray import serve

    ray.init(log_to_driver=False)  # the cluster this job runs in
    serve.delete(config["app"])
    print(f"shipyard: application {config['app']} deleted")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("deploy", "delete"):
        print("usage: ray_serve.py deploy|delete CONFIG", file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    # Read once: the file holds revealed secret values, the replicas get them as arguments.
    os.remove(argv[1])
    if argv[0] == "deploy":
        deploy(config)
    else:
        delete(config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
