"""Job start-up and queue speed: Shipyard's local compute beside Ray's own job submission.

    python benchmarks/jobs.py            # full sizes (about two minutes)
    python benchmarks/jobs.py --smoke    # tiny sizes: proves the script still runs

What it measures, in one run (the issue's targets in brackets):

1. A hello-world job (``echo hello``) on local compute with a cached environment, submitted
   through the SDK to a ``shipyard server`` process: submit -> Running and submit ->
   Completed, from the client's clock at submit to the times the server recorded
   [p50 < 150 ms and < 1 s]. The same command through Ray's job submission API on a local
   Ray cluster (started inside a loopback-only network namespace: Ray's servers listen on
   every interface): submit -> RUNNING and -> SUCCEEDED, polled every 10 ms.
2. 500 no-op jobs (``true``) queued over 2 slots from 3 workspaces submitting in bursts
   (300, then 150, then 50): the scheduler's overhead per job -- from a slot coming free (the
   previous job's Completed) to the next job leaving the queue (Preparing) -- and each
   workspace's wait, to show no workspace starves [overhead < 5 ms per job]. Also the
   queue policy alone (``compute.scheduler.pick``) over a 500-job queue, in process.
3. Environment builds are measured by ``benchmarks/environments.py`` (run separately, it
   needs the package index; Ray's part runs without a network).

Nothing is asserted: the script prints medians and ratios, RESULTS.md records them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shipyard.compute.scheduler import Candidate, Capacity, pick
from shipyard.schemas.jobs import JobRead
from shipyard.sdk.client import Client
from shipyard.sdk.jobs import command

TERMINAL = {"Completed", "Failed", "Canceled"}


@dataclass(frozen=True)
class Size:
    hello: int
    ray: int
    queue: tuple[int, int, int]  # jobs per workspace, submitted in this order


FULL = Size(hello=30, ray=10, queue=(300, 150, 50))
SMOKE = Size(hello=3, ray=1, queue=(6, 3, 2))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    token: str
    log: Path


def start_shipyard(folder: Path, db_url: str | None, env_cache: Path) -> Server:
    port = free_port()
    token = "shp_bench-admin-" + uuid.uuid4().hex
    command_line = [
        sys.executable, "-m", "shipyard", "server", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(folder / "data"), "--log-level", "warning",
    ]  # fmt: skip
    if db_url:
        command_line += ["--db-url", db_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(
        SHIPYARD_ADMIN_TOKEN=token,
        SHIPYARD_LOCAL_COMPUTE_CPUS="2",
        SHIPYARD_ENVIRONMENT_CACHE_DIR=str(env_cache),
    )
    out = folder / "server.log"
    with out.open("wb") as handle:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter, fixed arguments)
            command_line, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = Server(process, f"http://127.0.0.1:{port}", token, out)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError("shipyard exited:\n" + out.read_text(errors="replace")[-2000:])
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(server.url + "/health", timeout=2) as answer,  # noqa: S310
        ):
            if answer.status == 200:
                return server
        if time.monotonic() > deadline:
            raise RuntimeError("shipyard did not start")
        time.sleep(0.1)


def stop(server: Server) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)


def when(job: JobRead, status: str) -> datetime:
    return next(change.time for change in job.status_history if change.status == status)


def wait_for(client: Client, workspace: str, name: str, timeout: float = 300) -> JobRead:
    jobs = client.workspace(workspace).jobs
    deadline = time.monotonic() + timeout
    while True:
        job = jobs.get_job(name)
        if job.status in TERMINAL:
            return job
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {name} is still {job.status}")
        time.sleep(0.01)


# -- 1. hello world ---------------------------------------------------------------------------


def measure_hello(client: Client, workspace: str, n: int) -> tuple[list[float], list[float]]:
    to_running: list[float] = []
    to_completed: list[float] = []
    jobs = client.workspace(workspace).jobs
    for _ in range(n):
        sent = datetime.now(UTC)
        job = jobs.create(command(command="echo hello", experiment_name="bench"))
        ended = wait_for(client, workspace, job.name)
        if ended.status != "Completed":
            raise RuntimeError(f"hello-world job ended {ended.status}: {ended.error}")
        to_running.append((when(ended, "Running") - sent).total_seconds())
        to_completed.append((when(ended, "Completed") - sent).total_seconds())
    return to_running, to_completed


def measure_ray(n: int) -> dict[str, list[float]] | str:
    """Ray's own job submission of the same command, in a loopback-only network namespace
    (needs root for ``unshare -n``); the reason it could not run otherwise."""
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return "skipped: needs root and unshare for a loopback-only network namespace"
    script = f"ip link set lo up && exec {sys.executable} {Path(__file__).resolve()} --ray-only {n}"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(  # noqa: S603  (fixed arguments)
        ["unshare", "-n", "bash", "-c", script],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("RAY=")]
    if done.returncode != 0 or not lines:
        return "failed: " + (done.stderr.strip().splitlines() or ["no output"])[-1]
    figures: dict[str, list[float]] = json.loads(lines[-1][len("RAY=") :])
    return figures


def ray_only(n: int) -> None:
    """Inside the namespace: a local Ray cluster, then ``n`` submissions of ``echo hello``."""
    import ray
    from ray.job_submission import JobStatus, JobSubmissionClient

    context = ray.init(
        num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False
    )
    client = JobSubmissionClient(f"http://{context.dashboard_url}")
    running: list[float] = []
    succeeded: list[float] = []
    for _ in range(n + 1):  # the first one warms Ray's job agent up and is not counted
        start = time.monotonic()
        submission = client.submit_job(entrypoint="echo hello", entrypoint_num_cpus=0.1)
        seen_running = None
        while True:
            status = client.get_job_status(submission)
            if status == JobStatus.RUNNING and seen_running is None:
                seen_running = time.monotonic() - start
            if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
                break
            time.sleep(0.01)
        ended = time.monotonic() - start
        running.append(seen_running if seen_running is not None else ended)
        succeeded.append(ended)
    ray.shutdown()
    print("RAY=" + json.dumps({"running": running[1:], "succeeded": succeeded[1:]}), flush=True)


# -- 2. the queue ------------------------------------------------------------------------------


@dataclass
class QueueResult:
    overheads_ms: list[float]
    waits: dict[str, list[float]]  # per workspace: queued -> Preparing, seconds
    first_start: dict[str, float]  # per workspace: its first submit -> its first start
    total_seconds: float
    jobs: int
    failed: int


def measure_queue(client: Client, workspaces: list[str], counts: tuple[int, ...]) -> QueueResult:
    names: list[tuple[str, str, datetime]] = []
    start = time.monotonic()
    for workspace, count in zip(workspaces, counts, strict=True):
        jobs = client.workspace(workspace).jobs
        for _ in range(count):
            sent = datetime.now(UTC)
            names.append((workspace, jobs.create(command(command="true")).name, sent))
    ended = [(ws, wait_for(client, ws, name, timeout=1800), sent) for ws, name, sent in names]
    total = time.monotonic() - start
    completions = sorted(when(job, "Completed") for _, job, _ in ended if job.status == "Completed")
    overheads: list[float] = []
    waits: dict[str, list[float]] = {ws: [] for ws in workspaces}
    first_start: dict[str, float] = {}
    first_sent: dict[str, datetime] = {}
    for ws, job, sent in ended:
        started = when(job, "Preparing")
        queued = when(job, "Queued")
        waits[ws].append((started - queued).total_seconds())
        first_sent.setdefault(ws, sent)
        delay = (started - first_sent[ws]).total_seconds()
        first_start[ws] = min(first_start.get(ws, delay), delay)
        freed = [c for c in completions if c <= started]
        if freed and freed[-1] >= queued:  # it waited for a slot: time from the slot freeing
            overheads.append((started - freed[-1]).total_seconds() * 1000)
    failed = sum(1 for _, job, _ in ended if job.status != "Completed")
    return QueueResult(overheads, waits, first_start, total, len(ended), failed)


def measure_pick(queue_size: int) -> float:
    """Median time of one ``pick`` over a queue of ``queue_size`` jobs from 3 workspaces, in
    microseconds: the policy's own cost per scheduling decision."""
    now = datetime.now(UTC)
    queue = [
        Candidate(f"j{i}", f"ws{i % 3}", 1, now - timedelta(seconds=queue_size - i), 1.0, 0, 0)
        for i in range(queue_size)
    ]
    times = []
    for _ in range(50):
        begin = time.perf_counter()
        pick(queue, Capacity(1.0, 0, 0), {"ws0": 1}, now)
        times.append((time.perf_counter() - begin) * 1e6)
    return statistics.median(times)


# -- report ------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    parser.add_argument("--db-url", help="PostgreSQL server URL (a fresh database is made)")
    parser.add_argument("--ray-only", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-ray", action="store_true", help="skip Ray's half")
    args = parser.parse_args(argv)
    if args.ray_only is not None:
        ray_only(args.ray_only)
        return 0
    size = SMOKE if args.smoke else FULL
    folder = Path(tempfile.mkdtemp(prefix="shipyard-bench-jobs-"))
    env_cache = Path(tempfile.gettempdir()) / f"shipyard-test-environments-{os.getuid()}"
    with contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(args.db_url)) if args.db_url else None
        server = start_shipyard(folder, db_url, env_cache)
        stack.callback(stop, server)
        client = stack.enter_context(Client(server.url, server.token))
        workspaces = ["bench-a", "bench-b", "bench-c"]
        for workspace in workspaces:
            client.workspaces.create(workspace)
        log("warming up: the first job builds (or finds) the curated environment")
        measure_hello(client, workspaces[0], 1)
        log(f"1. {size.hello} hello-world jobs, one at a time")
        to_running, to_completed = measure_hello(client, workspaces[0], size.hello)
        ray: dict[str, list[float]] | str = "skipped (--no-ray)"
        if not args.no_ray:
            log(f"1. Ray: {size.ray} submissions of the same command (starts a local cluster)")
            ray = measure_ray(size.ray)
        log(f"2. {sum(size.queue)} no-op jobs over 2 slots from 3 workspaces")
        queue = measure_queue(client, workspaces, size.queue)
        pick_us = measure_pick(sum(size.queue))
    shutil.rmtree(folder, ignore_errors=True)
    report(size, to_running, to_completed, ray, queue, pick_us, db_url)
    return 0


@contextlib.contextmanager
def fresh_database(server_url: str):  # type: ignore[no-untyped-def]
    """A new database on the PostgreSQL server for this run, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    name = f"shipyard_bench_{uuid.uuid4().hex[:8]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(
    size: Size,
    to_running: list[float],
    to_completed: list[float],
    ray: dict[str, list[float]] | str,
    queue: QueueResult,
    pick_us: float,
    db_url: str | None,
) -> None:
    backend = "postgresql" if db_url else "sqlite"
    print(f"jobs benchmark ({backend}), {'smoke' if size is SMOKE else 'full'} sizes")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print()
    print("1. hello-world job, submit -> Running / -> Completed (p50, p90)")
    run50, done50 = statistics.median(to_running), statistics.median(to_completed)
    print(
        f"   Shipyard local : {run50 * 1000:8.1f} ms / {done50 * 1000:8.1f} ms   "
        f"(p90 {pct(to_running, 0.9) * 1000:.1f} / {pct(to_completed, 0.9) * 1000:.1f} ms, "
        f"n={len(to_running)})   targets: 150 ms / 1000 ms"
    )
    if isinstance(ray, str):
        print(f"   Ray job submit : {ray}")
    else:
        ray_run, ray_done = statistics.median(ray["running"]), statistics.median(ray["succeeded"])
        print(
            f"   Ray job submit : {ray_run * 1000:8.1f} ms / {ray_done * 1000:8.1f} ms   "
            f"(n={len(ray['running'])})"
        )
        print(
            f"   ratio (Ray / Shipyard): {ray_run / run50:.1f}x to running, "
            f"{ray_done / done50:.1f}x to done"
        )
    print()
    print(f"2. queue: {queue.jobs} no-op jobs over 2 slots, 3 workspaces ({queue.failed} failed)")
    if queue.overheads_ms:
        print(
            f"   scheduler overhead per job (slot free -> next job out of the queue): "
            f"median {statistics.median(queue.overheads_ms):.1f} ms, "
            f"p90 {pct(queue.overheads_ms, 0.9):.1f} ms (n={len(queue.overheads_ms)})   "
            "target: < 5 ms"
        )
    print(f"   queue policy alone, one pick over {queue.jobs} queued: {pick_us:.0f} us")
    print(
        f"   throughput: {queue.jobs / queue.total_seconds:.1f} jobs/s "
        f"({queue.total_seconds:.1f} s in all)"
    )
    for ws, waits in queue.waits.items():
        print(
            f"   {ws}: {len(waits)} jobs, first started {queue.first_start[ws]:.2f} s after its "
            f"first submit, median wait {statistics.median(waits):.2f} s, "
            f"max {max(waits):.2f} s"
        )


if __name__ == "__main__":
    sys.exit(main())
