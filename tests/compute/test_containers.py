"""Jobs in image environments, run by a real container engine (podman, from Debian; CI
installs it) on a real server: the job's folder mounted at its own path, its variables passed
by name (secrets masked in the log, none of the server's own), inputs and outputs, the
memory limit the kernel enforces, cancel, a missing image, and bad input at submit.

The image is made here from the host's own bash and a few tools (``podman import`` of a
folder): nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.compute.containers import ContainerEngine
from shipyard.domain.errors import InvalidInputError
from shipyard.sdk.jobs import Input, Output, command
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.api.test_jobs import log_of, wait
from tests.conftest import RunningServer, start_server, unique

IMAGE = "localhost/shipyard-test-tiny:1"
TOOLS = ("bash", "sh", "cat", "echo", "ls", "id", "sleep", "head", "tail", "mkdir")
ENGINE = shutil.which("podman")


def _engine_settings(folder: Path) -> dict[str, str]:
    """Podman on hosts like this one (cgroups v1 and v2 both mounted; rlimits fixed by the
    host) needs runc and no default ulimits: its own configuration file, by variable."""
    if ENGINE is None or not ENGINE.endswith("podman"):
        return {}
    conf = folder / "containers.conf"
    runtime = '[engine]\nruntime = "runc"\n' if shutil.which("runc") else ""
    conf.write_text(f"[containers]\ndefault_ulimits = []\n{runtime}")
    return {"CONTAINERS_CONF": str(conf)}


def _make_image(engine: list[str], folder: Path, env: dict[str, str]) -> None:
    root = folder / "rootfs"
    for sub in ("bin", "tmp", "etc"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    for tool in TOOLS:
        path = shutil.which(tool)
        assert path is not None, tool
        shutil.copy2(os.path.realpath(path), root / "bin" / tool)
        libraries = subprocess.run(["ldd", path], capture_output=True, text=True, check=False)
        for word in libraries.stdout.split():
            if word.startswith("/") and os.path.exists(word):
                target = root / word.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(os.path.realpath(word), target)
    tar = folder / "rootfs.tar"
    subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
    subprocess.run([*engine, "import", str(tar), IMAGE], check=True, env=env, capture_output=True)


@pytest.fixture(scope="module")
def engine_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("engine")
    extra = _engine_settings(folder)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in extra.items():
            patch.setenv(key, value)
        if ENGINE is None or not ContainerEngine([[ENGINE]], dict(os.environ)).answers():
            pytest.skip("no container engine (CI installs podman)")
        _make_image([ENGINE], folder, dict(os.environ))
        yield extra


@pytest.fixture(scope="module")
def server(
    engine_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    module_database_url: str,
) -> Iterator[RunningServer]:
    with start_server(
        tmp_path_factory.mktemp("data"),
        module_database_url,
        local_compute_cpus=2,
        job_kill_grace_seconds=2,
    ) as running:
        yield running


@pytest.fixture
def ws(server: RunningServer) -> Iterator[WorkspaceHandle]:
    with server.client() as admin:
        name = unique("image")
        admin.workspaces.create(name)
        yield admin.workspace(name)


TINY = {"image": IMAGE}


def test_a_job_runs_in_its_image_with_inputs_outputs_and_masked_secrets(
    ws: WorkspaceHandle, tmp_path: Path
) -> None:
    (tmp_path / "table.csv").write_text("a,b\n1,2\n")
    ws.secrets.set("api-key", "s3cr3t-in-a-container")
    job = ws.jobs.create(
        command(
            command="echo hello $SHIPYARD_JOB_NAME; echo key=$API_KEY; "
            "echo master=${SHIPYARD_MASTER_KEY:-none} admin=${SHIPYARD_ADMIN_TOKEN:-none}; "
            "cat ${{inputs.table}}; echo made > ${{outputs.out}}/made.txt; ls /bin/python || true",
            environment=TINY,
            environment_variables={"API_KEY": "${{secrets.api-key}}"},
            inputs={"table": Input(type="uri_file", path=str(tmp_path / "table.csv"))},
            outputs={"out": Output(type="uri_folder")},
        )
    )
    ended = wait(ws, job.name)
    log = log_of(ws, job.name)
    assert ended.status == "Completed", log
    assert f"hello {job.name}" in log
    assert "key=***" in log
    assert "s3cr3t-in-a-container" not in log
    assert "master=none admin=none" in log  # none of the server's own variables
    assert "a,b\n1,2" in log
    assert "No such file" in log  # the image's own files, not the host's
    got = ws.jobs.download(job.name, output_name="out", download_path=tmp_path / "got")
    assert (got / "made.txt").read_text() == "made\n"
    assert not _containers_of(ended.id)


def test_a_job_over_its_memory_is_killed_by_the_kernel_and_says_so(ws: WorkspaceHandle) -> None:
    job = ws.jobs.create(
        command(
            command="head -c 300000000 /dev/zero | tail > /dev/null",
            environment=TINY,
            resources={"memory": "50m"},
        )
    )
    ended = wait(ws, job.name)
    assert ended.status == "Failed", log_of(ws, job.name)
    assert ended.error in (
        "exceeded its memory limit of 50 MB (killed by the kernel)",  # the engine flagged it
        "killed (exit code 137) while limited to 50 MB of memory: most likely the kernel "
        "stopped it for exceeding that limit",
    )
    assert not _containers_of(ended.id)


def test_cancel_stops_the_container(ws: WorkspaceHandle) -> None:
    job = ws.jobs.create(command(command="echo started; sleep 60", environment=TINY))
    deadline = time.monotonic() + 60
    while b"started" not in ws.jobs._submitted.logs(job.name, 0)[0]:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    ws.jobs.cancel(job.name)
    ended = wait(ws, job.name)
    assert ended.status == "Canceled"
    assert not _containers_of(ended.id)


def test_an_image_that_cannot_be_had_fails_the_job_with_the_engine_s_words(
    ws: WorkspaceHandle,
) -> None:
    job = ws.jobs.create(command(command="true", environment={"image": "localhost/nope:1"}))
    ended = wait(ws, job.name)
    assert ended.status == "Failed"
    assert "image localhost/nope:1 is not on this host and could not be pulled" in (
        ended.error or ""
    )


@pytest.mark.parametrize(
    ("environment", "field"),
    [
        ({"image": IMAGE, "pip_requirements": ["numpy"]}, "environment.pip_requirements"),
        ({"build": {"path": "ctx"}}, "environment.build"),
    ],
)
def test_what_an_image_environment_cannot_hold_is_refused_at_submit(
    ws: WorkspaceHandle, environment: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        ws.jobs.create(command(command="true", environment=environment))
    assert refused.value.field == field


def _containers_of(job_id: str) -> list[str]:
    assert ENGINE is not None
    listed = subprocess.run(
        [ENGINE, "ps", "--all", "--quiet", "--filter", f"label=shipyard.job={job_id}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split()
