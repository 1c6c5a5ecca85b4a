"""Environment builds: Shipyard's builder against a bare ``uv venv && uv pip install``.

The spec is the environment line of the jobs issue's "Performance" section. One command,
one run:

1. **First build** of an environment with scikit-learn and pandas through the builder
   (``EnvironmentBuilder.ensure`` of a spec not built yet: the hash, the lock, the metadata
   rows, ``uv python find``, ``uv venv --relocatable``, ``uv pip install`` from a
   requirements file, the rename into place, the size walk) against what a person would
   type, ``uv venv --python 3.X DIR && uv pip install --python DIR/bin/python scikit-learn
   pandas``, interleaved. One builder object serves every repetition, as one serves a server
   for its lifetime: its first build finds the Python interpreter (``uv python find``, slow
   where pyenv shims are on PATH), later ones remember it. Both use one private ``UV_CACHE_DIR``,
   warmed once before timing (so neither pays for downloads); with ``--cold`` the cache is
   emptied before every build of either kind instead (downloads included). Target: the
   builder within 1.5x of bare uv.
2. **Cache hit**: ``ensure`` on a spec that is built (a shared lock, a folder check, a
   last-used update in the database). Target: under 200 ms.

    python benchmarks/environments.py               # scikit-learn + pandas, 3 repetitions
    python benchmarks/environments.py --smoke       # one tiny package, no meaningful timing
    python benchmarks/environments.py --cold        # empty uv cache before every build
    python benchmarks/environments.py --db-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from authz import fresh_database  # benchmarks/authz.py

from shipyard.compute.environments import EnvironmentBuilder, find_uv, folder_size
from shipyard.domain.environments import parse_spec
from shipyard.store import migrate
from shipyard.store.database import Database

BUILD_TARGET = 1.5  # the builder's first build within 1.5x of bare uv
HIT_TARGET_MS = 200.0


@dataclass(frozen=True)
class Size:
    packages: tuple[str, ...]
    repetitions: int
    hits: int


FULL = Size(packages=("scikit-learn", "pandas"), repetitions=3, hits=50)
SMOKE = Size(packages=("six",), repetitions=1, hits=5)


@dataclass
class Results:
    bare_s: list[float]
    builder_s: list[float]
    hit_ms: list[float]
    env_mb: float


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def uv_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PYTHON")}
    env.update({"UV_CACHE_DIR": str(cache), "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"})
    return env


def bare_uv(uv: str, python: str, folder: Path, packages: tuple[str, ...], cache: Path) -> None:
    """What a person would type: a venv for a Python version, then the packages into it."""
    env = uv_env(cache)
    venv = [uv, "venv", "-q", "--python", python, "--python-preference", "only-system"]
    subprocess.run([*venv, str(folder)], env=env, check=True, cwd=folder.parent)  # noqa: S603
    target = str(folder / "bin" / "python")
    install = [uv, "pip", "install", "-q", "--python", target, *packages]
    subprocess.run(install, env=env, check=True, cwd=folder.parent)  # noqa: S603


def measure(db: Database, work: Path, size: Size, *, cold: bool) -> Results:
    uv = find_uv()
    cache = work / "uv-cache"
    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    spec = parse_spec(python=python, pip_requirements=list(size.packages))

    def fresh_cache() -> None:
        if cold:
            shutil.rmtree(cache, ignore_errors=True)

    if not cold:
        log(f"warming the private uv cache with {' '.join(size.packages)}")
        bare_uv(uv, python, work / "warm", size.packages, cache)
        shutil.rmtree(work / "warm")
    bare_s: list[float] = []
    builder_s: list[float] = []
    # One builder, as a server has one for its lifetime (it finds each Python version once).
    builder = EnvironmentBuilder(
        db, work / "registry", max_bytes=10**12, extra_env={"UV_CACHE_DIR": str(cache)}
    )
    prefix = builder.root / builder.spec_hash(spec)
    for repetition in range(size.repetitions):
        order = ("bare", "builder") if repetition % 2 == 0 else ("builder", "bare")
        for kind in order:
            fresh_cache()
            if kind == "bare":
                folder = work / f"bare-{repetition}"
                bare_s.append(timed(lambda f=folder: bare_uv(uv, python, f, size.packages, cache)))
                log(f"repetition {repetition + 1}: bare uv {bare_s[-1]:.2f} s")
                shutil.rmtree(folder)
                continue
            # The last repetition's build removed (not timed): a first build, not a cache hit.
            shutil.rmtree(prefix, ignore_errors=True)
            builder_s.append(timed(lambda: builder.ensure(spec)))
            log(f"repetition {repetition + 1}: builder {builder_s[-1]:.2f} s")
    built = builder.ensure(spec)
    env_mb = folder_size(built.prefix) / 1e6
    hit_ms = [timed(lambda: builder.ensure(spec)) * 1000 for _ in range(size.hits)]
    return Results(bare_s, builder_s, hit_ms, env_mb)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny package, no timing")
    parser.add_argument("--cold", action="store_true", help="empty uv's cache before each build")
    parser.add_argument("--repetitions", type=int, help="builds of each kind (medians)")
    parser.add_argument(
        "--db-url",
        help="a PostgreSQL server URL for Shipyard (a fresh database is made there and dropped)",
    )
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else FULL
    if args.repetitions:
        size = Size(size.packages, args.repetitions, size.hits)
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="shipyard-bench-environments-") as tmp,
        fresh_database(args.db_url, Path(tmp)) as db_url,
    ):
        db = Database(db_url)
        try:
            migrate.upgrade(db.engine)
            results = measure(db, Path(tmp), size, cold=args.cold)
        finally:
            db.dispose()
    store = "postgresql" if args.db_url else "sqlite"
    report(size, results, store, args.cold, (load_before, os.getloadavg()))
    return 0


def report(
    size: Size,
    results: Results,
    store: str,
    cold: bool,
    loads: tuple[tuple[float, float, float], tuple[float, float, float]],
) -> None:
    uv_version = subprocess.run(  # noqa: S603  (uv's own binary, fixed arguments)
        [find_uv(), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    bare = statistics.median(results.bare_s)
    builder = statistics.median(results.builder_s)
    hits = sorted(results.hit_ms)
    hit = statistics.median(hits)
    p95 = hits[min(len(hits) - 1, int(len(hits) * 0.95))]
    packages = " ".join(size.packages)
    cache = "emptied before every build" if cold else "private, warmed once"
    print(f"environments benchmark ({store}): {packages}; {uv_version}; uv cache {cache}")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {size.repetitions} "
        f"repetitions, {size.hits} cache hits (medians); environment {results.env_mb:.0f} MB"
    )
    print(f"load average {loads[0][0]:.2f} before, {loads[1][0]:.2f} after")
    print()
    bare_runs = ", ".join(f"{t:.2f}" for t in results.bare_s)
    builder_runs = ", ".join(f"{t:.2f}" for t in results.builder_s)
    ratio = f"{builder / bare:.2f}x"
    rows = [
        ("1. bare uv venv + uv pip install", f"{bare:.2f} s", "", bare_runs),
        ("1. Shipyard builder, first build", f"{builder:.2f} s", ratio, builder_runs),
        ("2. cache hit (ensure on a built spec)", f"{hit:.1f} ms", "", f"p95 {p95:.1f} ms"),
    ]
    print(f"{'measure':40} {'median':>10} {'vs bare uv':>11}  runs")
    for name, value, ratio, detail in rows:
        print(f"{name:40} {value:>10} {ratio:>11}  {detail}")
    print()
    print("targets (same run):")
    checks = [
        (
            f"first build within {BUILD_TARGET}x of bare uv",
            f"{builder / bare:.2f}x",
            builder / bare <= BUILD_TARGET,
        ),
        (f"cache hit under {HIT_TARGET_MS:.0f} ms", f"{hit:.1f} ms", hit < HIT_TARGET_MS),
    ]
    for name, value, met in checks:
        print(f"  {name}: {value}: {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
