"""GPU metrics of a job's devices. This machine has no GPU, so NVIDIA's ``nvidia-smi`` is
played by a script that answers its query in its CSV format (values per device index; a
device that does not report says ``[N/A]``); the runner and the sampler are the real ones."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.compute.gpus import GpuSampler, GpuUsage
from shipyard.sdk.jobs import command
from tests.api.test_jobs import SHARED_ENVIRONMENTS, wait
from tests.conftest import RunningServer, start_server, unique

NVIDIA_SMI = """#!/bin/sh
case "$*" in
  *--query-gpu=index,utilization.gpu,memory.used*--format=csv,noheader,nounits*)
    echo "0, 35, 1024"
    echo "1, 81, 2048"
    echo "2, [N/A], [N/A]"
    ;;
  *) echo "unexpected arguments: $*" >&2; exit 2 ;;
esac
"""


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bin")
    script = folder / "nvidia-smi"
    script.write_text(NVIDIA_SMI)
    script.chmod(0o755)
    return script


def test_the_job_s_devices_are_averaged_and_summed(tool: Path) -> None:
    sampler = GpuSampler(str(tool))
    assert sampler.sample([1]) == GpuUsage(81.0, 2048.0)
    assert sampler.sample([0, 1]) == GpuUsage(58.0, 3072.0)
    assert sampler.sample([2]) is None  # it does not report
    assert sampler.sample([7]) is None  # no such device


def test_a_tool_that_fails_gives_no_sample(tmp_path: Path) -> None:
    broken = tmp_path / "nvidia-smi"
    broken.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    broken.chmod(0o755)
    assert GpuSampler(str(broken)).sample([0]) is None
    assert GpuSampler(str(tmp_path / "missing")).sample([0]) is None


@pytest.fixture(scope="module")
def server(
    tool: Path, tmp_path_factory: pytest.TempPathFactory, module_database_url: str
) -> Iterator[RunningServer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")
        with start_server(
            tmp_path_factory.mktemp("data"),
            module_database_url,
            environment_cache_dir=SHARED_ENVIRONMENTS,
            local_compute_gpus=2,
            job_metrics_interval_seconds=0.3,
        ) as running:
            yield running


def test_a_gpu_job_gets_gpu_metrics_and_a_cpu_job_none(server: RunningServer) -> None:
    with server.client() as admin:
        name = unique("gpu")
        admin.workspaces.create(name)
        ws = admin.workspace(name)
        gpu = ws.jobs.create(command(command="sleep 1.5", resources={"gpu": 1}))
        cpu = ws.jobs.create(command(command="sleep 1.5"))
        for job in (gpu, cpu):
            assert wait(ws, job.name).status == "Completed"
        time.sleep(0.2)
        with_gpu = ws.jobs.get_run(wait(ws, gpu.name).id).metrics
        without = ws.jobs.get_run(wait(ws, cpu.name).id).metrics
    assert with_gpu["system/gpu_utilization_percentage"].value in (35.0, 81.0)
    assert with_gpu["system/gpu_memory_used_megabytes"].value in (1024.0, 2048.0)
    assert "system/cpu_utilization_percentage" in without
    assert "system/gpu_utilization_percentage" not in without
