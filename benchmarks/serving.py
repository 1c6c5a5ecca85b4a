"""Online serving: a Shipyard online endpoint against ``mlflow models serve`` and a bare app.

The spec is the "Performance" section of the deployment issue. One command, one run, the same
scikit-learn model (an MLflow pyfunc) and the same load generator for every server:

- ``mlflow models serve`` of the model (its defaults; ``--env-manager local``);
- a Shipyard online endpoint with one deployment of one instance, called through the gateway
  with key auth (the server runs the instance under the curated ``shipyard-sklearn``
  environment);
- the physical reference: a bare single-process ASGI app (uvicorn) that calls the same model.

Targets: Shipyard at least 2x MLflow's req/s at concurrency 8 and 32 with at most half its
p99; Shipyard at least 70% of the bare app's req/s; and zero failed requests while traffic
shifts blue -> green and while a deployment is updated under load.

    python benchmarks/serving.py [--seconds 10] [--concurrency 8,32] [--rounds 4] [--smoke]

The three servers run side by side and each measure is split into rounds that take the
servers in turn (rotating the order), so a drift in the shared machine's speed reaches all
three alike; a server's figure is over all its rounds (req/s over the summed time, p50/p99
over every latency).

The load generator is a raw asyncio HTTP/1.1 client with keep-alive connections, light
enough not to take the servers' CPU on a 2-core machine. Figures belong in
benchmarks/RESULTS.md; nothing here asserts one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from jobs import fresh_database, start_shipyard, stop  # type: ignore[import-not-found]

from shipyard.sdk.client import Client

FEATURES = ["sl", "sw", "pl", "pw"]
ROW = [5.1, 3.5, 1.4, 0.2]
WORKSPACE = "bench-serving"
ENDPOINT = "bench-ep"
# Enough requests in flight per instance for the highest concurrency measured: Azure's
# default of 1 would turn everything past one request into a 429.
MAX_CONCURRENT = 64

BARE_APP = """
import json
import mlflow.pyfunc
import pandas as pd

model = mlflow.pyfunc.load_model({path!r})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":
        await send({{"type": "http.response.start", "status": 200, "headers": []}})
        await send({{"type": "http.response.body", "body": b""}})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    split = json.loads(body)["dataframe_split"]
    frame = pd.DataFrame(data=split["data"], columns=split.get("columns"))
    out = json.dumps({{"predictions": model.predict(frame).tolist()}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(out))]
    await send({{"type": "http.response.start", "status": 200, "headers": headers}})
    await send({{"type": "http.response.body", "body": out}})
"""


@dataclass
class Target:
    """Where the load goes: a port, a path and the headers the server needs."""

    port: int
    path: str
    headers: dict[str, str] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def save_model(folder: Path) -> Path:
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    frame = load_iris(as_frame=True).frame
    frame.columns = [*FEATURES, "target"]
    features = frame[FEATURES]
    model = LogisticRegression(max_iter=500).fit(features, frame["target"])
    path = folder / "model"
    signature = infer_signature(features, model.predict(features))
    # cloudpickle, not MLflow 3's default skops: the curated shipyard-sklearn environment the
    # deployment runs in has no skops (a model's own requirements are not installed yet).
    mlflow.sklearn.save_model(model, path, signature=signature, serialization_format="cloudpickle")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(argv: list[str], health: str, cwd: Path) -> Iterator[None]:
    # `mlflow models serve` starts `uvicorn` by name: this interpreter's scripts come first on
    # PATH, so it is the one installed beside mlflow even when the venv is not activated.
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")])}
    with open(cwd / "server.log", "ab") as out:
        child = subprocess.Popen(  # noqa: S603
            argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        wait_http(health)
        yield
    finally:
        child.terminate()
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextmanager
def mlflow_serve(model: Path, work: Path) -> Iterator[Target]:
    port = free_port()
    argv = [
        *(sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model)),
        *("--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)),
    ]
    with process(argv, f"http://127.0.0.1:{port}/ping", work):
        yield Target(port, "/invocations")


@contextmanager
def bare_asgi(model: Path, work: Path) -> Iterator[Target]:
    port = free_port()
    (work / "bare_app.py").write_text(textwrap.dedent(BARE_APP.format(path=str(model))))
    argv = [
        *(sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1"),
        *("--port", str(port), "--log-level", "warning", "--no-access-log"),
    ]
    with process(argv, f"http://127.0.0.1:{port}/", work):
        yield Target(port, "/")


def deployment(name: str, model: Path, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "endpoint_name": ENDPOINT,
        "model": {"path": str(model), "type": "mlflow_model"},
        "instance_count": 1,
        "request_settings": {"max_concurrent_requests_per_instance": MAX_CONCURRENT},
        **extra,
    }


def wait_succeeded(client: Client, name: str, generation: int = 1) -> None:
    deployments = client.workspace(WORKSPACE).online_deployments
    deadline = time.monotonic() + 600  # the first run on a machine builds the environment
    while True:
        found = deployments.get(name, ENDPOINT)
        if found.provisioning_state == "Succeeded" and found.generation >= generation:
            return
        if found.provisioning_state == "Failed":
            logs = deployments.get_logs(name, ENDPOINT, lines=40)
            raise RuntimeError(f"deployment {name} failed: {found.error}\n{logs}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"deployment {name} is still {found.provisioning_state}")
        time.sleep(0.2)


@contextmanager
def shipyard_endpoint(
    model: Path, work: Path, db_url: str | None
) -> Iterator[tuple[Client, Target]]:
    env_cache = Path(tempfile.gettempdir()) / f"shipyard-test-environments-{os.getuid()}"
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(fresh_database(db_url)) if db_url else None
        (work / "shipyard").mkdir()
        server = start_shipyard(work / "shipyard", database, env_cache)
        stack.callback(stop, server)
        client = stack.enter_context(Client(server.url, server.token))
        client.workspaces.create(WORKSPACE)
        ws = client.workspace(WORKSPACE)
        endpoint = ws.online_endpoints.create({"name": ENDPOINT, "auth_mode": "key"})
        log("Shipyard: deploying blue (the first run on a machine builds shipyard-sklearn)")
        ws.online_deployments.create(deployment("blue", model), all_traffic=True)
        wait_succeeded(client, "blue")
        key = ws.online_endpoints.list_keys(ENDPOINT).primary_key
        path = httpx.URL(endpoint.scoring_uri).raw_path.decode()
        yield (
            client,
            Target(int(httpx.URL(server.url).port or 80), path, {"Authorization": f"Bearer {key}"}),
        )


# -- load ------------------------------------------------------------------------------------


@dataclass
class Load:
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    failed: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    def result(self, seconds: float) -> dict[str, float]:
        ordered = sorted(self.latencies)
        return {
            "rps": len(ordered) / seconds,
            "p50": statistics.median(ordered) * 1000 if ordered else 0.0,
            "p99": ordered[int(len(ordered) * 0.99)] * 1000 if ordered else 0.0,
            "errors": float(self.failed),
        }


def _request(target: Target) -> bytes:
    body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [ROW]}}).encode()
    headers = "".join(f"{k}: {v}\r\n" for k, v in target.headers.items())
    return (
        f"POST {target.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{headers}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _client(target: Target, done: Callable[[], bool], warm_until: float, load: Load) -> None:
    request = _request(target)
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while not done():
        started = time.perf_counter()
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", target.port)
            reader, writer = connection
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            status = head[9:12].decode()
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            status = type(exc).__name__
            if connection is not None:
                connection[1].close()
            connection = None
        load.requests += 1
        load.statuses[status] = load.statuses.get(status, 0) + 1
        if status != "200":
            load.failed += 1
        elif started >= warm_until:
            load.latencies.append(time.perf_counter() - started)
    if connection is not None:
        connection[1].close()


async def _timed(target: Target, concurrency: int, seconds: float, load: Load) -> None:
    """``seconds`` of load after a short warm-up whose requests are not counted."""
    warm = min(1.0, seconds / 4)
    start = time.perf_counter()
    until = start + warm + seconds
    await asyncio.gather(
        *(
            _client(target, lambda: time.perf_counter() >= until, start + warm, load)
            for _ in range(concurrency)
        )
    )


def measure_rounds(
    targets: dict[str, Target], concurrency: int, seconds: float, rounds: int
) -> dict[str, dict[str, float]]:
    """``seconds`` of load on each target, in ``rounds`` turns that rotate the order: on a
    shared machine whose speed drifts, every server sees the same stretches of it."""
    names = list(targets)
    for name in names:  # the first calls load lazy imports
        asyncio.run(_timed(targets[name], concurrency, 0.5, Load()))
    loads = {name: Load() for name in names}
    for turn in range(rounds):
        shift = turn % len(names)
        for name in names[shift:] + names[:shift]:
            asyncio.run(_timed(targets[name], concurrency, seconds / rounds, loads[name]))
    return {name: load.result(seconds) for name, load in loads.items()}


def under_load(target: Target, concurrency: int, steps: Callable[[], None]) -> Load:
    """Run ``steps`` (blocking SDK calls) in a thread while the load runs; the load stops
    when they are done."""
    finished = threading.Event()
    problems: list[BaseException] = []

    def run_steps() -> None:
        try:
            steps()
        except BaseException as exc:  # reported after the load stops
            problems.append(exc)
        finally:
            finished.set()

    async def drive() -> Load:
        load = Load()
        worker = threading.Thread(target=run_steps, name="rollout")
        worker.start()
        await asyncio.gather(
            *(_client(target, finished.is_set, 0.0, load) for _ in range(concurrency))
        )
        worker.join()
        return load

    load = asyncio.run(drive())
    if problems:
        raise problems[0]
    return load


def rollout(client: Client, model: Path, seconds: float) -> Callable[[], None]:
    """Blue -> green in two traffic shifts, then a rolling update of green."""
    ws = client.workspace(WORKSPACE)

    def steps() -> None:
        time.sleep(seconds)
        ws.online_deployments.create(deployment("green", model))
        wait_succeeded(client, "green")
        for split in ("blue=90 green=10", "blue=0 green=100"):
            log(f"   traffic {split}")
            ws.online_endpoints.update(ENDPOINT, traffic=split)
            time.sleep(seconds)
        log("   updating green (its instance is replaced)")
        updated = ws.online_deployments.update(
            {"name": "green", "environment_variables": {"BENCH_REVISION": "2"}},
            endpoint_name=ENDPOINT,
        )
        wait_succeeded(client, "green", updated.generation)
        time.sleep(seconds)

    return steps


# -- the run ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per server and level")
    parser.add_argument("--concurrency", default="8,32", help="comma-separated levels")
    parser.add_argument("--rounds", type=int, default=4, help="turns per measure (see above)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no meaningful timing")
    parser.add_argument("--db-url", help="a PostgreSQL server URL for Shipyard")
    args = parser.parse_args()
    seconds = 1.0 if args.smoke else args.seconds
    levels = [8] if args.smoke else [int(c) for c in args.concurrency.split(",")]
    rounds = 1 if args.smoke else args.rounds
    results: dict[tuple[str, int], dict[str, float]] = {}
    work = Path(tempfile.mkdtemp(prefix="shipyard-bench-serving-"))
    try:
        model = save_model(work)
        with contextlib.ExitStack() as running:
            log("starting the bare ASGI app, mlflow models serve and Shipyard")
            bare = running.enter_context(bare_asgi(model, work))
            theirs = running.enter_context(mlflow_serve(model, work))
            client, ours = running.enter_context(shipyard_endpoint(model, work, args.db_url))
            targets = {"bare": bare, "mlflow": theirs, "shipyard": ours}
            for level in levels:
                log(f"concurrency {level}: {rounds} rounds of the three servers in turn")
                for name, result in measure_rounds(targets, level, seconds, rounds).items():
                    results[name, level] = result
            log("Shipyard: blue -> green and an update of green, under load (concurrency 8)")
            shift = under_load(ours, 8, rollout(client, model, max(seconds / 2, 0.5)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report(results, levels, shift, seconds, rounds, args.db_url)
    return 0


def report(
    results: dict[tuple[str, int], dict[str, float]],
    levels: list[int],
    shift: Load,
    seconds: float,
    rounds: int,
    db_url: str | None,
) -> None:
    names = {
        "mlflow": "mlflow models serve",
        "shipyard": "Shipyard endpoint",
        "bare": "bare ASGI app",
    }
    backend = "postgresql" if db_url else "sqlite"
    print(f"serving benchmark ({backend}): one-row dataframe_split to a scikit-learn model")
    machine = f"python {sys.version.split()[0]}, {os.cpu_count()} cpus"
    print(f"{machine}, {seconds:g} s per measure in {rounds} rounds")
    print()
    print(f"{'server':<22} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7}")
    for name, label in names.items():
        for level in levels:
            r = results[name, level]
            print(
                f"{label:<22} {level:>5} {r['rps']:>9.1f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                f"{int(r['errors']):>7}"
            )
    print()
    print("targets (same run):")
    for level in levels:
        ours, theirs, bare = (results[n, level] for n in ("shipyard", "mlflow", "bare"))
        rps = ours["rps"] / theirs["rps"] if theirs["rps"] else 0.0
        p99 = ours["p99"] / theirs["p99"] if theirs["p99"] else 0.0
        of_bare = ours["rps"] / bare["rps"] if bare["rps"] else 0.0
        print(f"  concurrency {level}: req/s {rps:.2f}x MLflow's (>= 2x): {_met(rps >= 2)}")
        print(f"  concurrency {level}: p99 {p99:.2f} of MLflow's (<= 0.5): {_met(p99 <= 0.5)}")
        print(
            f"  concurrency {level}: {of_bare * 100:.0f}% of the bare app's req/s (>= 70%): "
            f"{_met(of_bare >= 0.7)}"
        )
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(shift.statuses.items()))
    print(
        f"  traffic shift + update under load: {shift.requests} requests, {shift.failed} failed "
        f"({statuses}): {_met(shift.failed == 0 and shift.requests > 0)}"
    )


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    sys.exit(main())
