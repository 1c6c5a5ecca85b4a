"""Helpers for the serving tests: scoring scripts on disk, scoring servers and supervised
deployments as real processes on 127.0.0.1, and a load generator that routes like a gateway.

The server's own interpreter stands in for a user environment: it has mlflow and sklearn,
and nothing of Shipyard is imported by the scoring server it runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.serving.instances import DeploymentSupervisor
from shipyard.serving.process import SCORING_SERVER
from shipyard.serving.spec import DeploymentSpec, DeploymentStatus, SupervisorSettings

PYTHON = Path(sys.executable)

# A scoring script with the knobs the tests need, steered by the request body.
SCRIPT = """
import json, os, sys, time
calls = {"init": 0}
model = None

def init():
    global model
    calls["init"] += 1
    with open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "weights.json")) as f:
        model = json.load(f)
    print("init: secret is", os.environ.get("API_SECRET"), flush=True)

def run(raw_data):
    data = json.loads(raw_data)
    if data.get("mark"):  # tells a test the call is under way
        open(data["mark"], "w").close()
    if data.get("sleep"):
        time.sleep(data["sleep"])
    if data.get("fail"):
        raise ValueError("run() was asked to fail")
    return {
        "version": VERSION,
        "y": [model["w"] * x for x in data.get("x", [])],
        "init_calls": calls["init"],
        "model_dir": os.environ["AZUREML_MODEL_DIR"],
        "cwd": os.getcwd(),
        "pid": os.getpid(),
    }
"""


def write_code(folder: Path, version: str = "v1", extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = f"VERSION = {version!r}\n" + SCRIPT + textwrap.dedent(extra)
    (folder / "score.py").write_text(body, encoding="utf-8")
    return folder


def write_model(folder: Path, weight: float = 2.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.json").write_text(json.dumps({"w": weight}), encoding="utf-8")
    return folder


class ScoringServer:
    """One scoring_server.py process started by hand, as the supervisor would start it."""

    def __init__(self, folder: Path, **config: Any) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.status_file = folder / "status.json"
        self.log_file = folder / "server.log"
        settings = {
            "host": "127.0.0.1",
            "port": 0,
            "request_timeout_ms": 5000,
            "max_concurrent_requests": 4,
            "max_body_bytes": 1_000_000,
            "status_file": str(self.status_file),
            **config,
        }
        (folder / "config.json").write_text(json.dumps(settings), encoding="utf-8")
        with open(self.log_file, "wb") as log:
            self.process = subprocess.Popen(
                [str(PYTHON), str(SCORING_SERVER), "--config", str(folder / "config.json")],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=folder,
            )
        self.status = self._wait_status()
        self.port = int(self.status.get("port") or 0)
        self.url = f"http://127.0.0.1:{self.port}"

    def _wait_status(self, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                status: dict[str, Any] = json.loads(self.status_file.read_text())
            except (OSError, ValueError):
                status = {}
            if status.get("state") in ("ready", "failed"):
                return status
            if self.process.poll() is not None and status.get("state") != "starting":
                return status
            time.sleep(0.02)
        raise AssertionError(f"no readiness after {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Any]:
    started: list[ScoringServer] = []

    def start(**config: Any) -> ScoringServer:
        server = ScoringServer(tmp_path / f"server{len(started)}", **config)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def settings_for(tmp_path: Path, **overrides: Any) -> SupervisorSettings:
    base: dict[str, Any] = {
        "work_dir": tmp_path / "deployments",
        "drain_seconds": 0.3,
        "stop_grace_seconds": 5.0,
        "backoff_initial": 0.2,
        "backoff_max": 2.0,
    }
    return SupervisorSettings(**{**base, **overrides})


def script_spec(tmp_path: Path, **overrides: Any) -> DeploymentSpec:
    base: dict[str, Any] = {
        "name": "blue",
        "python": PYTHON,
        "model_dir": write_model(tmp_path / "model"),
        "code_dir": write_code(tmp_path / "code-v1"),
        "scoring_script": "score.py",
        "instance_count": 1,
        "max_concurrent_requests": 4,
    }
    return DeploymentSpec(**{**base, **overrides})


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Any]:
    """Start a supervisor; every one started is stopped at the end of the test."""
    started: list[DeploymentSupervisor] = []

    def start(spec: DeploymentSpec, **settings: Any) -> DeploymentSupervisor:
        supervisor = DeploymentSupervisor(spec, settings_for(tmp_path, **settings))
        supervisor.start()
        started.append(supervisor)
        return supervisor

    yield start
    for supervisor in started:
        supervisor.stop()


def wait_for(supervisor: DeploymentSupervisor, state: str, timeout: float = 60) -> DeploymentStatus:
    status = supervisor.wait(timeout)
    assert status.state == state, status
    return status


class Load:
    """A thread sending requests as a gateway would: each one to an instance from the
    supervisor's current ``endpoints()``, round robin. Records every outcome."""

    def __init__(self, supervisor: DeploymentSupervisor, body: bytes = b'{"x": [1]}') -> None:
        self.supervisor = supervisor
        self.body = body
        self.ok = 0
        self.failures: list[str] = []
        self.failed_at: list[tuple[float, int]] = []  # (time.monotonic(), port)
        self.versions: Counter[str] = Counter()
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        turn = 0
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set():
                endpoints = self.supervisor.endpoints()
                if not endpoints:
                    time.sleep(0.01)
                    continue
                host, port = endpoints[turn % len(endpoints)]
                turn += 1
                try:
                    response = client.post(f"http://{host}:{port}/score", content=self.body)
                except httpx.HTTPError as error:
                    self.failures.append(f"{port}: {error!r}")
                    self.failed_at.append((time.monotonic(), port))
                    continue
                if response.status_code != 200:
                    self.failures.append(f"{port}: {response.status_code} {response.text}")
                    continue
                self.ok += 1
                time.sleep(0.002)  # a steady load, not a benchmark: the machine is shared
                data = response.json()
                self.versions[data["version"]] += 1
                self.pids.add(data["pid"])
