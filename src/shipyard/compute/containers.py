"""Jobs in container images (``image:`` environments), through a Docker-compatible command:
``docker``, or ``podman`` (daemonless; its ``docker``-style CLI is the same for what is used
here).

A job in an image runs as ``<engine> run`` under the job's supervisor, like any local job:
its output, exit code, cancel (the engine passes SIGTERM on to the container) and time limit
work the same. The job's folder is mounted at the same path inside the container, so the
rendered command's input and output paths hold unchanged; the container shares the host's
network, so the job reaches the server as other local jobs do. The job's variables are
passed by name (``-e NAME``) from the engine command's own environment, never on its
command line, where any local user could read them. ``resources`` become ``--cpus``,
``--memory`` (the kernel enforces it: a job over it is killed, and ``inspect`` says so) and
``--gpus``; with ``local_compute_uids`` the container runs as the job's user id.

The container is named after the job (``shipyard-<job id>``) and removed when the job is
finalized, after its out-of-memory flag is read.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from shipyard.domain.errors import EnvironmentBuildError

CHECK_TIMEOUT = 10.0
PULL_TIMEOUT = 1800.0
# What the engine command itself may need from the server's environment (its own settings);
# nothing else of the server's reaches it.
_ENGINE_VARIABLES = ("PATH", "HOME", "XDG_RUNTIME_DIR", "TMPDIR", "LANG")
_ENGINE_PREFIXES = ("CONTAINERS_", "DOCKER_", "REGISTRY_AUTH_FILE")
# The job's variables that describe the host, not the job: the container keeps its own.
_HOST_ONLY = ("PATH", "VIRTUAL_ENV")
# Given with their values (nothing secret; the engine command needs its own HOME and TMPDIR).
_EXPLICIT = ("HOME", "TMPDIR", "LANG")


def container_name(job_id: str) -> str:
    return f"shipyard-{job_id}"


class ContainerEngine:
    """A Docker-compatible command: the first of ``candidates`` (argv prefixes, e.g.
    ``["podman"]``) whose engine answers, found when first needed."""

    def __init__(self, candidates: list[list[str]], host_env: Mapping[str, str]) -> None:
        self.candidates = candidates
        self.host_env = {
            k: v
            for k, v in host_env.items()
            if k in _ENGINE_VARIABLES or k.startswith(_ENGINE_PREFIXES)
        }
        self._chosen: list[str] | None = None

    @classmethod
    def find(cls, setting: str, host_env: Mapping[str, str]) -> ContainerEngine | None:
        """The engine the ``container_engine`` setting names: ``auto`` (``docker``, else
        ``podman``: the first installed one whose engine answers), ``none``, or a command
        line. Whether one answers is asked when an image environment needs it, not here
        (it takes a while)."""
        if setting == "none":
            return None
        if setting != "auto":
            return cls([shlex.split(setting)], host_env)
        found = [shutil.which(name, path=host_env.get("PATH")) for name in ("docker", "podman")]
        installed = [[path] for path in found if path is not None]
        return cls(installed, host_env) if installed else None

    @property
    def command(self) -> list[str]:
        if self._chosen is None and not self.answers():
            raise EnvironmentBuildError("no container engine answers", code="docker_unavailable")
        assert self._chosen is not None
        return self._chosen

    def answers(self) -> bool:
        """Whether an engine is there and works (``info`` exits 0)."""
        for candidate in self.candidates:
            try:
                done = subprocess.run(  # noqa: S603 - the admin's engine command, fixed arguments
                    [*candidate, "info"],
                    capture_output=True,
                    timeout=CHECK_TIMEOUT,
                    env=self.host_env,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            if done.returncode == 0:
                self._chosen = candidate
                return True
        return False

    def ensure_image(self, image: str, log: Callable[[str], None]) -> None:
        """The image present locally, pulled first if it is not; EnvironmentBuildError
        with the engine's words when it cannot be had."""
        if self._run(["image", "inspect", image]).returncode == 0:
            log(f"image {image} is present")
            return
        log(f"pulling image {image}")
        pulled = self._run(["pull", image], timeout=PULL_TIMEOUT)
        for line in (pulled.stdout + pulled.stderr).splitlines()[-20:]:
            log(line)
        if pulled.returncode != 0:
            tail = (pulled.stderr or pulled.stdout).strip().splitlines()
            raise EnvironmentBuildError(
                f"image {image} is not on this host and could not be pulled: "
                f"{tail[-1] if tail else 'no reason given'}",
                code="image_unavailable",
                log_tail="\n".join(tail[-20:]),
            )

    def run_argv(
        self,
        job_id: str,
        image: str,
        command: str,
        *,
        job_dir: Path,
        workdir: Path,
        env: Mapping[str, str],
        cpus: float,
        memory_mb: int,
        devices: list[int],
        uid: int | None,
    ) -> list[str]:
        """The engine command line that runs the job; its variables come by name from the
        environment ``process_env`` builds."""
        argv = [
            *self.command,
            "run",
            "--name",
            container_name(job_id),
            "--network",
            "host",
            "--label",
            f"shipyard.job={job_id}",
            "--volume",
            f"{job_dir}:{job_dir}",
            "--workdir",
            str(workdir),
            "--cpus",
            repr(float(cpus)),
        ]
        if memory_mb:
            argv += ["--memory", f"{memory_mb}m", "--memory-swap", f"{memory_mb}m"]
        if devices:
            argv += ["--gpus", "device=" + ",".join(str(d) for d in devices)]
        if uid is not None:
            argv += ["--user", f"{uid}:{uid}"]
        for name in sorted(env):
            if name in _EXPLICIT:
                argv += ["--env", f"{name}={env[name]}"]
            elif name not in _HOST_ONLY:
                argv += ["--env", name]
        return [*argv, image, "/bin/bash", "-c", command]

    def process_env(self, job_env: Mapping[str, str]) -> dict[str, str]:
        """The engine command's environment: the job's variables for ``--env NAME`` to pick
        up, and the engine's own settings (which win)."""
        passed = {k: v for k, v in job_env.items() if k not in (*_EXPLICIT, *_HOST_ONLY)}
        return {**passed, **self.host_env}

    def oom_killed(self, job_id: str) -> bool:
        done = self._run(["inspect", "--format", "{{.State.OOMKilled}}", container_name(job_id)])
        return done.returncode == 0 and done.stdout.strip().lower() == "true"

    def remove(self, job_id: str) -> None:
        """Stop and remove the job's container (after a kill, it may still run)."""
        self._run(["rm", "--force", container_name(job_id)])

    def _run(self, args: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(  # noqa: S603 - the engine's argv, never a shell
                [*self.command, *args],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self.host_env,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess(args, 1, "", str(exc))


def host_environment() -> dict[str, str]:
    """The server's own variables, read once where the engine is made (the app)."""
    return dict(os.environ)
