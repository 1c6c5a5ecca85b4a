"""A quick throughput probe of one scoring instance (not the gateway): req/s and latency at a
given concurrency for a one-row request to a scikit-learn model, next to ``mlflow models
serve`` of the same model (``--env-manager local``) and a bare single-process ASGI app
(uvicorn) that calls the same pyfunc model inline.

    python benchmarks/serving_probe.py [--seconds 10] [--concurrency 8,32] [--smoke]

The load generator is a raw asyncio HTTP/1.1 client with keep-alive connections, light
enough that it does not take the servers' CPU on a 2-core machine. Figures belong in
benchmarks/RESULTS.md; nothing here asserts one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shipyard.serving.instances import DeploymentSupervisor
from shipyard.serving.spec import DeploymentSpec, SupervisorSettings

FEATURES = ["sl", "sw", "pl", "pw"]
ROW = [5.1, 3.5, 1.4, 0.2]

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
    mlflow.sklearn.save_model(model, path, signature=signature)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def shipyard_instance(model: Path, work: Path, concurrency: int) -> Iterator[tuple[int, str]]:
    spec = DeploymentSpec(
        name="probe",
        python=Path(sys.executable),
        model_dir=model,
        mlflow_model=True,
        max_concurrent_requests=concurrency,
    )
    supervisor = DeploymentSupervisor(spec, SupervisorSettings(work_dir=work / "deployments"))
    supervisor.start()
    try:
        status = supervisor.wait(120)
        if status.state != "Ready":
            raise RuntimeError(f"the instance did not start: {status}")
        yield supervisor.endpoints()[0][1], "/score"
    finally:
        supervisor.stop()


@contextmanager
def process(argv: list[str], health: str, cwd: Path) -> Iterator[None]:
    with open(cwd / "server.log", "ab") as log:
        child = subprocess.Popen(argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
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
def mlflow_serve(model: Path, work: Path) -> Iterator[tuple[int, str]]:
    port = free_port()
    argv = [
        *(sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model)),
        *("--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)),
    ]
    with process(argv, f"http://127.0.0.1:{port}/ping", work):
        yield port, "/invocations"


@contextmanager
def bare_asgi(model: Path, work: Path) -> Iterator[tuple[int, str]]:
    port = free_port()
    (work / "bare_app.py").write_text(textwrap.dedent(BARE_APP.format(path=str(model))))
    argv = [
        *(sys.executable, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1"),
        *("--port", str(port), "--log-level", "warning", "--no-access-log"),
    ]
    with process(argv, f"http://127.0.0.1:{port}/", work):
        yield port, "/"


async def _client(
    port: int, request: bytes, until: float, warm_until: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors = 0
    try:
        while True:
            started = time.perf_counter()
            if started >= until:
                return errors
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            if started >= warm_until:
                latencies.append(time.perf_counter() - started)
    finally:
        writer.close()


async def _load(port: int, path: str, concurrency: int, seconds: float) -> dict[str, float]:
    body = json.dumps({"dataframe_split": {"columns": FEATURES, "data": [ROW]}}).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    warm = min(1.0, seconds / 4)
    start = time.perf_counter()
    latencies: list[float] = []
    errors = await asyncio.gather(
        *(
            _client(port, request, start + warm + seconds, start + warm, latencies)
            for _ in range(concurrency)
        )
    )
    ordered = sorted(latencies)
    return {
        "rps": len(ordered) / seconds,
        "p50": statistics.median(ordered) * 1000 if ordered else 0.0,
        "p99": ordered[int(len(ordered) * 0.99)] * 1000 if ordered else 0.0,
        "errors": float(sum(errors)),
    }


def measure(port: int, path: str, concurrency: int, seconds: float) -> dict[str, float]:
    return asyncio.run(_load(port, path, concurrency, seconds))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="8", help="comma-separated, e.g. 8,32")
    parser.add_argument("--servers", default="shipyard,mlflow,bare")
    parser.add_argument("--smoke", action="store_true", help="one short run of each")
    args = parser.parse_args()
    seconds = 1.0 if args.smoke else args.seconds
    levels = [int(c) for c in args.concurrency.split(",")]
    servers = {
        "shipyard instance": shipyard_instance,
        "mlflow models serve": lambda m, w, c: mlflow_serve(m, w),
        "bare ASGI app": lambda m, w, c: bare_asgi(m, w),
    }
    chosen = {
        "shipyard": "shipyard instance",
        "mlflow": "mlflow models serve",
        "bare": "bare ASGI app",
    }
    names = [chosen[s.strip()] for s in args.servers.split(",")]
    print(f"serving probe: one-row dataframe_split, {seconds:g}s per run, cores={os.cpu_count()}")
    print(f"{'server':<22} {'conc':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    with tempfile.TemporaryDirectory(prefix="serving-probe-") as temporary:
        work = Path(temporary)
        model = save_model(work)
        for name in names:
            for level in levels:
                with servers[name](model, work, level) as (port, path):
                    measure(port, path, level, 0.5)  # first calls load lazy imports
                    result = measure(port, path, level, seconds)
                print(
                    f"{name:<22} {level:>5} {result['rps']:>9.1f} {result['p50']:>8.2f} "
                    f"{result['p99']:>8.2f} {int(result['errors']):>7}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
