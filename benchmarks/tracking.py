"""Experiment tracking through the real ``mlflow`` client: Shipyard against MLflow's own server.

The spec is the "Performance" section of the tracking issue. One command starts three servers
(and the replay server below), each a separate process bound to 127.0.0.1 with its own
temporary folder:

- MLflow's tracking server with its defaults (``python -m mlflow server``, SQLite backend,
  4 workers),
- the same at its best, ``--workers 1`` (multi-worker mode adds ~40 ms per request on a
  kept-alive connection),
- Shipyard (``python -m shipyard server``, SQLite in its data folder, or a fresh PostgreSQL
  database with ``--db-url``), with one workspace created through the REST API; the MLflow
  client talks to ``/mlflow/workspaces/<ws>`` with the admin token in
  ``MLFLOW_TRACKING_TOKEN``.

The same workload runs through ``mlflow.MlflowClient`` (a fresh client object per target) in
this process, target order rotating every repetition, and every figure is printed for each
server with the ratio Shipyard / best MLflow (the better of MLflow's two modes, per measure):

1. ``log_batch`` ingest: points/s, ``--batches`` batches of 1,000 metrics into one run;
2. single ``log_metric`` calls per second;
3. run creation (``create_run``) per second;
4. ``get_metric_history`` of ``--history`` points (logged first through ``log_batch``);
5. ``search_runs`` with a filter on a metric and a param over ``--search-runs`` runs;
6. ``--writers`` concurrent writers (threads, one run each) doing ``log_batch``: points sent
   vs points read back, errors, batch latency p99;
7. server memory at the end: RSS (and PSS, which counts pages shared between forked workers
   once) summed over the server process and its children, from /proc;

and a fourth column, "client floor": the same client against ``benchmarks/replay_server.py``,
which answers each request with Shipyard's own answer to it, kept from the first time and
sent back at once. It is what the client alone costs; "ceiling" is the ratio a server that
took no time would reach against MLflow, so a target above it cannot be met with this client
on this machine, whatever the server does (measures 1-5 only).

Plus, on Shipyard only, the native SDK's sustained ingest (``run.log_metric`` in a loop, then
``run.flush()``). A measure a server cannot do (an endpoint it lacks) is printed as
"not supported yet" with the error, and the run goes on.

    python benchmarks/tracking.py                 # full sizes, several minutes
    python benchmarks/tracking.py --smoke         # tiny sizes, well under a minute; no timing
    python benchmarks/tracking.py --history 20000 --search-runs 500   # smaller big numbers
    python benchmarks/tracking.py --db-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python benchmarks/tracking.py --only single,create --no-mlflow-defaults   # some measures
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# Before mlflow is imported: no telemetry, no retries hiding failures, room for big reads.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "300"

import mlflow
from authz import free_port, fresh_database, quantile  # benchmarks/authz.py
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from sqlalchemy.engine import make_url

import shipyard
from shipyard.sdk.client import Client

WORKSPACE = "bench"
BATCH = 1000  # MLflow's limit of metrics per log_batch request
SEARCH_FILTER = "metrics.score > 0.5 AND params.group = 'a'"

# Targets from the issue, as (measure, minimum Shipyard/MLflow ratio, higher_is_better).
TARGETS = {
    "ingest": 4.0,
    "single": 3.0,
    "create": 5.0,
    "history": 5.0,  # times faster
    "search": 3.0,  # times faster
    "p99": 5.0,  # Shipyard's p99 at most a fifth of MLflow's
    "memory": 5.0,  # at most a fifth
}
NATIVE_TARGET = 200_000.0


@dataclass(frozen=True)
class Size:
    repetitions: int
    batches: int  # ingest: batches of 1,000 points per repetition
    single: int  # log_metric calls per repetition
    runs: int  # create_run calls per repetition
    history: int  # points read back by get_metric_history
    search_runs: int  # runs searched over
    search_repetitions: int
    writers: int
    writer_batches: int  # batches per writer
    native_points: int


FULL = Size(
    repetitions=3,
    batches=50,
    single=300,
    runs=200,
    history=100_000,
    search_runs=2000,
    search_repetitions=5,
    writers=8,
    writer_batches=20,
    native_points=500_000,
)
SMOKE = Size(
    repetitions=1,
    batches=2,
    single=5,
    runs=5,
    history=2000,
    search_runs=20,
    search_repetitions=1,
    writers=8,
    writer_batches=1,
    native_points=2000,
)


# --- the servers --------------------------------------------------------------------------


@dataclass
class Server:
    label: str
    kind: str  # "mlflow", "shipyard" or "floor" (see replay_server.py)
    process: subprocess.Popen[bytes]
    port: int
    tracking_uri: str
    log: Path
    token: str | None = None
    results: dict[str, object] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def client(self) -> MlflowClient:
        if self.token:
            os.environ["MLFLOW_TRACKING_TOKEN"] = self.token
        else:
            os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        return MlflowClient(tracking_uri=self.tracking_uri)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SHIPYARD_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def start_mlflow(folder: Path, label: str, workers: int | None) -> Server:
    folder.mkdir(parents=True)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--default-artifact-root",
        str(folder / "art"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if workers is not None:
        command += ["--workers", str(workers)]
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter, fixed arguments)
            command, stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True
        )
    return Server(label, "mlflow", process, port, f"http://127.0.0.1:{port}", log)


def start_shipyard(folder: Path, db_url: str | None) -> Server:
    folder.mkdir(parents=True)
    port = free_port()
    token = "shp_bench-admin-" + uuid.uuid4().hex
    command = [
        sys.executable,
        "-m",
        "shipyard",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(folder / "data"),
        "--log-level",
        "warning",
    ]
    if db_url:
        command += ["--db-url", db_url]
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter, fixed arguments)
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env({"SHIPYARD_ADMIN_TOKEN": token}),
            start_new_session=True,
        )
    uri = f"http://127.0.0.1:{port}/mlflow/workspaces/{WORKSPACE}"
    return Server("Shipyard", "shipyard", process, port, uri, log, token=token)


def start_floor(folder: Path, upstream: Server) -> Server:
    """The replay server in front of Shipyard: the client's floor (see the module's note)."""
    folder.mkdir(parents=True)
    port = free_port()
    command = [
        sys.executable,
        str(Path(__file__).with_name("replay_server.py")),
        "--upstream",
        f"http://127.0.0.1:{upstream.port}",
        "--port",
        str(port),
    ]
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter, fixed arguments)
            command, stdout=out, stderr=subprocess.STDOUT, env=_env(), start_new_session=True
        )
    uri = f"http://127.0.0.1:{port}/mlflow/workspaces/{WORKSPACE}"
    return Server("client floor", "floor", process, port, uri, log, token=upstream.token)


def _request(url: str, token: str | None = None, body: dict[str, object] | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310  (loopback)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def wait_ready(server: Server, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    base = f"http://127.0.0.1:{server.port}"
    while True:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{server.label} exited while starting:\n{tail}")
        with contextlib.suppress(OSError):
            if _request(f"{base}/health") == 200:
                break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.label} did not start in {timeout:.0f} s")
        time.sleep(0.2)
    if server.kind == "shipyard":
        status = _request(f"{base}/api/v1/workspaces", server.token, {"name": WORKSPACE})
        if status not in (200, 201):
            raise RuntimeError(f"creating workspace {WORKSPACE!r} answered {status}")


def stop(server: Server) -> None:
    """End the server and its children: its own process group (it was started in a new
    session), by its id."""
    process = server.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    # Workers left in the group after the leader went (should not happen, but never leak).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def memory_mb(root: int) -> tuple[float, float, int]:
    """(RSS summed, PSS summed, processes) in MB over the process and its descendants."""
    rss = pss = 0
    pids = process_tree(root)
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
    return rss / 1024, pss / 1024, len(pids)


# --- the workload -------------------------------------------------------------------------


def now_ms() -> int:
    return int(time.time() * 1000)


def batch_of(key: str, start_step: int, n: int = BATCH) -> list[Metric]:
    ts = now_ms()
    return [
        Metric(key, float(step % 97) / 97, ts, step) for step in range(start_step, start_step + n)
    ]


def new_experiment(client: MlflowClient, prefix: str) -> str:
    return client.create_experiment(f"{prefix}-{uuid.uuid4().hex[:8]}")


def measure_ingest(client: MlflowClient, size: Size) -> float:
    run_id = client.create_run(new_experiment(client, "ingest")).info.run_id
    client.log_batch(run_id, metrics=batch_of("warmup", 0, 10))
    started = time.perf_counter()
    for b in range(size.batches):
        client.log_batch(run_id, metrics=batch_of("loss", b * BATCH))
    return size.batches * BATCH / (time.perf_counter() - started)


def measure_single(client: MlflowClient, size: Size) -> float:
    run_id = client.create_run(new_experiment(client, "single")).info.run_id
    client.log_metric(run_id, "warmup", 1.0)
    started = time.perf_counter()
    for step in range(size.single):
        client.log_metric(run_id, "acc", step / size.single, step=step)
    return size.single / (time.perf_counter() - started)


def measure_create(client: MlflowClient, size: Size) -> float:
    experiment = new_experiment(client, "create")
    client.create_run(experiment)
    started = time.perf_counter()
    for _ in range(size.runs):
        client.create_run(experiment)
    return size.runs / (time.perf_counter() - started)


def seed_history(client: MlflowClient, size: Size) -> str:
    run_id: str = client.create_run(new_experiment(client, "history")).info.run_id
    batches = range(0, size.history, BATCH)
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda s: client.log_batch(
                    run_id, metrics=batch_of("curve", s, min(BATCH, size.history - s))
                ),
                batches,
            )
        )
    return run_id


def measure_history(client: MlflowClient, run_id: str, size: Size) -> float:
    started = time.perf_counter()
    points = client.get_metric_history(run_id, "curve")
    seconds = time.perf_counter() - started
    if len(points) != size.history:
        raise RuntimeError(f"get_metric_history returned {len(points)} of {size.history} points")
    return seconds


def seed_search(client: MlflowClient, size: Size) -> tuple[str, int]:
    """``size.search_runs`` runs, each with a metric ``score`` and a param ``group``; returns
    the experiment and how many runs the filter should match."""
    experiment = new_experiment(client, "search")

    def one(i: int) -> bool:
        run_id = client.create_run(experiment).info.run_id
        score = (i * 37 % 100) / 100
        group = "abcd"[i % 4]
        client.log_batch(
            run_id, metrics=[Metric("score", score, now_ms(), 0)], params=[Param("group", group)]
        )
        return score > 0.5 and group == "a"

    with ThreadPoolExecutor(8) as pool:
        expected = sum(pool.map(one, range(size.search_runs)))
    return experiment, expected


def measure_search(client: MlflowClient, experiment: str, expected: int) -> float:
    started = time.perf_counter()
    runs = client.search_runs([experiment], SEARCH_FILTER, max_results=1000)
    seconds = time.perf_counter() - started
    if len(runs) != min(expected, 1000):
        raise RuntimeError(f"search_runs found {len(runs)} runs, expected {expected}")
    return seconds


@dataclass
class Concurrent:
    sent: int
    found: int
    errors: int
    p99: float
    median: float
    seconds: float
    first_error: str


def measure_concurrent(client: MlflowClient, size: Size) -> Concurrent:
    experiment = new_experiment(client, "writers")
    run_ids = [client.create_run(experiment).info.run_id for _ in range(size.writers)]
    latencies: list[float] = []
    errors: list[str] = []
    sent = [0] * size.writers
    lock = threading.Lock()
    go = threading.Barrier(size.writers)

    def writer(w: int) -> None:
        go.wait()
        for b in range(size.writer_batches):
            metrics = batch_of("w", b * BATCH)
            started = time.perf_counter()
            try:
                client.log_batch(run_ids[w], metrics=metrics)
            except Exception as error:  # counted, not fatal
                with lock:
                    errors.append(f"{type(error).__name__}: {error}"[:300])
                continue
            finally:
                with lock:
                    latencies.append(time.perf_counter() - started)
            sent[w] += len(metrics)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(size.writers)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    found = sum(len(client.get_metric_history(r, "w")) for r in run_ids)
    total = size.writers * size.writer_batches * BATCH
    return Concurrent(
        sent=total,
        found=found,
        errors=len(errors),
        p99=quantile(latencies, 0.99),
        median=statistics.median(latencies),
        seconds=seconds,
        first_error=errors[0] if errors else "",
    )


def measure_native(server: Server, size: Size) -> float:
    """The Shipyard SDK's own path: log_metric in a loop, flush, points per second."""
    ws = Client(f"http://127.0.0.1:{server.port}", token=server.token).workspace(WORKSPACE)
    run = ws.start_run(experiment="native", name="ingest")
    try:
        started = time.perf_counter()
        for step in range(size.native_points):
            run.log_metric("loss", step * 1e-6, step=step)
        run.flush()
        seconds = time.perf_counter() - started
    finally:
        run.end()
    got = len(ws.jobs.get_metric_history(run.id, "loss"))
    if got != size.native_points:
        raise RuntimeError(f"native run stored {got} of {size.native_points} points")
    return size.native_points / seconds


# --- orchestration ------------------------------------------------------------------------


def attempt(
    server: Server, measure: str, call: Callable[..., object], *args: object
) -> object | None:
    """Run one measurement; a failure is recorded as not supported and the run goes on."""
    if measure in server.errors:
        return None
    try:
        return call(*args)
    except Exception as error:  # reported as "not supported yet"
        server.errors[measure] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        return None


def rotations(servers: list[Server], repetitions: int) -> Iterator[list[Server]]:
    for rep in range(repetitions):
        k = rep % len(servers)
        yield servers[k:] + servers[:k]


def collect(server: Server, measure: str, value: object | None) -> None:
    if value is not None:
        server.results.setdefault(measure, [])
        values = server.results[measure]
        assert isinstance(values, list)
        values.append(value)


MEASURES = ("ingest", "single", "create", "history", "search", "concurrent", "native")
# What the client floor is measured for: one client's own calls, one at a time.
FLOOR_MEASURES = frozenset({"ingest", "single", "create", "history", "search"})


def run_workload(
    servers: list[Server],
    size: Size,
    log: Callable[[str], None],
    only: frozenset[str] = frozenset(MEASURES),
) -> None:
    clients = {s.label: s.client for s in servers}

    def each(measure: str, reps: int, call: Callable[[Server, MlflowClient], object]) -> None:
        if measure not in only:
            return
        log(f"{measure}...")
        measured = [s for s in servers if s.kind != "floor" or measure in FLOOR_MEASURES]
        for server in measured:
            if server.kind == "floor":  # untimed: the replay server keeps the answers
                attempt(server, measure, call, server, clients[server.label]())
        for order in rotations(measured, reps):
            for server in order:
                client = clients[server.label]()  # a fresh client object every time
                collect(server, measure, attempt(server, measure, call, server, client))

    each("ingest", size.repetitions, lambda s, c: measure_ingest(c, size))
    each("single", size.repetitions, lambda s, c: measure_single(c, size))
    each("create", size.repetitions, lambda s, c: measure_create(c, size))

    history_runs: dict[str, str | None] = {}
    searches: dict[str, tuple[str, int] | None] = {}
    for server in servers:
        if server.kind == "floor":
            continue  # it answers what Shipyard answered: Shipyard's runs, below
        client = clients[server.label]()
        if "history" in only:
            log(f"seeding history on {server.label}...")
            run_id = attempt(server, "history", seed_history, client, size)
            history_runs[server.label] = run_id if isinstance(run_id, str) else None
        if "search" in only:
            log(f"seeding search on {server.label}...")
            seeded = attempt(server, "search", seed_search, client, size)
            searches[server.label] = seeded if isinstance(seeded, tuple) else None

    upstream = next((s for s in servers if s.kind == "shipyard"), None)
    for server in servers:
        if server.kind == "floor" and upstream is not None:
            history_runs[server.label] = history_runs.get(upstream.label)
            searches[server.label] = searches.get(upstream.label)

    def history(server: Server, client: MlflowClient) -> float:
        run_id = history_runs[server.label]
        assert run_id is not None
        return measure_history(client, run_id, size)

    def search(server: Server, client: MlflowClient) -> float:
        seeded = searches[server.label]
        assert seeded is not None
        return measure_search(client, *seeded)

    each("history", size.repetitions, history)
    each("search", size.search_repetitions, search)
    each("concurrent", 1, lambda s, c: measure_concurrent(c, size))

    for server in servers:
        if server.kind == "shipyard" and "native" in only:
            log("native SDK ingest...")
            collect(server, "native", attempt(server, "native", measure_native, server, size))
    for server in servers:
        if server.kind != "floor":
            collect(server, "memory", memory_mb(server.process.pid))


# --- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    value: Callable[[Server], float | None]
    fmt: str = "{:,.0f}"


def median_of(measure: str) -> Callable[[Server], float | None]:
    def get(server: Server) -> float | None:
        values = server.results.get(measure)
        if not values:
            return None
        assert isinstance(values, list)
        return float(statistics.median(values))

    return get


def concurrent_field(name: str) -> Callable[[Server], float | None]:
    def get(server: Server) -> float | None:
        values = server.results.get("concurrent")
        if not values:
            return None
        assert isinstance(values, list)
        return float(getattr(values[0], name))

    return get


def memory_field(index: int) -> Callable[[Server], float | None]:
    def get(server: Server) -> float | None:
        values = server.results.get("memory")
        if not values:
            return None
        assert isinstance(values, list)
        return float(values[0][index])

    return get


ROWS = [
    Row("ingest", "1. log_batch ingest", "points/s", True, median_of("ingest")),
    Row("single", "2. single log_metric", "calls/s", True, median_of("single"), "{:,.1f}"),
    Row("create", "3. create_run", "runs/s", True, median_of("create"), "{:,.1f}"),
    Row("history", "4. get_metric_history", "s", False, median_of("history"), "{:,.3f}"),
    Row("search", "5. search_runs with a filter", "s", False, median_of("search"), "{:,.3f}"),
    Row("sent", "6. concurrent: points sent", "points", True, concurrent_field("sent")),
    Row("found", "6. concurrent: points found", "points", True, concurrent_field("found")),
    Row("errors", "6. concurrent: errors", "", False, concurrent_field("errors")),
    Row("p99", "6. concurrent: batch p99", "s", False, concurrent_field("p99"), "{:,.3f}"),
    Row("p50", "6. concurrent: batch median", "s", False, concurrent_field("median"), "{:,.3f}"),
    Row("memory", "7. server RSS at the end", "MB", False, memory_field(0)),
    Row("pss", "7. server PSS at the end", "MB", False, memory_field(1)),
    Row("procs", "7. server processes", "", False, memory_field(2)),
]


def ratio_text(row: Row, shipyard: float | None, best: float | None) -> str:
    if shipyard is None or best is None or row.key in ("sent", "found", "errors", "procs"):
        return ""
    if shipyard == 0 or best == 0:
        return ""
    # Always "how many times better Shipyard is" (>1 = Shipyard better).
    factor = shipyard / best if row.higher_is_better else best / shipyard
    return f"{factor:.2f}x"


def report(args: argparse.Namespace, size: Size, servers: list[Server], store: str) -> None:
    mlflows = [s for s in servers if s.kind == "mlflow"]
    shipyard_server = next(s for s in servers if s.kind == "shipyard")
    floor = next((s for s in servers if s.kind == "floor"), None)
    print()
    print(
        f"tracking benchmark: Shipyard {shipyard.__version__} ({store}) vs MLflow "
        f"{mlflow.__version__} server (sqlite), same mlflow client"
        + (" [smoke: no meaningful timing]" if args.smoke else "")
    )
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, {size.repetitions} "
        f"interleaved repetitions (medians); ingest {size.batches} x {BATCH} points, "
        f"{size.single} log_metric calls, {size.runs} runs, history {size.history:,} points, "
        f"search over {size.search_runs:,} runs (median of {size.search_repetitions}), "
        f"{size.writers} writers x {size.writer_batches} x {BATCH} points"
    )
    print()
    width = 20
    header = f"{'measure':<32}{'unit':<10}"
    header += "".join(f"{s.label:>{width}}" for s in servers)
    header += f"{'Shipyard vs best':>{width}}"
    header += f"{'ceiling':>{width}}" if floor is not None else ""
    print(header)
    verdicts = []
    for row in ROWS:
        cells = []
        values: dict[str, float | None] = {}
        for server in servers:
            value = row.value(server)
            values[server.label] = value
            cell = row.fmt.format(value) if value is not None else "n/a"
            measure = "concurrent" if row.key in ("sent", "found", "errors", "p99", "p50") else ""
            measure = measure or ("memory" if row.key in ("memory", "pss", "procs") else row.key)
            if value is None and measure in server.errors:
                cell = "not supported yet"
            cells.append(cell)
        mlflow_values = [values[s.label] for s in mlflows if values[s.label] is not None]
        best = None
        if mlflow_values:
            best = max(mlflow_values) if row.higher_is_better else min(mlflow_values)  # type: ignore[type-var]
        mine = values[shipyard_server.label]
        ratio = ratio_text(row, mine, best)
        lowest = values[floor.label] if floor is not None else None
        ceiling = ratio_text(row, lowest, best)
        print(
            f"{row.label:<32}{row.unit:<10}"
            + "".join(f"{c:>{width}}" for c in cells)
            + f"{ratio:>{width}}"
            + (f"{ceiling:>{width}}" if floor is not None else "")
        )
        if row.key in TARGETS and mine is not None and best:
            factor = mine / best if row.higher_is_better else best / mine
            limit = None
            if lowest:
                limit = lowest / best if row.higher_is_better else best / lowest
            verdicts.append((row.label, factor, TARGETS[row.key], limit))
    native = median_of("native")(shipyard_server)
    native_text = f"{native:,.0f}" if native is not None else "n/a"
    if native is None and "native" in shipyard_server.errors:
        native_text = "not supported yet"
    print(f"{'8. native SDK ingest (Shipyard)':<32}{'points/s':<10}{native_text:>{width}}")

    print()
    print("targets (Shipyard vs the better of MLflow's two modes, same run):")
    for label, factor, target, limit in verdicts:
        verdict = "met" if factor >= target else "MISSED"
        if factor < target and limit is not None and limit < target:
            verdict += f" (above the client's ceiling, {limit:.2f}x)"
        print(f"  {label:<32} {factor:6.2f}x better, target >= {target:.0f}x: {verdict}")
    conc = shipyard_server.results.get("concurrent")
    if isinstance(conc, list) and conc:
        c = conc[0]
        ok = c.found == c.sent and c.errors == 0
        print(
            f"  {'6. concurrent: zero lost, zero errors':<32} lost {c.sent - c.found}, errors "
            f"{c.errors}: {'met' if ok else 'MISSED'}"
        )
    if native is not None:
        verdict = "met" if native >= NATIVE_TARGET else "MISSED"
        print(
            f"  {'8. native SDK ingest':<32} {native:,.0f} points/s, target >= 200,000: {verdict}"
        )
    problems = [(s.label, m, e) for s in servers for m, e in s.errors.items()]
    for s in servers:
        conc = s.results.get("concurrent")
        if isinstance(conc, list) and conc and conc[0].first_error:
            problems.append((s.label, "concurrent (first error)", conc[0].first_error))
    if problems:
        print()
        print("not supported yet / failed:")
        for label, measure, error in problems:
            print(f"  {label}: {measure}: {error}")


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no meaningful timing")
    parser.add_argument(
        "--db-url",
        help="a PostgreSQL server URL for Shipyard (MLflow stays on SQLite); a fresh database "
        "is created on it and dropped after",
    )
    parser.add_argument("--repetitions", type=int, help="interleaved repetitions per measure")
    parser.add_argument("--batches", type=int, help="ingest: batches of 1,000 points")
    parser.add_argument("--single", type=int, help="single log_metric calls")
    parser.add_argument("--runs", type=int, help="create_run calls")
    parser.add_argument("--history", type=int, help="points read by get_metric_history")
    parser.add_argument("--search-runs", type=int, help="runs the search goes over")
    parser.add_argument("--search-repetitions", type=int, help="searches timed (median)")
    parser.add_argument("--writers", type=int, help="concurrent writers")
    parser.add_argument("--writer-batches", type=int, help="batches of 1,000 per writer")
    parser.add_argument("--native-points", type=int, help="points through the native SDK")
    parser.add_argument(
        "--only",
        help="comma-separated measures to run (default all): " + ", ".join(MEASURES),
    )
    parser.add_argument(
        "--mlflow-defaults",
        action=argparse.BooleanOptionalAction,
        help="also run MLflow with its default workers (default: yes, except with --smoke)",
    )
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure the client's floor against an instant replay server (default: yes)",
    )
    args = parser.parse_args(argv)
    only = frozenset(MEASURES if not args.only else args.only.split(","))
    if not only <= set(MEASURES):
        parser.error(f"--only takes {', '.join(MEASURES)}, not {', '.join(only - set(MEASURES))}")
    size = SMOKE if args.smoke else FULL
    overrides = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(Size)
        if getattr(args, f.name, None) is not None
    }
    size = dataclasses.replace(size, **overrides)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    servers: list[Server] = []
    with (
        tempfile.TemporaryDirectory(prefix="shipyard-bench-tracking-") as tmp,
        fresh_database(args.db_url, Path(tmp)) as url,
    ):
        folder = Path(tmp)
        store = make_url(url).get_backend_name()
        try:
            with_defaults = not args.smoke if args.mlflow_defaults is None else args.mlflow_defaults
            if with_defaults:
                servers.append(start_mlflow(folder / "mlflow-default", "MLflow defaults", None))
            servers.append(start_mlflow(folder / "mlflow-w1", "MLflow --workers 1", 1))
            servers.append(start_shipyard(folder / "shipyard", args.db_url and url))
            if args.floor:
                servers.append(start_floor(folder / "floor", servers[-1]))
            log("starting servers: " + ", ".join(s.label for s in servers))
            for server in servers:
                wait_ready(server)
            run_workload(servers, size, log, only)
        finally:
            for server in servers:
                stop(server)
    report(args, size, servers, store)
    return 0


if __name__ == "__main__":
    sys.exit(main())
