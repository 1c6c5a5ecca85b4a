"""The environment builder: specs become virtual environments with uv, cached by spec hash.

The registry is a folder, ``<data_dir>/environments``, shared by every workspace (and by
several servers that share the data folder and the database):

    <root>/<spec_hash>/       a finished virtual environment (``bin/python``)
    <root>/.tmp/<hash>-<id>/   a build in progress, renamed into place when complete
    <root>/.locks/<hash>.lock  the per-hash lock (``flock``: works across processes)
    <root>/.trash/             evicted builds on their way out

A finished folder only ever appears by an atomic rename, so "the folder exists" means "the
build is complete". Builds take the hash's lock exclusively: two jobs needing the same
environment build it once (the second waits, then finds it). Using a build takes the lock
shared (``hold``), and eviction only removes a build whose lock it gets exclusively without
waiting, so a build in use or being built is never evicted. ``environment_builds`` keeps
each build's status, log tail, size and last use; least recently used ready builds go when
the total passes the cap.

uv gets argument lists and a requirements file this module writes, never a shell; it may
only use the machine's own Pythons (``--python-preference only-system``, no downloads), and
venvs are ``--relocatable`` so the rename does not break their scripts.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform as platform_module
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from shipyard.compute.containers import ContainerEngine
from shipyard.compute.job_users import reachable_by_all
from shipyard.domain.environments import EnvironmentSpec, Platform, check_pip_policy
from shipyard.domain.errors import EnvironmentBuildError, InvalidInputError
from shipyard.store import environments as store
from shipyard.store.base import utcnow
from shipyard.store.database import Database

LOG_LIMIT = 1_048_576  # bytes of build log kept (the end)
DETAIL_LINES = 25  # lines of the log's end an error message carries
ENGINE_CHECK_SECONDS = 60.0
_LOCKS, _TMP, _TRASH = ".locks", ".tmp", ".trash"
# Variables of the server's own environment that would point uv at the wrong place.
_DROPPED_VARIABLES = ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONHOME", "PYTHONPATH", "UV_PYTHON")

Log = Callable[[str], None]


@dataclass(frozen=True)
class BuiltEnvironment:
    spec_hash: str
    prefix: Path  # the venv folder
    python: Path  # <prefix>/bin/python
    bin_dir: Path  # <prefix>/bin (prepended to PATH in the job)
    cached: bool  # True when it was already built
    image: str | None = None  # an image environment: the job runs in this image instead


@dataclass(frozen=True)
class BuildRecord:
    """What the registry knows of one spec hash (``not_built`` when nothing)."""

    spec_hash: str
    status: str  # not_built | building | ready | failed
    python: str | None = None
    size: int | None = None
    log: str = ""
    error: str | None = None
    created_at: datetime | None = None
    built_at: datetime | None = None
    last_used_at: datetime | None = None
    build_seconds: float | None = None


def default_platform() -> Platform:
    return Platform(
        sys.platform, platform_module.machine(), f"{sys.version_info[0]}.{sys.version_info[1]}"
    )


def find_uv() -> str:
    """The uv binary the ``uv`` package ships (a dependency), else one on PATH."""
    try:
        from uv import find_uv_bin
    except ImportError:  # pragma: no cover - uv is a dependency; a stripped install may lack it
        found = shutil.which("uv")
        if found is None:
            raise RuntimeError("uv is not installed: pip install uv") from None
        return found
    return find_uv_bin()


class _BuildLog:
    """The build's output: passed on line by line, its last ``LOG_LIMIT`` bytes kept."""

    def __init__(self, sink: Log | None) -> None:
        self._sink = sink
        self._lines: deque[str] = deque()
        self._bytes = 0
        self.count = 0  # lines added so far

    def add(self, line: str) -> None:
        self._lines.append(line)
        self.count += 1
        self._bytes += len(line) + 1
        while self._bytes > LOG_LIMIT and len(self._lines) > 1:
            self._bytes -= len(self._lines.popleft()) + 1
        if self._sink is not None:
            self._sink(line)

    def text(self) -> str:
        return "\n".join(self._lines)

    def tail(self, lines: int = DETAIL_LINES, *, since: int = 0) -> str:
        """The last ``lines`` lines, none of those added before line ``since``."""
        wanted = max(0, min(lines, self.count - since))
        return "\n".join(list(self._lines)[len(self._lines) - wanted :]) if wanted else ""


class EnvironmentBuilder:
    """Builds specs into virtual environments under ``root``, once per spec hash."""

    def __init__(
        self,
        db: Database,
        root: Path,
        *,
        max_bytes: int,
        allow_pip_options: bool = False,
        uv: str | None = None,
        platform: Platform | None = None,
        timeout: float = 3600.0,
        engine: ContainerEngine | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.db = db
        self.root = root
        self.max_bytes = max_bytes
        self.allow_pip_options = allow_pip_options
        self.platform = platform or default_platform()
        self.timeout = timeout
        self._uv = uv
        self.engine = engine  # runs image environments; None: they are refused
        self._engine: tuple[float, bool] | None = None
        # Python version -> interpreter: finding one runs every python on PATH (pyenv shims
        # take a fraction of a second each), so it is done once per version.
        self._interpreters: dict[str, str] = {}
        self._extra_env = dict(extra_env or {})

    # -- what callers use ---------------------------------------------------------------------

    def spec_hash(self, spec: EnvironmentSpec) -> str:
        return spec.spec_hash(self.platform)

    def check_buildable(self, spec: EnvironmentSpec, field: str | None = None) -> None:
        """Refuse, as a 400 naming the field, a spec this server cannot build: a Docker
        ``image``/``build`` without a Docker engine, or pip lines the policy forbids. The job
        submit path calls this (through ``Environments.resolve``) to refuse at submit."""
        prefix = f"{field}." if field else ""
        if spec.needs_engine:
            which = "image" if spec.image is not None else "build"
            if not self.engine_available():
                raise InvalidInputError(
                    f"this environment runs in a Docker {which}, and this server has no Docker "
                    "engine; give python and pip_requirements (or a conda file) instead",
                    code="docker_unavailable",
                    field=f"{prefix}{which}",
                )
            if spec.build is not None:
                raise InvalidInputError(
                    "Docker build contexts are not built by this server yet; build the image "
                    "and give it as image, or give python and pip_requirements instead",
                    code="image_unsupported",
                    field=f"{prefix}build",
                )
            if spec.pip or spec.python:
                field_name = "pip_requirements" if spec.pip else "python"
                raise InvalidInputError(
                    "an image environment runs the image as it is: put the packages in the "
                    "image (Shipyard does not install into images yet)",
                    code="image_unsupported",
                    field=f"{prefix}{field_name}",
                )
            return
        check_pip_policy(
            spec, allow_pip_options=self.allow_pip_options, field=f"{prefix}pip_requirements"
        )

    def engine_available(self) -> bool:
        """Whether a Docker engine answers (checked at most once a minute)."""
        now = time.monotonic()
        if self._engine is None or now - self._engine[0] > ENGINE_CHECK_SECONDS:
            self._engine = (now, self.engine is not None and self.engine.answers())
        return self._engine[1]

    def ensure(self, spec: EnvironmentSpec, log: Log | None = None) -> BuiltEnvironment:
        """The built environment for ``spec``, building it first if needed (``log`` gets
        the build's output line by line). Raises EnvironmentBuildError with the end of the
        log when the build fails; a later call tries again."""
        self.check_buildable(spec)
        digest = self.spec_hash(spec)
        if spec.image is not None:
            return self._ensure_image(spec, digest, _BuildLog(log))
        self._folders()
        with self._lock(digest, exclusive=False):  # waits out a build or an eviction
            if (self.root / digest).is_dir():
                self._touch(digest, spec)
                if log is not None:
                    log(f"environment {digest[:12]} is built (cached)")
                return self._built(digest, cached=True)
        with self._lock(digest, exclusive=True):
            cached = (self.root / digest).is_dir()  # built meanwhile, by another caller
            if cached:
                self._touch(digest, spec)
            else:
                self._build(spec, digest, _BuildLog(log))
        self.evict(keep=digest)
        return self._built(digest, cached=cached)

    @contextlib.contextmanager
    def hold(self, spec_hash: str) -> Iterator[None]:
        """Keep a build from being evicted while a job runs in it."""
        self._folders()
        with self._lock(spec_hash, exclusive=False):
            yield

    def status(self, spec_hash: str) -> BuildRecord:
        with self.db.read() as session:
            row = store.get_build(session, spec_hash)
            if row is None:
                return BuildRecord(spec_hash, "not_built")
            record = BuildRecord(
                spec_hash,
                row.status,
                row.python,
                row.size,
                row.log,
                row.error,
                row.created_at,
                row.built_at,
                row.last_used_at,
                row.build_seconds,
            )
        if record.status == "building" and not self._busy(spec_hash):
            # Nobody holds the lock: the process building it died.
            return replace(record, status="failed", error="the build was interrupted")
        return record

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove least recently used ready builds until the total fits the cap; never
        ``keep``, one being built, or one in use. Returns the evicted hashes."""
        self._folders()
        self._empty_trash()
        with self.db.read() as session:
            rows = [(r.spec_hash, r.size or 0) for r in store.ready_builds_by_use(session)]
        total = sum(size for _, size in rows)
        evicted: list[str] = []
        for digest, size in rows:
            if total <= self.max_bytes:
                break
            if digest == keep:
                continue
            with self._lock(digest, exclusive=True, blocking=False) as got:
                if not got:
                    continue
                folder = self.root / digest
                if folder.is_dir():
                    folder.rename(self._fresh(_TRASH, digest))
                with self.db.write() as session:
                    store.delete_build(session, digest)
            evicted.append(digest)
            total -= size
        self._empty_trash()
        return evicted

    # -- building -----------------------------------------------------------------------------

    def _build(self, spec: EnvironmentSpec, digest: str, output: _BuildLog) -> None:
        python = spec.python or self.platform.python
        for stale in (self.root / _TMP).glob(f"{digest}-*"):  # a build that died with us
            shutil.rmtree(stale, ignore_errors=True)
        with self.db.write() as session:
            store.start_build(session, digest, spec.to_json(), python)
        started = time.monotonic()
        folder = self._fresh(_TMP, digest)
        requirements = folder.with_name(folder.name + ".requirements.txt")
        try:
            lines = len(spec.pip)
            output.add(f"building environment {digest[:12]}: python {python}, {lines} line(s)")
            interpreter = self._find_python(python, output)
            venv = ["venv", "--relocatable", "--python", interpreter, str(folder)]
            self._run([*venv, "--python-preference", "only-system"], output, "uv venv")
            if spec.pip:
                requirements.write_text("\n".join(spec.pip) + "\n", encoding="utf-8")
                target = str(folder / "bin" / "python")
                install = ["pip", "install", "--python", target, "-r", str(requirements)]
                self._run(install, output, "uv pip install")
            folder.rename(self.root / digest)
        except BaseException as exc:
            error = exc.detail if isinstance(exc, EnvironmentBuildError) else repr(exc)[:2000]
            self._record_failure(digest, error, output)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            requirements.unlink(missing_ok=True)
        seconds = time.monotonic() - started
        output.add(f"built environment {digest[:12]} in {seconds:.1f} s")
        with self.db.write() as session:
            row = store.get_build(session, digest)
            assert row is not None
            row.status = "ready"
            row.size = folder_size(self.root / digest)
            row.log = output.text()
            row.built_at = row.last_used_at = utcnow()
            row.build_seconds = seconds

    def _ensure_image(
        self, spec: EnvironmentSpec, digest: str, output: _BuildLog
    ) -> BuiltEnvironment:
        """An image environment is its image, present on this host (pulled if need be);
        the registry records it like a build (no folder, size 0)."""
        assert self.engine is not None  # check_buildable saw to both
        assert spec.image is not None
        with self.db.read() as session:
            row = store.get_build(session, digest)
            cached = row is not None and row.status == "ready"
        if not cached:
            with self.db.write() as session:
                store.start_build(session, digest, spec.to_json(), "image")
        try:
            self.engine.ensure_image(spec.image, output.add)
        except EnvironmentBuildError as exc:
            self._record_failure(digest, exc.detail, output)
            raise
        if not cached:
            with self.db.write() as session:
                found = store.get_build(session, digest)
                assert found is not None
                found.status, found.size, found.log = "ready", 0, output.text()
                found.built_at = found.last_used_at = utcnow()
        return BuiltEnvironment(
            digest, Path("/"), Path("python"), Path("/"), cached=cached, image=spec.image
        )

    def _record_failure(self, digest: str, error: str, output: _BuildLog) -> None:
        with self.db.write() as session:
            row = store.get_build(session, digest)
            if row is not None:
                row.status = "failed"
                row.error = error
                row.log = output.text()

    def _find_python(self, version: str, output: _BuildLog) -> str:
        """The machine's interpreter for ``version``; a clear error listing what is here."""
        known = self._interpreters.get(version)
        if known is not None and os.access(known, os.X_OK):
            return known
        if not self.platform.for_all_users:
            found = self._capture(["python", "find", "--python-preference", "only-system", version])
            if found.returncode == 0 and found.stdout.strip():
                path = found.stdout.strip().splitlines()[-1]
                self._interpreters[version] = path
                return path
        listed = self._capture(
            ["python", "list", "--only-installed", "--python-preference", "only-system"]
        )
        if self.platform.for_all_users:
            for line in listed.stdout.splitlines():
                words = line.split()
                # "cpython-3.11.2-linux-x86_64-gnu    /usr/bin/python3.11 [-> target]"
                if len(words) < 2 or "-" not in words[0]:
                    continue
                release = words[0].split("-")[1]
                if (release == version or release.startswith(version + ".")) and (
                    reachable_by_all(Path(words[1]))
                ):
                    self._interpreters[version] = words[1]
                    return words[1]
        present = sorted(
            {line.split()[0].split("-")[1] for line in listed.stdout.splitlines() if "-" in line}
        )
        detail = (
            f"Python {version} is not on this machine (builds use only the machine's own "
            f"Pythons, never downloads); present: {', '.join(present) or 'none found'}"
        )
        if self.platform.for_all_users:
            detail += (
                " (jobs run as their own users here, so only an interpreter every user may "
                "run counts: none under a private folder such as /root)"
            )
        output.add(detail)
        raise EnvironmentBuildError(detail, code="python_unavailable", log_tail=output.tail())

    def _run(self, args: list[str], output: _BuildLog, what: str) -> None:
        command = [self.uv, *args]
        output.add("$ uv " + " ".join(args))
        start = output.count
        process = subprocess.Popen(  # noqa: S603 - an argument list, never a shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self.root / _TMP,
            env=self._env(),
            text=True,
            errors="replace",
        )
        timer = threading.Timer(self.timeout, process.kill)
        timer.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                output.add(line.rstrip("\n"))
            code = process.wait()
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
        if code != 0:
            why = f"timed out after {self.timeout:.0f} s" if code < 0 else f"exit code {code}"
            tail = output.tail(since=start)
            raise EnvironmentBuildError(f"{what} failed ({why}):\n{tail}", log_tail=tail)

    def _capture(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - an argument list, never a shell
            [self.uv, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=self.root / _TMP,
            env=self._env(),
            text=True,
            errors="replace",
            timeout=120,
            check=False,
        )

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _DROPPED_VARIABLES}
        env.update({"UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1", "UV_NO_PROGRESS": "1"})
        env.update(self._extra_env)
        return env

    @property
    def uv(self) -> str:
        if self._uv is None:
            self._uv = find_uv()
        return self._uv

    # -- bookkeeping --------------------------------------------------------------------------

    def _touch(self, digest: str, spec: EnvironmentSpec) -> None:
        python = spec.python or self.platform.python
        with self.db.write() as session:
            if store.get_build(session, digest) is None:  # the folder outlived its row
                size = folder_size(self.root / digest)
                store.touch_build(session, digest, spec.to_json(), python, size)
            else:
                store.touch_build(session, digest, spec.to_json(), python, 0)

    def _built(self, digest: str, *, cached: bool) -> BuiltEnvironment:
        prefix = self.root / digest
        return BuiltEnvironment(
            spec_hash=digest,
            prefix=prefix,
            python=prefix / "bin" / "python",
            bin_dir=prefix / "bin",
            cached=cached,
        )

    def _folders(self) -> None:
        for name in (_LOCKS, _TMP, _TRASH):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    def _empty_trash(self) -> None:
        # Other servers may be emptying it too: what they removed first is no error.
        for entry in (self.root / _TRASH).iterdir():
            shutil.rmtree(entry, ignore_errors=True)

    def _fresh(self, area: str, digest: str) -> Path:
        return self.root / area / f"{digest}-{uuid.uuid4().hex[:8]}"

    @contextlib.contextmanager
    def _lock(self, digest: str, *, exclusive: bool, blocking: bool = True) -> Iterator[bool]:
        """The hash's file lock; yields False when ``blocking`` is off and it is taken."""
        fd = os.open(self.root / _LOCKS / f"{digest}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
            try:
                fcntl.flock(fd, flags if blocking else flags | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # closing releases the lock

    def _busy(self, digest: str) -> bool:
        if not (self.root / _LOCKS / f"{digest}.lock").exists():
            return False
        with self._lock(digest, exclusive=True, blocking=False) as got:
            return not got


def folder_size(path: Path) -> int:
    """Bytes of the files under ``path`` (each hard-linked file once; links not followed)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            key = (info.st_dev, info.st_ino)
            if key not in seen:
                seen.add(key)
                total += info.st_size
    return total
