"""Moving files: Shipyard's storage path against a plain copy and against MLflow's server.

The spec is the "Performance" section of the data issue. One command, one run:

1. **A big file** (``--size-mb``, 1 GiB by default) uploaded to a run's artifacts through the
   REST API (the SDK's streamed PUT) and downloaded back (streamed GET), each timed, against a
   plain local copy of the same file on the same disk (``shutil.copyfile`` + fsync) in the
   same run. Target: each direction at least 50% of the copy's throughput. The Shipyard
   server's RSS is sampled while the file moves: it must grow by less than 100 MiB (the file
   is streamed, never held). The server's CPU time per GiB is printed too: on a shared
   machine it is steadier than the throughput, which it decides once both cores are busy.
   Every timed transfer, the copy included, starts from the same state: nothing left to
   write back, and memory that was in use a moment ago to write into (``settle``); the
   uploaded file is deleted after each repetition, and one untimed round of every transfer
   comes first (``warm_up``).
2. **A folder of many small files** (``--files``, 10,000 by default) registered as a
   ``uri_folder`` data asset through the SDK (``ws.data.create``: content-hashed, small files
   sent in bundles, several requests at once) against ``mlflow.log_artifacts`` of the same
   folder to an ``mlflow server --serve-artifacts`` in the same run: the MLflow client sends
   every file through the server's artifact proxy (``mlflow-artifacts:/``), as a remote
   client would. Target: at least 3x faster.

Both servers are separate processes on 127.0.0.1 with their own temporary folders (under
``$TMPDIR``: file creation costs differ a lot between file systems, so the run prints where it
worked). The machine's load average is printed before and after: on a shared machine the
same-run ratios are what to compare, not the absolute figures.

    python benchmarks/storage.py               # full sizes, a few minutes
    python benchmarks/storage.py --smoke       # tiny sizes, no meaningful timing
    python benchmarks/storage.py --db-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mlflow
from authz import free_port, fresh_database  # benchmarks/authz.py
from tracking import (  # benchmarks/tracking.py: the same server helpers
    WORKSPACE,
    Server,
    process_tree,
    start_shipyard,
    stop,
    wait_ready,
)

from shipyard.sdk.client import Client
from shipyard.sdk.workspaces import WorkspaceHandle

COPY_TARGET = 0.5  # each direction at least half a plain copy's throughput
MEMORY_LIMIT_MB = 100.0
FOLDER_TARGET = 3.0


@dataclass(frozen=True)
class Size:
    size_mb: int
    files: int
    file_bytes: int
    repetitions: int


FULL = Size(size_mb=1024, files=10_000, file_bytes=1024, repetitions=3)
SMOKE = Size(size_mb=4, files=20, file_bytes=256, repetitions=1)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_big_file(path: Path, size_mb: int) -> None:
    block = os.urandom(1024 * 1024)
    with path.open("wb") as out:
        for i in range(size_mb):
            # Vary every block a little so nothing along the way can deduplicate it.
            out.write(i.to_bytes(8, "little") + block[8:])


def make_folder(folder: Path, files: int, file_bytes: int) -> None:
    for i in range(files):
        sub = folder / f"part-{i % 100:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"row-{i:05d}.csv").write_bytes(os.urandom(file_bytes // 2).hex().encode())


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def plain_copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    with target.open("rb+") as handle:
        os.fsync(handle.fileno())


def settle(spare: Path, source: Path) -> None:
    """Bring the machine to the same state before every timed transfer (untimed).

    Nothing is left to write back (``os.sync``): otherwise a transfer pays for the last
    one's dirty pages, which the kernel flushes meanwhile on the same disk. And the memory
    the transfer writes into was in use a moment ago: a file of the same size is written and
    deleted first. On this virtual machine, pages nobody has touched since boot (or that sat
    free for a few seconds, when the guest hands them back to the host) cost far more to
    fault in than pages freed just now: a download into such memory took twice as long as
    the same download right after a delete, and a download follows an upload, which freed
    nothing. A machine that has run a while has its memory in use, as this makes it."""
    shutil.copyfile(source, spare)
    os.sync()
    spare.unlink()
    os.sync()


def start_mlflow_proxy(folder: Path) -> Server:
    """``mlflow server`` serving artifacts itself: with no ``--default-artifact-root`` its runs
    store under ``mlflow-artifacts:/``, so the client sends every file over HTTP through the
    server (a local root would let the client copy files on the disk, which no remote client
    can do)."""
    folder.mkdir(parents=True)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{folder / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(folder / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "SHIPYARD_"))}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", PYTHONUNBUFFERED="1")
    log_file = folder / "server.log"
    with log_file.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter, fixed arguments)
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    uri = f"http://127.0.0.1:{port}"
    return Server("MLflow --serve-artifacts", "mlflow", process, port, uri, log_file)


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU time the processes have used so far (their threads included)."""
    ticks = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@contextmanager
def peak_rss(pid: int) -> Iterator[list[float]]:
    """Samples the process tree's RSS every 50 ms while the block runs: [baseline, peak].
    The tree is found once: walking all of /proc every sample would take the benchmark's own
    interpreter away from the transfer it measures."""
    pids = process_tree(pid)
    found = [rss_mb(pids), 0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            found[1] = max(found[1], rss_mb(pids))
            done.wait(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        done.set()
        thread.join()
        found[1] = max(found[1], rss_mb(pids))


@dataclass
class BigFile:
    copy_s: list[float]
    upload_s: list[float]
    download_s: list[float]
    rss_growth_mb: float
    # The server's CPU time per transfer: steadier than wall time on a shared machine, and
    # what decides the throughput when both cores are busy.
    upload_cpu_s: list[float]
    download_cpu_s: list[float]


def warm_up(ws: WorkspaceHandle, source: Path, spare: Path, folder: Path) -> None:
    """One untimed round of every transfer first. On this virtual machine the first GiBs a
    fresh server moves run into memory nobody has touched since boot, which the host backs
    only then: the first one or two uploads of a run took 1.5 s where the rest took 0.9-1.1
    s with the same server CPU per GiB. A server that has run a while has its memory in use."""
    settle(spare, source)
    plain_copy(source, folder / "warm.bin")
    (folder / "warm.bin").unlink()
    with ws.start_run(experiment="storage-bench-warm-up") as run:
        run.log_artifact(source)
        files = ws.jobs.artifacts(run.id)
        files.download("big.bin", folder / "warm")
        files.delete("big.bin")
    shutil.rmtree(folder / "warm")


def measure_big_file(server: Server, folder: Path, size: Size) -> BigFile:
    source, spare = folder / "big.bin", folder / "spare.bin"
    make_big_file(source, size.size_mb)
    client = Client(f"http://127.0.0.1:{server.port}", server.token)
    ws = client.workspace(WORKSPACE)
    result = BigFile([], [], [], 0.0, [], [])
    pids = process_tree(server.process.pid)
    warm_up(ws, source, spare, folder)
    for repetition in range(size.repetitions):
        target = folder / f"copy-{repetition}.bin"
        # Each transfer starts from the same state, whatever came before it (see settle).
        settle(spare, source)
        result.copy_s.append(timed(partial(plain_copy, source, target)))
        target.unlink()
        back = folder / f"back-{repetition}"
        with ws.start_run(experiment="storage-bench") as run:
            files = ws.jobs.artifacts(run.id)
            with peak_rss(server.process.pid) as rss:
                settle(spare, source)
                before = cpu_seconds(pids)
                result.upload_s.append(timed(partial(run.log_artifact, source)))
                uploaded = cpu_seconds(pids)
                settle(spare, source)
                downloading = cpu_seconds(pids)
                result.download_s.append(timed(partial(files.download, "big.bin", back)))
                result.upload_cpu_s.append(uploaded - before)
                result.download_cpu_s.append(cpu_seconds(pids) - downloading)
                # The stored copy goes too: every repetition starts with the same memory in
                # use, not one more GiB of cached files each time (see settle).
                files.delete("big.bin")
            result.rss_growth_mb = max(result.rss_growth_mb, rss[1] - rss[0])
        log(
            f"repetition {repetition + 1}: copy {result.copy_s[-1]:.2f} s, upload "
            f"{result.upload_s[-1]:.2f} s ({result.upload_cpu_s[-1]:.2f} s server CPU), "
            f"download {result.download_s[-1]:.2f} s ({result.download_cpu_s[-1]:.2f} s)"
        )
        if not filecmp.cmp(back / "big.bin", source, shallow=False):
            raise RuntimeError("the downloaded file differs from the uploaded one")
        shutil.rmtree(back)
    source.unlink()
    return result


def measure_folder(
    mlflow_server: Server, shipyard: Server, folder: Path, size: Size
) -> tuple[list[float], list[float]]:
    data = folder / "small-files"
    make_folder(data, size.files, size.file_bytes)
    mlflow_times: list[float] = []
    shipyard_times: list[float] = []
    client = Client(f"http://127.0.0.1:{shipyard.port}", shipyard.token)
    ws = client.workspace(WORKSPACE)
    for repetition in range(size.repetitions):
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        mlflow.set_tracking_uri(mlflow_server.tracking_uri)
        with mlflow.start_run() as run:
            if not run.info.artifact_uri.startswith("mlflow-artifacts:"):
                raise RuntimeError(f"MLflow is not proxying artifacts: {run.info.artifact_uri}")
            mlflow_times.append(timed(partial(mlflow.log_artifacts, str(data))))
        # A different folder each repetition: the content hash must not find the last one.
        (data / "repetition.txt").write_text(str(repetition))
        create = partial(ws.data.create, name="small-files", path=str(data), type="uri_folder")
        shipyard_times.append(timed(create))
    shutil.rmtree(data)
    return mlflow_times, shipyard_times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no meaningful timing")
    parser.add_argument("--size-mb", type=int, help="the big file's size in MiB")
    parser.add_argument("--files", type=int, help="small files in the folder")
    parser.add_argument("--repetitions", type=int, help="repetitions (medians)")
    parser.add_argument(
        "--db-url",
        help="a PostgreSQL server URL for Shipyard (a fresh database is made there and dropped)",
    )
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else FULL
    size = Size(
        size_mb=args.size_mb or size.size_mb,
        files=args.files or size.files,
        file_bytes=size.file_bytes,
        repetitions=args.repetitions or size.repetitions,
    )
    servers: list[Server] = []
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="shipyard-bench-storage-") as tmp,
        fresh_database(args.db_url, Path(tmp)) as db_url,
    ):
        folder = Path(tmp)
        try:
            # Listed as soon as started: whatever fails next, both are stopped.
            servers.append(start_shipyard(folder / "shipyard", args.db_url and db_url))
            servers.append(start_mlflow_proxy(folder / "mlflow"))
            shipyard, mlflow_server = servers
            log("starting servers")
            for server in servers:
                wait_ready(server)
            log(f"big file: {size.size_mb} MiB x {size.repetitions}")
            big = measure_big_file(shipyard, folder, size)
            log(f"folder: {size.files} files x {size.repetitions}")
            mlflow_times, shipyard_times = measure_folder(mlflow_server, shipyard, folder, size)
        finally:
            for server in servers:
                stop(server)
    store = "postgresql" if args.db_url else "sqlite"
    report(size, big, mlflow_times, shipyard_times, store, (load_before, os.getloadavg()))
    return 0


def report(
    size: Size,
    big: BigFile,
    mlflow_times: list[float],
    shipyard_times: list[float],
    store: str,
    loads: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> None:
    mib = size.size_mb
    copy = mib / statistics.median(big.copy_s)
    up = mib / statistics.median(big.upload_s)
    down = mib / statistics.median(big.download_s)
    ml, sy = statistics.median(mlflow_times), statistics.median(shipyard_times)
    cpu_up = statistics.median(big.upload_cpu_s) * 1024 / mib
    cpu_down = statistics.median(big.download_cpu_s) * 1024 / mib
    print(
        f"storage benchmark: Shipyard {shipyard_version()} ({store}) vs a plain copy and "
        f"MLflow {mlflow.__version__} --serve-artifacts"
    )
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
        f"{size.repetitions} repetitions (medians)"
    )
    print(
        f"working folder {tempfile.gettempdir()}; "
        f"load average {loads[0][0]:.2f} before, {loads[1][0]:.2f} after"
    )
    print()
    files = f"{size.files} files"
    rows = [
        (f"1. plain local copy of {mib} MiB", f"{copy:,.0f} MB/s", ""),
        ("1. upload through the API", f"{up:,.0f} MB/s", f"{up / copy:.2f}x"),
        ("1. download through the API", f"{down:,.0f} MB/s", f"{down / copy:.2f}x"),
        ("1. server RSS growth while moving", f"{big.rss_growth_mb:,.1f} MB", ""),
        ("1. server CPU per GiB uploaded", f"{cpu_up:.2f} s", ""),
        ("1. server CPU per GiB downloaded", f"{cpu_down:.2f} s", ""),
        (f"2. mlflow.log_artifacts, {files}", f"{ml:.2f} s", ""),
        (f"2. ws.data.create, {files}", f"{sy:.2f} s", f"{ml / sy:.2f}x"),
    ]
    print(f"{'measure':44} {'value':>14} {'vs baseline':>12}")
    for name, value, ratio in rows:
        print(f"{name:44} {value:>14} {ratio:>12}")
    print()
    print("targets (same run):")
    checks = [
        (f"upload >= {COPY_TARGET:.0%} of a copy", f"{up / copy:.0%}", up / copy >= COPY_TARGET),
        (
            f"download >= {COPY_TARGET:.0%} of a copy",
            f"{down / copy:.0%}",
            down / copy >= COPY_TARGET,
        ),
        (
            f"server memory grows < {MEMORY_LIMIT_MB:.0f} MiB",
            f"{big.rss_growth_mb:.1f} MB",
            big.rss_growth_mb < MEMORY_LIMIT_MB,
        ),
        (f"folder >= {FOLDER_TARGET:.0f}x MLflow", f"{ml / sy:.2f}x", ml / sy >= FOLDER_TARGET),
    ]
    for name, value, met in checks:
        print(f"  {name}: {value}: {'met' if met else 'MISSED'}")


def shipyard_version() -> str:
    import shipyard

    return shipyard.__version__


if __name__ == "__main__":
    sys.exit(main())
