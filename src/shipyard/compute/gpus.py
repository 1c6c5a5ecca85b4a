"""GPU use of a job's devices, read from ``nvidia-smi`` (NVIDIA's driver tool, present
wherever its GPUs are): utilisation and memory per device index, as the runner samples a
local job's CPU and memory."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

QUERY = "--query-gpu=index,utilization.gpu,memory.used"
TIMEOUT = 5.0


@dataclass(frozen=True)
class GpuUsage:
    utilization_percent: float  # the mean over the job's devices
    memory_used_mb: float  # the sum over the job's devices


class GpuSampler:
    def __init__(self, command: str) -> None:
        self.command = command

    @classmethod
    def find(cls) -> GpuSampler | None:
        found = shutil.which("nvidia-smi")
        return cls(found) if found is not None else None

    def sample(self, devices: list[int]) -> GpuUsage | None:
        """The devices' use now; None when the tool does not answer or knows none of them."""
        try:
            done = subprocess.run(  # noqa: S603 - the driver's tool, fixed arguments
                [self.command, QUERY, "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode != 0:
            return None
        utilization: list[float] = []
        memory = 0.0
        for line in done.stdout.splitlines():
            parts = [part.strip() for part in line.split(",")]
            if len(parts) != 3:
                continue
            try:
                index, used, mb = int(parts[0]), float(parts[1]), float(parts[2])
            except ValueError:  # "[N/A]" on devices that do not report
                continue
            if index in devices:
                utilization.append(used)
                memory += mb
        if not utilization:
            return None
        return GpuUsage(sum(utilization) / len(utilization), memory)
