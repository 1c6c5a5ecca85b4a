"""What role-based authorization adds to a request, against the same request without it.

Target (the RBAC issue): with 1,000 role assignments and 100 groups, the authorization check
adds under 0.2 ms to a request (median), measured against the same request with
authorization off, in one run.

One real server (uvicorn on a loopback port, in a thread of this process, exactly as
tests/conftest.py starts it) serves GET /api/v1/workspaces/{workspace}, a workspace-scoped
route, to a non-admin user who belongs to several groups and holds roles at global scope and
at the workspace. "On" is the app as built. "Off" is the same app and the same database with
``services.authorizer`` swapped for an authorizer that allows everything; authentication, the
audit middleware and the handler stay. Batches of on and off requests alternate (the order
flips every repetition) and per-request medians are compared. Because HTTP on a shared
machine is noisy at the 0.1 ms level, ``authorize()`` is also timed directly, in process.

    python benchmarks/authz.py                       # SQLite in a temporary folder
    python benchmarks/authz.py --db-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    python benchmarks/authz.py --smoke               # a few seconds; what the tests run

With a PostgreSQL URL the script creates a fresh database on that server, runs in it and
drops it afterwards; the database named in the URL is only used to create and drop it.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import http.client
import io
import itertools
import os
import platform
import pstats
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import psycopg
import uvicorn
from fastapi import FastAPI
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import make_url

from shipyard.api.app import create_app
from shipyard.api.deps import Services
from shipyard.domain.actions import WORKSPACES_READ, Scope
from shipyard.domain.principals import Principal
from shipyard.domain.roles import Permissions
from shipyard.schemas.workspaces import WorkspaceCreate
from shipyard.services.bootstrap import prepare
from shipyard.services.tokens import add_token
from shipyard.settings import Settings
from shipyard.store import roles as role_store
from shipyard.store import users as user_store
from shipyard.store.database import Database
from shipyard.store.groups import GroupMemberRow, GroupRow
from shipyard.store.roles import RoleAssignmentRow
from shipyard.store.users import UserRow

TARGET_MS = 0.2
BENCH_USER = "bench-user"
TARGET_WORKSPACE = "ws-000"
HIDDEN_WORKSPACE = "ws-hidden"  # exists, but the bench user holds nothing there


@dataclass(frozen=True)
class Size:
    groups: int
    users: int
    workspaces: int
    assignments: int
    repetitions: int
    batch: int
    warmup: int
    direct_calls: int


FULL = Size(
    groups=100,
    users=300,
    workspaces=50,
    assignments=1000,
    repetitions=60,
    batch=50,
    warmup=300,
    direct_calls=5000,
)
SMOKE = Size(
    groups=10,
    users=20,
    workspaces=5,
    assignments=100,
    repetitions=3,
    batch=10,
    warmup=10,
    direct_calls=50,
)


class AllowAll:
    """Authorization off: the same interface as RoleBasedAuthorizer, allowing everything."""

    EVERYTHING = Permissions(((("*",), ()),))

    def authorize(self, principal: Principal, action: str, scope: Scope) -> None:
        return None

    def permissions(self, principal: Principal, scope: Scope) -> Permissions:
        return self.EVERYTHING

    def readable_workspace_ids(self, principal: Principal) -> set[str] | None:
        return None

    def readable_registry_ids(self, principal: Principal) -> set[str] | None:
        return None

    def permissions_at(self, principal: Principal, scope_type: str, scope_id: str) -> Permissions:
        return self.EVERYTHING

    def dominates(self, actor: Principal, target_id: str) -> bool:
        return True


# --- the database -------------------------------------------------------------------------


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def fresh_database(db_url: str | None, folder: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file, or a new database on the PostgreSQL server."""
    if db_url is None:
        yield f"sqlite:///{folder / 'shipyard.db'}"
        return
    if make_url(db_url).get_backend_name() != "postgresql":
        raise SystemExit("--db-url must be a PostgreSQL URL (SQLite is the default)")
    name = f"shipyard_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_libpq(db_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(db_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(db_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass(frozen=True)
class Seeded:
    token: str
    principal: Principal
    groups: int
    assignments: int
    user_groups: int
    user_global_assignments: int
    user_target_assignments: int
    target_assignments: int


def seed(db: Database, services: Services, size: Size) -> Seeded:
    """Workspaces, users, groups and ~size.assignments role assignments, spread over users,
    groups and scopes. The bench user is in five groups, holds roles at global scope and at
    the target workspace, and its groups hold roles there and elsewhere."""
    workspaces = services.workspaces
    with db.read() as session:
        admin = user_store.find_admin(session)
        assert admin is not None
        admin_id = admin.id
    names = [f"ws-{i:03d}" for i in range(size.workspaces)]
    ws_ids = [workspaces.create(admin_id, WorkspaceCreate(name=n)).id for n in names]
    workspaces.create(admin_id, WorkspaceCreate(name=HIDDEN_WORKSPACE))
    target_id = ws_ids[0]

    with db.write() as session:
        roles = {r.name: r.id for r in role_store.list_roles(session)}
        users = [UserRow(name=f"user-{i:04d}") for i in range(size.users)]
        bench = UserRow(name=BENCH_USER, display_name="The measured user")
        groups = [GroupRow(name=f"group-{i:03d}") for i in range(size.groups)]
        session.add_all([*users, bench, *groups])
        session.flush()

        members: set[tuple[str, str, str]] = set()
        for i, user in enumerate(users):  # every user in two groups
            for g in (i % size.groups, (i * 7 + 3) % size.groups):
                members.add((groups[g].id, user.id, "member"))
        for g in range(5):  # the bench user: five groups, and owner of one
            members.add((groups[g].id, bench.id, "member"))
        members.add((groups[0].id, bench.id, "owner"))
        session.add_all(
            GroupMemberRow(group_id=g, principal_id=p, relation=r) for g, p, r in sorted(members)
        )

        existing = session.scalar(select(func.count()).select_from(RoleAssignmentRow)) or 0
        grants: dict[tuple[str, str, str, str], str] = {}

        def grant(principal: str, kind: str, role: str, scope_type: str, scope_id: str) -> None:
            grants.setdefault((principal, roles[role], scope_type, scope_id), kind)

        # The bench user's own: global (self-serve default) and two at the target workspace.
        grant(bench.id, "user", "Workspace Creator", "global", "")
        grant(bench.id, "user", "Compute Operator", "workspace", target_id)
        grant(bench.id, "user", "Data Scientist", "workspace", target_id)
        # Its groups: at the target workspace, at other workspaces, and one at global scope.
        grant(groups[0].id, "group", "Data Scientist", "workspace", target_id)
        grant(groups[1].id, "group", "Reader", "workspace", target_id)
        grant(groups[2].id, "group", "ML Engineer", "workspace", ws_ids[1 % len(ws_ids)])
        grant(groups[3].id, "group", "Compute Operator", "workspace", ws_ids[2 % len(ws_ids)])
        grant(groups[4].id, "group", "Registry User", "global", "")
        # Everyone else: new users' self-serve role, groups at three workspaces each, a few
        # groups at global scope, then direct user assignments until the total is reached.
        for user in users:
            grant(user.id, "user", "Workspace Creator", "global", "")
        rotation = ["Data Scientist", "Reader", "ML Engineer", "Compute Operator", "Contributor"]
        for g, group in enumerate(groups[5:], start=5):
            for k in range(3):
                ws = ws_ids[(g * 3 + k) % len(ws_ids)]
                grant(group.id, "group", rotation[(g + k) % len(rotation)], "workspace", ws)
            if g % 10 == 0:
                grant(group.id, "group", "Reader", "global", "")
        step = 0
        while existing + len(grants) < size.assignments and step < size.assignments * 10:
            user = users[step % len(users)]
            ws = ws_ids[(step * 13 + step // len(users)) % len(ws_ids)]
            grant(user.id, "user", rotation[step % len(rotation)], "workspace", ws)
            step += 1
        session.add_all(
            RoleAssignmentRow(
                principal_id=principal,
                principal_type=kind,
                role_id=role_id,
                scope_type=scope_type,
                scope_id=scope_id,
                created_by=admin_id,
            )
            for (principal, role_id, scope_type, scope_id), kind in grants.items()
        )
        raw = "shp_bench-" + uuid.uuid4().hex
        add_token(session, bench, "bench", raw, timedelta(days=1))
        principal = Principal(id=bench.id, name=bench.name, is_admin=False)
        bench_groups = [g.id for g in groups[:5]]

    with db.read() as session:

        def count(*where: ColumnElement[bool]) -> int:
            query = select(func.count()).select_from(RoleAssignmentRow).where(*where)
            return int(session.scalar(query) or 0)

        return Seeded(
            token=raw,
            principal=principal,
            groups=int(session.scalar(select(func.count()).select_from(GroupRow)) or 0),
            assignments=count(),
            user_groups=len(bench_groups),
            user_global_assignments=count(
                RoleAssignmentRow.principal_id.in_([principal.id, *bench_groups]),
                RoleAssignmentRow.scope_type == "global",
            ),
            user_target_assignments=count(
                RoleAssignmentRow.principal_id.in_([principal.id, *bench_groups]),
                RoleAssignmentRow.scope_id == target_id,
            ),
            target_assignments=count(RoleAssignmentRow.scope_id == target_id),
        )


# --- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running(app: FastAPI, port: int) -> Iterator[None]:
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=20)


class Caller:
    """One keep-alive HTTP/1.1 connection; returns (status, seconds) per request."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str) -> tuple[int, float]:
        started = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        return response.status, time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


# --- measuring ----------------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class HttpResult:
    on: list[float]
    off: list[float]
    paired: list[float]  # per repetition: median(on batch) - median(off batch)


def measure_http(
    app: FastAPI, on: Services, off: Services, caller: Caller, path: str, size: Size
) -> HttpResult:
    state = app.state
    result = HttpResult(on=[], off=[], paired=[])

    def batch(services: Services, n: int) -> list[float]:
        state.services = services
        times = []
        for _ in range(n):
            status, seconds = caller.get(path)
            if status != 200:
                raise RuntimeError(f"GET {path} answered {status}")
            times.append(seconds)
        return times

    batch(on, size.warmup)
    batch(off, size.warmup)
    for rep in range(size.repetitions):
        order = (True, False) if rep % 2 == 0 else (False, True)
        medians = {}
        for authz in order:
            times = batch(on if authz else off, size.batch)
            (result.on if authz else result.off).extend(times)
            medians[authz] = statistics.median(times)
        result.paired.append(medians[True] - medians[False])
    state.services = on
    return result


def time_calls(call: Callable[[], object], n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def profile_authorize(call: Callable[[], object], n: int, top: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(n):
        call()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# --- main ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run, seconds, no timing")
    parser.add_argument(
        "--db-url",
        help="a PostgreSQL server URL; a fresh database is created on it and dropped after",
    )
    parser.add_argument("--repetitions", type=int, help="on/off batch pairs")
    parser.add_argument("--batch", type=int, help="requests per batch")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="also cProfile N authorize() calls"
    )
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else FULL
    size = dataclasses.replace(
        size,
        repetitions=args.repetitions or size.repetitions,
        batch=args.batch or size.batch,
    )

    with (
        tempfile.TemporaryDirectory(prefix="shipyard-bench-") as tmp,
        fresh_database(args.db_url, Path(tmp)) as url,
    ):
        settings = Settings(
            data_dir=Path(tmp) / "data",
            db_url=url,
            admin_token="shp_bench-admin-" + uuid.uuid4().hex,
            port=free_port(),
        )
        db = Database(settings.database_url)
        prepare(settings, db)
        app = create_app(settings, db)
        services_on = app.state.services
        services_off = dataclasses.replace(services_on, authorizer=AllowAll())
        seeded = seed(db, services_on, size)

        path = f"/api/v1/workspaces/{TARGET_WORKSPACE}"
        with running(app, settings.port):
            caller = Caller(settings.port, seeded.token)
            try:
                # The switch really switches: the hidden workspace is 404 on, 200 off.
                hidden = f"/api/v1/workspaces/{HIDDEN_WORKSPACE}"
                app.state.services = services_on
                hidden_on = caller.get(hidden)[0]
                app.state.services = services_off
                hidden_off = caller.get(hidden)[0]
                app.state.services = services_on
                if (hidden_on, hidden_off) != (404, 200):
                    raise RuntimeError(
                        f"authz on/off switch check failed: {hidden_on=} {hidden_off=}"
                    )
                http_result = measure_http(app, services_on, services_off, caller, path, size)
            finally:
                caller.close()

        authorizer = services_on.authorizer
        scope = Scope("workspace", TARGET_WORKSPACE)
        # As a request sees it: authenticated by its token, which brings the authorization
        # counter the authorizer's cache is checked against.
        principal = services_on.tokens.authenticate(seeded.token)

        def check() -> None:
            authorizer.authorize(principal, WORKSPACES_READ, scope)

        allow_all = AllowAll()

        def check_off() -> None:
            allow_all.authorize(seeded.principal, WORKSPACES_READ, scope)

        versions = itertools.count(10**9)

        def check_cold() -> None:
            # A new authorization counter each call: the cache is rebuilt every time, as on the
            # first request after any change to roles, assignments, groups or workspaces.
            fresh = dataclasses.replace(principal, authz_version=next(versions))
            authorizer.authorize(fresh, WORKSPACES_READ, scope)

        time_calls(check, max(10, size.direct_calls // 10))  # warm up
        direct = time_calls(check, size.direct_calls)
        direct_off = time_calls(check_off, size.direct_calls)
        direct_cold = time_calls(check_cold, max(10, size.direct_calls // 10))
        profile = profile_authorize(check, args.profile, 35) if args.profile else ""
        db.dispose()

    report(args, size, settings, seeded, http_result, direct, direct_off, direct_cold)
    if profile:
        print("\ncProfile of authorize(), sorted by cumulative time:\n")
        print(profile)
    return 0


def report(
    args: argparse.Namespace,
    size: Size,
    settings: Settings,
    seeded: Seeded,
    http_result: HttpResult,
    direct: list[float],
    direct_off: list[float],
    direct_cold: list[float],
) -> None:
    ms = 1000.0
    store = make_url(settings.database_url).get_backend_name()
    on_med, off_med = statistics.median(http_result.on), statistics.median(http_result.off)
    diff = statistics.median(http_result.paired)
    direct_med = statistics.median(direct)
    print(
        f"authz benchmark: {store}, {seeded.groups} groups, {seeded.assignments} role "
        f"assignments; {BENCH_USER} in {seeded.user_groups} groups, "
        f"{seeded.user_global_assignments} global + {seeded.user_target_assignments} "
        f"workspace assignments of its own/its groups at {TARGET_WORKSPACE} "
        f"({seeded.target_assignments} assignments there in all)"
    )
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cpus, "
        f"{size.repetitions} x {size.batch} requests per side, interleaved"
        + (" [smoke: no meaningful timing]" if args.smoke else "")
    )
    print()
    print(f"{'measure':<44}{'median':>12}{'p90':>12}{'n':>8}")
    rows = [
        ("GET /api/v1/workspaces/{ws}, authz on", http_result.on, ms, "ms"),
        ("GET /api/v1/workspaces/{ws}, authz off", http_result.off, ms, "ms"),
        ("difference per repetition (on - off)", http_result.paired, ms, "ms"),
        ("authorize() in process, RoleBased", direct, 1e6, "us"),
        ("authorize() in process, AllowAll", direct_off, 1e6, "us"),
        ("authorize() right after a change (cold)", direct_cold, 1e6, "us"),
    ]
    for label, values, scale, unit in rows:
        median = statistics.median(values) * scale
        p90 = quantile(values, 0.9) * scale
        print(f"{label:<44}{median:>9.3f} {unit}{p90:>9.3f} {unit}{len(values):>8}")
    print()
    print(
        f"median added by authz over HTTP: {diff * ms:.3f} ms "
        f"(on {on_med * ms:.3f} ms vs off {off_med * ms:.3f} ms median, "
        f"ratio {on_med / off_med:.2f}x); target < {TARGET_MS} ms"
    )
    print(
        f"authorize() alone: {direct_med * 1e6:.0f} us median "
        f"({'meets' if direct_med * ms < TARGET_MS else 'misses'} the {TARGET_MS} ms target)"
    )


if __name__ == "__main__":
    sys.exit(main())
