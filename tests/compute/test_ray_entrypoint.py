"""The shell line the Ray launcher hands to Ray, run here the way Ray runs it (``sh -c``,
in some other folder) without a cluster: the job's folder, the command's arguments exactly as
given, and the driver's argument list for several instances."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from shipyard.compute.launchers.ray import DRIVER, MONITOR, RayJob, RayLauncher
from shipyard.domain import command_template

VALUES = ["; rm -rf / #", "$(id)", "`id`", "line1\nline2", "a 'b' \"c\" \\d $HOME", "*", " # x"]
PRINT = "import json, os, sys; print(json.dumps([os.getcwd(), *sys.argv[1:]]))"
PRINT_ARGV = f"{shlex.quote(sys.executable)} -c {shlex.quote(PRINT)}"


def job(instances: int = 1) -> RayJob:
    return RayJob("http://127.0.0.1:8265", "shipyard-abc-0", 0.5, 0, 0, instances)


def run_like_ray(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", line], cwd=cwd, capture_output=True, text=True, timeout=30, check=False
    )


@pytest.mark.parametrize("value", VALUES)
def test_the_command_runs_in_the_job_folder_with_literal_arguments(
    tmp_path: Path, value: str
) -> None:
    wd, elsewhere = tmp_path / "wd", tmp_path / "ray-copy"
    wd.mkdir()
    elsewhere.mkdir()
    command = command_template.render(PRINT_ARGV + " ${{inputs.x}}", {"x": value}, {})
    done = run_like_ray(RayLauncher().entrypoint(job(), command, wd), elsewhere)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [str(wd), value]
    assert done.stderr == ""


def test_without_the_job_folder_it_runs_where_ray_put_the_code_and_says_so(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "not-on-this-node"
    done = run_like_ray(RayLauncher().entrypoint(job(), PRINT_ARGV, missing), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [str(tmp_path)]
    assert f"{missing} is not visible on this Ray node" in done.stderr


def test_the_exit_code_is_the_command_s(tmp_path: Path) -> None:
    done = run_like_ray(RayLauncher().entrypoint(job(), "echo out; exit 7", tmp_path), tmp_path)
    assert (done.returncode, done.stdout) == (7, "out\n")


def test_several_instances_run_the_driver_with_the_command_as_one_argument(
    tmp_path: Path,
) -> None:
    command = command_template.render("echo ${{inputs.x}}", {"x": VALUES[0]}, {})
    line = RayLauncher(python="/opt/py/bin/python").entrypoint(job(3), command, tmp_path)
    words = shlex.split(line[line.index("exec ") + len("exec ") :], comments=True)
    assert words == [
        "/opt/py/bin/python",
        "-I",
        str(DRIVER),
        "--instances",
        "3",
        "--cpus",
        "0.5",
        "--gpus",
        "0",
        "--memory-mb",
        "0",
        "--interval",
        "15.0",
        "--monitor",
        str(MONITOR),
        "--cwd",
        str(tmp_path),
        "--",
        command,
    ]
