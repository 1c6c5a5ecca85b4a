"""The SDK's access-control groups against a real server: groups, service principals, roles,
role assignments, the audit log, and token lifetimes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shipyard import Client
from shipyard.domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnauthenticatedError,
)
from shipyard.schemas.audit import AuditEventRead
from shipyard.schemas.groups import GroupRead, ServicePrincipalRead
from shipyard.schemas.registries import RegistryRead
from shipyard.schemas.roles import RoleAssignmentRead, RoleRead
from tests.conftest import RunningServer, unique


@dataclass
class Person:
    """A non-admin user (holding only the default Workspace Creator at global scope)."""

    name: str
    client: Client


@pytest.fixture
def new_person(server: RunningServer, admin: Client) -> Iterator[Callable[[], Person]]:
    """Make people on demand (``alice = new_person()``); their clients close afterwards."""
    made: list[Person] = []

    def make() -> Person:
        name = unique("user")
        admin.users.create(name)
        token = admin.tokens.create("sdk-access", user=name).token
        made.append(Person(name=name, client=Client(server.url, token)))
        return made[-1]

    yield make
    for person in made:
        person.client.close()


def settled(events: Callable[[], list[AuditEventRead]], count: int) -> list[AuditEventRead]:
    """The events once ``count`` of them are there: the server writes an audit event just
    after it has sent the response, so the last request's event may lag a moment."""
    deadline = time.monotonic() + 10
    while len(found := events()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(found) == count, found
    return found


def can_read(client: Client, workspace: str) -> bool:
    """Whether the client sees the workspace (a hidden workspace is a 404, never a 403)."""
    try:
        client.workspaces.get(workspace)
    except NotFoundError as exc:
        if exc.code != "workspace_not_found":
            raise
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Groups


def test_group_create_get_list_members_and_delete(
    server: RunningServer, admin: Client, new_person: Callable[[], Person]
) -> None:
    alice = new_person()
    bob = new_person()
    name = unique("grp")

    created = admin.groups.create(name, description="The ML team")
    assert isinstance(created, GroupRead)
    assert (created.name, created.description, created.members) == (name, "The ML team", [])
    assert [(o.name, o.kind) for o in created.owners] == [("admin", "user")]

    added = admin.groups.add_member(name, alice.name)
    assert [(m.name, m.kind) for m in added.members] == [(alice.name, "user")]
    owned = admin.groups.add_member(name, bob.name, owner=True)
    assert {o.name for o in owned.owners} == {"admin", bob.name}
    assert [m.name for m in owned.members] == [alice.name]  # an owner is not a member
    assert admin.groups.get(name) == owned

    removed = admin.groups.remove_member(name, bob.name, owner=True)
    assert [o.name for o in removed.owners] == ["admin"]
    assert [m.name for m in removed.members] == [alice.name]
    removed = admin.groups.remove_member(name, alice.name)
    assert removed.members == []

    admin.groups.delete(name)
    with pytest.raises(NotFoundError) as caught:
        admin.groups.get(name)
    assert caught.value.code == "group_not_found"


def test_group_list_iterates_every_page(admin: Client) -> None:
    names = {admin.groups.create(unique("grp")).name for _ in range(3)}
    listed = [g.name for g in admin.groups.list(page_size=1)]
    assert names <= set(listed)
    assert len(listed) == len(set(listed))
    assert listed == [g.name for g in admin.groups.list()]


def test_a_duplicate_group_is_a_conflict(admin: Client) -> None:
    name = unique("grp")
    admin.groups.create(name)
    with pytest.raises(ConflictError) as caught:
        admin.groups.create(name)
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        409,
        "group_exists",
        "name",
    )


def test_removing_someone_who_is_not_a_member_is_not_found(admin: Client) -> None:
    name = admin.groups.create(unique("grp")).name
    with pytest.raises(NotFoundError) as caught:
        admin.groups.remove_member(name, "admin")  # admin owns the group but is no member
    assert caught.value.code == "member_not_found"


def test_group_membership_grants_access_and_removal_revokes_it_at_once(
    server: RunningServer, admin: Client, new_person: Callable[[], Person]
) -> None:
    alice = new_person()
    workspace = admin.workspaces.create(unique()).name
    group = admin.groups.create(unique("grp")).name
    admin.role_assignments.create(role="Reader", group=group, workspace=workspace)
    assert not can_read(alice.client, workspace)

    admin.groups.add_member(group, alice.name)
    assert can_read(alice.client, workspace)

    admin.groups.remove_member(group, alice.name)
    assert not can_read(alice.client, workspace)


# ---------------------------------------------------------------------------------------------
# Service principals


def test_service_principal_token_works_and_delete_revokes_it(
    server: RunningServer, admin: Client
) -> None:
    name = unique("sp")
    created = admin.service_principals.create(name, description="Nightly training")
    assert isinstance(created, ServicePrincipalRead)
    assert (created.name, created.description, created.disabled) == (
        name,
        "Nightly training",
        False,
    )
    assert admin.service_principals.get(name) == created
    assert name in [sp.name for sp in admin.service_principals.list(page_size=1)]
    assert name not in [u.name for u in admin.users.list()]  # not a user

    issued = admin.tokens.create("ci", user=name, expires_in=timedelta(days=7))
    assert issued.user == name
    workspace = admin.workspaces.create(unique()).name
    admin.role_assignments.create(role="Reader", service_principal=name, workspace=workspace)
    with Client(server.url, issued.token) as robot:
        assert robot.users.me().name == name
        assert robot.workspaces.get(workspace).name == workspace

        admin.service_principals.delete(name)
        with pytest.raises(UnauthenticatedError):
            robot.users.me()
    with pytest.raises(NotFoundError) as caught:
        admin.service_principals.get(name)
    assert caught.value.code == "service_principal_not_found"


def test_a_user_is_not_a_service_principal(admin: Client) -> None:
    with pytest.raises(NotFoundError) as caught:
        admin.service_principals.get("admin")
    assert caught.value.code == "service_principal_not_found"


# ---------------------------------------------------------------------------------------------
# Roles


def test_roles_list_the_builtins_and_get_one_by_a_name_with_a_space(admin: Client) -> None:
    roles = admin.roles.list()
    assert all(isinstance(r, RoleRead) for r in roles)
    assert {"Owner", "Contributor", "Reader", "Data Scientist", "Workspace Creator"} <= {
        r.name for r in roles if r.builtin
    }
    scientist = admin.roles.get("Data Scientist")
    assert scientist.builtin is True
    assert scientist.actions == ["workspaces/*"]
    assert "workspaces/delete" in scientist.not_actions


def test_an_unknown_role_is_not_found(admin: Client) -> None:
    with pytest.raises(NotFoundError) as caught:
        admin.roles.get("No Such Role")
    assert (caught.value.status, caught.value.code) == (404, "role_not_found")
    with pytest.raises(NotFoundError) as caught:
        admin.role_assignments.create(role="No Such Role", user="admin")
    assert (caught.value.code, caught.value.field) == ("role_not_found", "role")


def test_a_custom_role_is_created_read_and_deleted(admin: Client) -> None:
    name = f"Job Runner {unique('r')}"
    created = admin.roles.create(
        name,
        actions=["workspaces/read", "workspaces/jobs/*"],
        not_actions=("workspaces/jobs/delete",),
        description="Submit and watch jobs",
        assignable_scopes=["workspace"],
    )
    assert (created.name, created.builtin, created.description) == (
        name,
        False,
        "Submit and watch jobs",
    )
    assert created.actions == ["workspaces/read", "workspaces/jobs/*"]
    assert created.not_actions == ["workspaces/jobs/delete"]
    assert created.assignable_scopes == ["workspace"]
    assert admin.roles.get(name) == created
    assert name in [r.name for r in admin.roles.list()]

    admin.roles.delete(name)
    with pytest.raises(NotFoundError):
        admin.roles.get(name)


def test_create_from_spec_sends_the_yaml_shape(admin: Client) -> None:
    spec = {"name": unique("role"), "actions": ["workspaces/read"]}
    created = admin.roles.create_from_spec(spec)
    assert created.assignable_scopes == ["global", "workspace", "registry"]  # the default
    with pytest.raises(InvalidInputError) as caught:
        admin.roles.create_from_spec({"name": unique("role"), "actions": ["nothing/real"]})
    assert (caught.value.code, caught.value.field) == ("unknown_action", "actions.0")


def test_a_role_in_use_cannot_be_deleted(admin: Client) -> None:
    name = unique("role")
    admin.roles.create(name, ["workspaces/read"], assignable_scopes=["workspace"])
    workspace = admin.workspaces.create(unique()).name
    assignment = admin.role_assignments.create(role=name, user="admin", workspace=workspace)

    with pytest.raises(ConflictError) as caught:
        admin.roles.delete(name)
    assert (caught.value.status, caught.value.code) == (409, "role_in_use")
    assert admin.roles.get(name).name == name

    admin.role_assignments.delete(assignment.id, workspace=workspace)
    admin.roles.delete(name)
    with pytest.raises(NotFoundError):
        admin.roles.get(name)


def test_a_builtin_role_cannot_be_deleted(admin: Client) -> None:
    with pytest.raises(ConflictError) as caught:
        admin.roles.delete("Reader")
    assert caught.value.code == "builtin_role"


# ---------------------------------------------------------------------------------------------
# Role assignments


def test_an_assignment_at_a_workspace_gives_access_at_once_and_deleting_it_takes_it_away(
    server: RunningServer, admin: Client, new_person: Callable[[], Person]
) -> None:
    alice = new_person()
    workspace = admin.workspaces.create(unique()).name
    assert not can_read(alice.client, workspace)

    created = admin.role_assignments.create(
        role="Data Scientist", user=alice.name, workspace=workspace
    )
    assert isinstance(created, RoleAssignmentRead)
    assert (created.role, created.principal_type, created.principal_name) == (
        "Data Scientist",
        "user",
        alice.name,
    )
    assert (created.scope, created.workspace) == (f"/workspaces/{workspace}", workspace)
    assert can_read(alice.client, workspace)
    assert created in admin.role_assignments.list(workspace)
    assert created not in admin.role_assignments.list()

    admin.role_assignments.delete(created.id, workspace=workspace)
    assert not can_read(alice.client, workspace)
    assert created not in admin.role_assignments.list(workspace)


def test_global_assignments_and_the_default_workspace_creator(
    server: RunningServer, admin: Client, new_person: Callable[[], Person]
) -> None:
    alice = new_person()
    mine = [a for a in admin.role_assignments.list() if a.principal_name == alice.name]
    assert [(a.role, a.scope, a.workspace) for a in mine] == [("Workspace Creator", "/", None)]

    reader = admin.role_assignments.create(role="Reader", user=alice.name)
    assert (reader.scope, reader.workspace) == ("/", None)
    other = admin.workspaces.create(unique()).name
    assert can_read(alice.client, other)  # Reader at global reads every workspace
    admin.role_assignments.delete(reader.id)
    assert not can_read(alice.client, other)


def test_a_scope_path_works_like_workspace(admin: Client) -> None:
    workspace = admin.workspaces.create(unique()).name
    created = admin.role_assignments.create(
        role="Reader", user="admin", scope=f"/workspaces/{workspace}"
    )
    assert created.workspace == workspace
    with pytest.raises(InvalidInputError) as caught:
        admin.role_assignments.create(role="Reader", user="admin", scope="/planets/mars")
    assert caught.value.code == "invalid_scope"


def test_registries_and_assignments_at_registry_scope(
    server: RunningServer, admin: Client, new_person: Callable[[], Person]
) -> None:
    alice = new_person()
    name = unique("reg")
    made = admin.registries.create(name, description="Shared models", tags={"team": "ml"})
    assert isinstance(made, RegistryRead)
    assert (made.name, made.description, made.tags, made.created_by) == (
        name,
        "Shared models",
        {"team": "ml"},
        "admin",
    )
    assert admin.registries.get(name) == made == admin.registry(name).get()
    assert name in [r.name for r in admin.registries.list(page_size=1)]
    with pytest.raises(NotFoundError) as caught:
        alice.client.registries.get(name)
    assert (caught.value.code, caught.value.field) == ("registry_not_found", "registry")
    assert name not in [r.name for r in alice.client.registries.list()]

    granted = admin.role_assignments.create(role="Registry User", user=alice.name, registry=name)
    assert (granted.scope, granted.registry, granted.workspace) == (
        f"/registries/{name}",
        name,
        None,
    )
    assert alice.client.registries.get(name).name == name
    assert [r.name for r in alice.client.registries.list()] == [name]
    assert granted in admin.role_assignments.list(registry=name)
    assert granted not in admin.role_assignments.list()
    with pytest.raises(ForbiddenError):
        alice.client.registries.update(name, description="mine now")
    with pytest.raises(ForbiddenError):
        alice.client.registries.delete(name)

    updated = admin.registries.update(name, tags={"team": "platform"})
    assert (updated.description, updated.tags) == ("Shared models", {"team": "platform"})
    assert admin.registries.update(name, description=None).description is None

    admin.role_assignments.delete(granted.id, registry=name)
    with pytest.raises(NotFoundError):
        alice.client.registries.get(name)
    by_path = admin.role_assignments.create(
        role="Reader", user=alice.name, scope=f"/registries/{name}"
    )
    assert by_path.registry == name
    admin.registries.delete(name)
    assert name not in [r.name for r in admin.registries.list()]
    with pytest.raises(NotFoundError) as caught:
        admin.role_assignments.list(registry=name)
    assert caught.value.code == "registry_not_found"


def test_one_scope_at_a_time_is_checked_before_any_request(admin: Client) -> None:
    for call, field in (
        (
            lambda: admin.role_assignments.create(
                role="Reader", user="admin", workspace="w", registry="r"
            ),
            "registry",
        ),
        (lambda: admin.role_assignments.list("w", registry="r"), "registry"),
        (lambda: admin.role_assignments.delete("x", workspace="w", registry="r"), "registry"),
        (
            lambda: admin.role_assignments.create(
                role="Reader", user="admin", registry="r", scope="/workspaces/w"
            ),
            "scope",
        ),
    ):
        with pytest.raises(InvalidInputError) as caught:
            call()
        assert (caught.value.code, caught.value.field) == ("conflicting_scope", field)
    with pytest.raises(InvalidInputError) as caught:
        admin.role_assignments.create(role="Reader", user="admin", scope="/registries/")
    assert caught.value.code == "invalid_scope"


def test_granting_a_role_that_allows_more_than_you_hold_is_an_escalation(
    server: RunningServer, admin: Client, new_person: Callable[[], Person]
) -> None:
    manager = new_person()
    alice = new_person()
    workspace = admin.workspaces.create(unique()).name
    access_manager = unique("access-manager")
    admin.roles.create(
        access_manager,
        ["workspaces/read", "workspaces/roleAssignments/*"],
        assignable_scopes=["workspace"],
    )
    admin.role_assignments.create(role=access_manager, user=manager.name, workspace=workspace)

    with pytest.raises(ForbiddenError) as caught:
        manager.client.role_assignments.create(role="Owner", user=alice.name, workspace=workspace)
    assert (caught.value.status, caught.value.code, caught.value.field) == (
        403,
        "escalation",
        "role",
    )
    assert not can_read(alice.client, workspace)
    # What the manager does hold, they may pass on.
    manager.client.role_assignments.create(
        role=access_manager, user=alice.name, workspace=workspace
    )
    assert can_read(alice.client, workspace)


def test_a_contributor_may_not_assign_roles_at_all(
    server: RunningServer, admin: Client, new_person: Callable[[], Person]
) -> None:
    contributor = new_person()
    workspace = admin.workspaces.create(unique()).name
    admin.role_assignments.create(role="Contributor", user=contributor.name, workspace=workspace)
    assert can_read(contributor.client, workspace)
    for role in ("Owner", "Reader"):
        with pytest.raises(ForbiddenError) as caught:
            contributor.client.role_assignments.create(
                role=role, user=contributor.name, workspace=workspace
            )
        assert caught.value.code == "forbidden"
    assert [a.role for a in admin.role_assignments.list(workspace)].count("Owner") == 1


# ---------------------------------------------------------------------------------------------
# The audit log


def test_audit_list_filters_by_principal_outcome_action_and_time_and_pages(
    server: RunningServer, admin: Client, new_person: Callable[[], Person]
) -> None:
    alice = new_person()
    before = datetime.now(UTC)
    workspace = alice.client.workspaces.create(unique()).name  # succeeded
    with pytest.raises(ForbiddenError):
        alice.client.roles.create(unique("role"), ["workspaces/read"])  # denied
    with pytest.raises(ForbiddenError):
        alice.client.groups.create(unique("grp"))  # denied

    events = settled(lambda: list(admin.audit.list(principal=alice.name)), 3)
    assert all(isinstance(e, AuditEventRead) for e in events)
    assert {e.principal for e in events} == {alice.name}
    assert [(e.action, e.outcome) for e in events] == [
        ("groups/write", "denied"),
        ("roles/write", "denied"),
        ("workspaces/create", "succeeded"),
    ]  # newest first

    denied = list(admin.audit.list(principal=alice.name, outcome="denied"))
    assert [e.action for e in denied] == ["groups/write", "roles/write"]
    assert {e.status for e in denied} == {403}
    created = list(admin.audit.list(principal=alice.name, action="workspaces/create"))
    assert [(e.outcome, e.resource) for e in created] == [("succeeded", "/api/v1/workspaces")]

    # One event a page gives the same events, page by page.
    assert [e.id for e in admin.audit.list(principal=alice.name, page_size=1)] == [
        e.id for e in events
    ]
    # Time filters: aware datetimes, ISO text, and naive datetimes (taken as UTC).
    assert list(admin.audit.list(principal=alice.name, until=before)) == []
    assert list(admin.audit.list(principal=alice.name, since=before)) == events
    later = datetime.now(UTC) + timedelta(hours=1)
    assert list(admin.audit.list(principal=alice.name, since=later.isoformat())) == []
    naive = before.replace(tzinfo=None)
    assert list(admin.audit.list(principal=alice.name, since=naive)) == events
    assert list(admin.audit.list(principal=alice.name, until=naive)) == []

    # A workspace's own log holds its events only.
    in_workspace = list(admin.audit.list(workspace, principal="admin"))
    assert in_workspace == []
    admin.workspaces.update(workspace, description="audited")
    in_workspace = settled(lambda: list(admin.audit.list(workspace)), 1)
    assert [(e.principal, e.action, e.workspace) for e in in_workspace] == [
        ("admin", "workspaces/write", workspace)
    ]


def test_audit_list_checks_its_arguments(admin: Client) -> None:
    with pytest.raises(InvalidInputError) as caught:
        admin.audit.list(since="yesterday")
    assert (caught.value.code, caught.value.field) == ("invalid_time", "since")
    with pytest.raises(InvalidInputError) as caught:
        list(admin.audit.list(outcome="maybe"))
    assert caught.value.field == "outcome"


def test_the_audit_log_is_not_for_everyone(
    server: RunningServer, admin: Client, new_person: Callable[[], Person]
) -> None:
    alice = new_person()
    with pytest.raises(ForbiddenError):
        list(alice.client.audit.list())


# ---------------------------------------------------------------------------------------------
# Token lifetimes


def _lifetime(expires_at: datetime) -> timedelta:
    return expires_at - datetime.now(UTC)


@pytest.mark.parametrize(
    ("kwargs", "days"),
    [
        ({"expires_in": timedelta(days=7)}, 7),
        ({"expires_in": 3}, 3),
        ({"expires_in_days": 5}, 5),
        ({}, 90),
    ],
)
def test_token_lifetimes(admin: Client, kwargs: dict[str, Any], days: int) -> None:
    created = admin.tokens.create(unique("tok"), **kwargs)
    assert timedelta(days=days, minutes=-5) < _lifetime(created.expires_at) <= timedelta(days=days)


def test_token_lifetimes_that_are_not_whole_days_or_given_twice_are_refused(
    admin: Client,
) -> None:
    before = {t.id for t in admin.tokens.list()}
    with pytest.raises(InvalidInputError) as caught:
        admin.tokens.create("t", expires_in=timedelta(hours=36))
    assert (caught.value.code, caught.value.field) == ("invalid_expiry", "expires_in")
    with pytest.raises(InvalidInputError) as caught:
        admin.tokens.create("t", expires_in=2, expires_in_days=2)
    assert caught.value.code == "conflicting_expiry"
    with pytest.raises(InvalidInputError) as caught:
        admin.tokens.create("t", expires_in=timedelta(0))
    assert caught.value.field == "expires_in_days"  # the server's own check
    assert {t.id for t in admin.tokens.list()} == before
