"""One job as several processes across a Ray cluster: the entrypoint of a Ray job whose
``resources.instance_count`` is above 1 (``ray.py`` builds the line that runs it).

Run by path with the server's own Python, which has Ray; it imports nothing from Shipyard,
and the job's environment need not have Ray at all.

usage: ray_driver.py --instances N --cpus C [--gpus G] [--memory-mb M] [--interval S]
                     [--monitor PATH] --cwd DIR -- COMMAND

A placement group of N bundles (``SPREAD``: on different nodes where the cluster has them)
holds the resources, so either every instance starts or none does. One task per bundle
runs ``bash -c COMMAND`` in DIR (or in Ray's copy of the code where DIR is not on the node)
with the variables ``torch.distributed`` and most launchers read: ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``NODE_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``
(a free port on rank 0's node). The first instance to fail fails the job: the others are
stopped and the driver exits with that instance's code. Each instance's output reaches the
job's log through Ray, its lines prefixed with the task's name and pid. With ``--monitor``
(``ray_monitor.py``), each instance runs under it with this Python: its CPU and memory go to
the job's run as ``system/instance_<rank>/...`` and ``--memory-mb`` holds per instance.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time

# Every instance's lines in the log, not "[repeated 2x across cluster]", and no terminal
# colours around their prefixes; Ray reads both at import.
os.environ["RAY_DEDUP_LOGS"] = "0"
os.environ["RAY_COLOR_PREFIX"] = "0"

import ray
from ray.util.placement_group import placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

PR_SET_PDEATHSIG = 1
LOG_GRACE = 1.0  # seconds for the instances' last lines to reach the driver


def _die_with_parent() -> None:
    """The command dies with the Ray worker that runs it (a stopped job leaves nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@ray.remote
def _where() -> tuple[str, int]:
    """This node's address and a port free on it now."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        port = int(sock.getsockname()[1])
    ip: str = ray.util.get_node_ip_address()  # type: ignore[no-untyped-call]  # Ray left it untyped
    return ip, port


@ray.remote
def _run(command: str, cwd: str, extra: dict[str, str], monitor: list[str]) -> int:
    env = {**os.environ, **extra}
    workdir = cwd if os.path.isdir(cwd) else os.getcwd()
    # The monitor where this node has it (the server's Python at the same path).
    watch = monitor if monitor and os.path.exists(monitor[0]) else []
    process = subprocess.Popen(  # noqa: S603 - the job's command, one argument to bash
        [*watch, "bash", "-c", command],  # bash from the job's PATH, as on local compute
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,  # only prctl: safe between fork and exec
    )
    code = process.wait()
    return code if code >= 0 else 128 - code


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ray_driver.py")
    parser.add_argument("--instances", type=int, required=True)
    parser.add_argument("--cpus", type=float, required=True)
    parser.add_argument("--gpus", type=int, default=0)
    parser.add_argument("--memory-mb", type=int, default=0)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--monitor", default="")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("command", nargs=1)
    args = parser.parse_args(argv)
    count, command = args.instances, args.command[0]
    bundle: dict[str, float] = {"CPU": args.cpus}
    if args.gpus:
        bundle["GPU"] = float(args.gpus)
    if args.memory_mb:
        bundle["memory"] = float(args.memory_mb * 1024 * 1024)

    ray.init(logging_level=logging.WARNING, log_to_driver=True)
    group = placement_group([dict(bundle) for _ in range(count)], strategy="SPREAD")
    while True:
        ready, _ = ray.wait([group.ready()], timeout=30)
        if ready:
            break
        print(f"shipyard: waiting for the cluster to hold {count} x {bundle}", file=sys.stderr)

    def at(index: int) -> PlacementGroupSchedulingStrategy:
        return PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)

    places = ray.get(
        [_where.options(num_cpus=0, scheduling_strategy=at(i)).remote() for i in range(count)]
    )
    nodes = list(dict.fromkeys(ip for ip, _ in places))
    master_addr, master_port = places[0]
    running: dict[ray.ObjectRef[int], int] = {}

    def monitored(rank: int) -> list[str]:
        if not args.monitor:
            return []
        return [
            *(sys.executable, "-I", args.monitor, "--memory-mb", str(args.memory_mb)),
            *("--interval", repr(args.interval), "--prefix", f"system/instance_{rank}/", "--"),
        ]

    for rank, (ip, _) in enumerate(places):
        same_node = [i for i, (other, _) in enumerate(places) if other == ip]
        extra = {
            "RANK": str(rank),
            "WORLD_SIZE": str(count),
            "LOCAL_RANK": str(same_node.index(rank)),
            "LOCAL_WORLD_SIZE": str(len(same_node)),
            "NODE_RANK": str(nodes.index(ip)),
            "MASTER_ADDR": master_addr,
            "MASTER_PORT": str(master_port),
        }
        task = _run.options(
            num_cpus=args.cpus,
            num_gpus=args.gpus,
            memory=args.memory_mb * 1024 * 1024 or None,
            scheduling_strategy=at(rank),
        ).remote(command, args.cwd, extra, monitored(rank))
        running[task] = rank
    code = _first_failure(running)
    time.sleep(LOG_GRACE)
    return code


def _first_failure(running: dict[ray.ObjectRef[int], int]) -> int:
    """Wait for every instance; at the first that fails, stop the others."""
    pending = list(running)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        rank = running[done[0]]
        try:
            code = int(ray.get(done[0]))
        except Exception as exc:  # the worker or its node died
            print(f"shipyard: instance {rank} was lost: {exc}", file=sys.stderr)
            code = 1
        if code != 0:
            print(
                f"shipyard: instance {rank} exited with code {code}; stopping the others",
                file=sys.stderr,
            )
            for task in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(task, force=True)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
