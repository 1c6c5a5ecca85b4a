"""No escalation: nobody assigns where they may not, nor grants what they do not hold; and a
change of group membership, of a user's state or of a role takes effect on the next request.

Compute has no routes yet, so "a Data Scientist cannot create or delete compute" is shown
here on the role definition the server serves (evaluated by the matrix module's own wildcard
matcher) and in the matrix's hand-written expectations, which check the routes over HTTP as
soon as they exist. Secret values have routes: a Data Scientist is refused one over HTTP.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Actor, Api, assignments_path, problem_code
from tests.api.test_access_matrix import ROUTES, SERVED, definition_allows, expected_allowed
from tests.conftest import start_server, unique

PASSWORD = "correct horse battery staple"


def _assign(
    api: Api, actor: Actor, role: str, grantee: str, workspace: str | None
) -> httpx.Response:
    body = {"role": role, "user": grantee}
    return api.call("POST", assignments_path(workspace), actor.headers, json=body)


def _refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 403, response.text
    assert problem_code(response) == code, response.text


def _held_by(api: Api, grantee: str, workspace: str | None) -> list[str]:
    listed = api.as_admin("GET", assignments_path(workspace)).json()
    return [a["role"] for a in listed if a["principal_name"] == grantee]


# ----------------------------------------------------------------------------------------
# Data Scientist
# ----------------------------------------------------------------------------------------


def test_a_data_scientist_cannot_assign_roles(api: Api) -> None:
    workspace = api.workspace()
    scientist = api.user_with("Data Scientist", workspace=workspace)
    colleague = api.user()
    for role in ("Reader", "Data Scientist", "Owner"):
        _refused(_assign(api, scientist, role, colleague.name, workspace), "forbidden")
        _refused(_assign(api, scientist, role, colleague.name, None), "forbidden")
    _refused(_assign(api, scientist, "Owner", scientist.name, workspace), "forbidden")
    assert _held_by(api, colleague.name, workspace) == []
    assert _held_by(api, scientist.name, workspace) == ["Data Scientist"]

    existing = api.assign("Reader", workspace=workspace, user=colleague.name)
    removal = api.call("DELETE", f"{assignments_path(workspace)}/{existing}", scientist.headers)
    _refused(removal, "forbidden")
    assert _held_by(api, colleague.name, workspace) == ["Reader"]
    # but it may see who holds what in its workspace
    listed = api.call("GET", assignments_path(workspace), scientist.headers)
    assert listed.status_code == 200, listed.text


def test_a_data_scientist_may_not_create_or_delete_compute_nor_read_secret_values(
    api: Api,
) -> None:
    workspace = api.workspace()
    scientist = api.user_with("Data Scientist", workspace=workspace)
    served = api.call("GET", "/api/v1/roles/Data%20Scientist", scientist.headers)
    assert served.status_code == 200, served.text
    definition = served.json()
    assert definition["name"] == "Data Scientist"
    denied = (
        "workspaces/computes/write",
        "workspaces/computes/delete",
        "workspaces/secrets/read",
        "workspaces/write",
        "workspaces/delete",
        "workspaces/roleAssignments/write",
        "workspaces/roleAssignments/delete",
    )
    allowed = (
        "workspaces/computes/read",
        "workspaces/jobs/write",
        "workspaces/models/write",
        "workspaces/secrets/metadata/read",
    )
    for action in denied:
        assert not definition_allows(definition, action), action
        assert not expected_allowed("Data Scientist", action), action
    for action in allowed:
        assert definition_allows(definition, action), action
        assert expected_allowed("Data Scientist", action), action
    # Over HTTP: the secret's name is visible, its value is not.
    owner_set = api.as_admin(
        "PUT", f"/api/v1/workspaces/{workspace}/secrets/db-password", json={"value": "hunter22"}
    )
    assert owner_set.status_code in (200, 201)
    names = api.call("GET", f"/api/v1/workspaces/{workspace}/secrets", scientist.headers)
    assert names.status_code == 200
    assert "hunter22" not in names.text
    reveal = api.call(
        "POST", f"/api/v1/workspaces/{workspace}/secrets/db-password/reveal", scientist.headers
    )
    assert reveal.status_code == 403, reveal.text
    assert "hunter22" not in reveal.text
    # Once routes declare these actions, the matrix calls them over HTTP: it knows them all.
    for route in SERVED:
        if route.action in denied:
            assert (route.method, route.path) in ROUTES, route


# ----------------------------------------------------------------------------------------
# Contributor, Owner, custom roles
# ----------------------------------------------------------------------------------------


def test_a_contributor_cannot_assign_at_all(api: Api) -> None:
    workspace = api.workspace()
    contributor = api.user_with("Contributor", workspace=workspace)
    colleague = api.user()
    for role in ("Owner", "Contributor", "Reader"):
        _refused(_assign(api, contributor, role, colleague.name, workspace), "forbidden")
    _refused(_assign(api, contributor, "Owner", contributor.name, workspace), "forbidden")
    assert _held_by(api, colleague.name, workspace) == []
    assert _held_by(api, contributor.name, workspace) == ["Contributor"]

    at_global = api.user_with("Contributor")
    _refused(_assign(api, at_global, "Reader", colleague.name, None), "forbidden")
    _refused(_assign(api, at_global, "Reader", colleague.name, workspace), "forbidden")


def test_a_contributor_allowed_to_assign_still_cannot_grant_owner(api: Api) -> None:
    workspace = api.workspace()
    contributor = api.user_with("Contributor", workspace=workspace)
    assigner = api.role(["workspaces/roleAssignments/write"])
    api.assign(assigner, workspace=workspace, user=contributor.name)
    colleague = api.user()

    _refused(_assign(api, contributor, "Owner", colleague.name, workspace), "escalation")
    _refused(_assign(api, contributor, "Owner", contributor.name, workspace), "escalation")
    assert _held_by(api, colleague.name, workspace) == []
    # what it holds, it may pass on
    granted = _assign(api, contributor, "Reader", colleague.name, workspace)
    assert granted.status_code == 201, granted.text
    assert _held_by(api, colleague.name, workspace) == ["Reader"]


def test_a_workspace_owner_grants_there_but_not_at_global(api: Api) -> None:
    workspace = api.workspace()
    owner = api.user_with("Owner", workspace=workspace)
    scientist = api.user()

    _refused(_assign(api, owner, "Data Scientist", scientist.name, None), "forbidden")
    assert _held_by(api, scientist.name, None) == []

    granted = _assign(api, owner, "Data Scientist", scientist.name, workspace)
    assert granted.status_code == 201, granted.text
    assert _held_by(api, scientist.name, workspace) == ["Data Scientist"]
    seen = api.call("GET", f"/api/v1/workspaces/{workspace}", scientist.headers)
    assert seen.status_code == 200, seen.text
    # the owner of one workspace has nothing at global scope
    _refused(api.call("GET", "/api/v1/users", owner.headers), "forbidden")
    _refused(api.call("GET", "/api/v1/role-assignments", owner.headers), "forbidden")


def test_a_custom_role_allowing_what_the_granter_lacks_cannot_be_granted(api: Api) -> None:
    workspace = api.workspace()
    delegator = api.user()
    api.assign(
        api.role(["workspaces/read", "workspaces/roleAssignments/*", "workspaces/jobs/read"]),
        workspace=workspace,
        user=delegator.name,
    )
    grantee = api.user()
    for actions in (["workspaces/jobs/write"], ["workspaces/jobs/*"], ["workspaces/*/read"]):
        role = api.role(actions)
        _refused(_assign(api, delegator, role, grantee.name, workspace), "escalation")
        _refused(_assign(api, delegator, role, delegator.name, workspace), "escalation")
    assert _held_by(api, grantee.name, workspace) == []

    within = api.role(["workspaces/jobs/read"])
    granted = _assign(api, delegator, within, grantee.name, workspace)
    assert granted.status_code == 201, granted.text
    assert _held_by(api, grantee.name, workspace) == [within]


def test_admins_are_owners_at_global(api: Api) -> None:
    boss = api.user()
    granted = api.call(
        "POST", assignments_path(None), api.admin, json={"role": "Owner", "user": boss.name}
    )
    assert granted.status_code == 201, granted.text
    # and a global Owner may in turn grant anything anywhere
    colleague = api.user()
    workspace = api.workspace()
    for scope in (None, workspace):
        made = _assign(api, boss, "Owner", colleague.name, scope)
        assert made.status_code == 201, made.text


# ----------------------------------------------------------------------------------------
# Permissions: the union over scopes and roles
# ----------------------------------------------------------------------------------------


def test_permissions_are_the_union_over_roles_and_scopes(api: Api) -> None:
    workspace = api.workspace()
    scientist = api.user_with("Data Scientist", workspace=workspace)
    path = f"/api/v1/workspaces/{workspace}"
    _refused(api.call("PATCH", path, scientist.headers, json={"description": "x"}), "forbidden")
    # A role at global that allows workspaces/write: the Data Scientist's not_actions are no
    # deny assignment, so together they allow it.
    api.assign(api.role(["workspaces/write"]), user=scientist.name)
    patched = api.call("PATCH", path, scientist.headers, json={"description": "x"})
    assert patched.status_code == 200, patched.text

    # global reaches every workspace; a workspace role does not reach global
    reader = api.user_with("Reader")
    assert api.call("GET", path, reader.headers).status_code == 200
    _refused(api.call("PATCH", path, reader.headers, json={"description": "y"}), "forbidden")
    _refused(api.call("GET", "/api/v1/users", scientist.headers), "forbidden")


# ----------------------------------------------------------------------------------------
# Taking effect at once
# ----------------------------------------------------------------------------------------


def test_a_group_member_gains_and_loses_access_with_the_group(api: Api) -> None:
    workspace = api.workspace()
    member = api.user()
    group = api.group(member.name)
    path = f"/api/v1/workspaces/{workspace}"

    def can_read() -> bool:
        response = api.call("GET", path, member.headers)
        assert response.status_code in (200, 404), response.text
        listed = api.call("GET", "/api/v1/workspaces", member.headers).json()["items"]
        assert (response.status_code == 200) == (workspace in [w["name"] for w in listed])
        return response.status_code == 200

    assert not can_read()
    api.assign("Reader", workspace=workspace, group=group)
    assert can_read()
    _refused(api.call("PATCH", path, member.headers, json={"description": "x"}), "forbidden")

    api.as_admin("DELETE", f"/api/v1/groups/{group}/members/{member.name}")
    assert not can_read()
    api.as_admin("POST", f"/api/v1/groups/{group}/members", json={"name": member.name})
    assert can_read()
    api.as_admin("DELETE", f"/api/v1/groups/{group}")
    assert not can_read()


def test_disabling_a_user_revokes_access_at_once(api: Api) -> None:
    workspace = api.workspace()
    name = unique("user")
    api.as_admin("POST", "/api/v1/users", json={"name": name, "password": PASSWORD})
    api.assign("Owner", workspace=workspace, user=name)
    token = {"Authorization": f"Bearer {api.token_for(name)}"}
    path = f"/api/v1/workspaces/{workspace}"
    with httpx.Client(base_url=api.server.url) as browser:
        login = browser.post("/api/v1/sessions", json={"name": name, "password": PASSWORD})
        assert login.status_code == 201, login.text
        assert api.call("GET", path, token).status_code == 200
        assert browser.get(path).status_code == 200

        api.as_admin("PATCH", f"/api/v1/users/{name}", json={"disabled": True})
        for response in (api.call("GET", path, token), browser.get(path)):
            assert response.status_code == 401, response.text
            assert problem_code(response) == "disabled_user"

        api.as_admin("PATCH", f"/api/v1/users/{name}", json={"disabled": False})
        assert api.call("GET", path, token).status_code == 200
        assert browser.get(path).status_code == 200


def test_removing_a_role_assignment_revokes_access_at_once(api: Api) -> None:
    workspace = api.workspace()
    owner = api.user()
    assignment = api.assign("Owner", workspace=workspace, user=owner.name)
    path = f"/api/v1/workspaces/{workspace}"
    assert api.call("GET", path, owner.headers).status_code == 200
    api.as_admin("DELETE", f"{assignments_path(workspace)}/{assignment}")
    response = api.call("GET", path, owner.headers)
    assert response.status_code == 404, response.text
    assert problem_code(response) == "workspace_not_found"


# ----------------------------------------------------------------------------------------
# Workspace Creator
# ----------------------------------------------------------------------------------------


def test_a_workspace_creator_creates_a_workspace_and_owns_it(api: Api) -> None:
    creator = api.user_with("Workspace Creator")
    others = api.workspace()
    name = unique("own")
    created = api.call("POST", "/api/v1/workspaces", creator.headers, json={"name": name})
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == creator.name
    assert _held_by(api, creator.name, name) == ["Owner"]

    colleague = api.user()
    granted = _assign(api, creator, "Data Scientist", colleague.name, name)
    assert granted.status_code == 201, granted.text
    patched = api.call(
        "PATCH", f"/api/v1/workspaces/{name}", creator.headers, json={"description": "mine"}
    )
    assert patched.status_code == 200, patched.text
    listed = api.call("GET", "/api/v1/workspaces", creator.headers).json()["items"]
    assert [w["name"] for w in listed] == [name]
    hidden = api.call("GET", f"/api/v1/workspaces/{others}", creator.headers)
    assert (hidden.status_code, problem_code(hidden)) == (404, "workspace_not_found")
    # creating workspaces gives nothing at global scope
    _refused(_assign(api, creator, "Reader", colleague.name, None), "forbidden")
    deleted = api.call("DELETE", f"/api/v1/workspaces/{name}", creator.headers)
    assert deleted.status_code == 204, deleted.text


def test_without_workspace_creator_a_new_user_cannot_create_a_workspace(api: Api) -> None:
    assert api.server.settings.new_user_roles == []
    newcomer = api.user()
    refused = api.call("POST", "/api/v1/workspaces", newcomer.headers, json={"name": unique()})
    _refused(refused, "forbidden")
    assert _held_by(api, newcomer.name, None) == []


def test_by_default_a_new_user_may_create_a_workspace(tmp_path: Path, database_url: str) -> None:
    with start_server(tmp_path, database_url) as server, httpx.Client(timeout=30) as http:
        default = Api(server, http)
        assert server.settings.new_user_roles == ["Workspace Creator"]
        newcomer = default.user()
        assert _held_by(default, newcomer.name, None) == ["Workspace Creator"]
        name = unique()
        created = default.call("POST", "/api/v1/workspaces", newcomer.headers, json={"name": name})
        assert created.status_code == 201, created.text
        assert _held_by(default, newcomer.name, name) == ["Owner"]


# ----------------------------------------------------------------------------------------
# Escalation through groups and identities: holding groups/write, users/write or
# servicePrincipals/write must not let anyone take or act as more than they hold
# ----------------------------------------------------------------------------------------


def test_a_contributor_cannot_take_a_group_s_roles_by_joining_it(api: Api) -> None:
    """Joining a group hands over its roles: adding a member is granting them."""
    contributor = api.user_with("Contributor")
    owners = api.group()
    api.assign("Owner", group=owners)
    members = f"/api/v1/groups/{owners}/members"
    joined = api.call("POST", members, contributor.headers, json={"name": contributor.name})
    assert joined.status_code == 403, joined.text
    assert problem_code(joined) in ("escalation", "forbidden"), joined.text
    assert api.as_admin("GET", f"/api/v1/groups/{owners}").json()["members"] == []
    colleague = api.user()
    _refused(_assign(api, contributor, "Owner", colleague.name, None), "forbidden")
    assert _held_by(api, colleague.name, None) == []

    # a group with no roles, or roles it holds, it may fill
    plain = api.group()
    added = api.call(
        "POST",
        f"/api/v1/groups/{plain}/members",
        contributor.headers,
        json={"name": colleague.name},
    )
    assert added.status_code == 200, added.text
    readers = api.group()
    api.assign("Reader", group=readers)
    added = api.call(
        "POST",
        f"/api/v1/groups/{readers}/members",
        contributor.headers,
        json={"name": colleague.name},
    )
    assert added.status_code == 200, added.text


def test_a_group_owner_cannot_hand_out_roles_it_does_not_hold(api: Api) -> None:
    workspace = api.workspace()
    owner, newcomer = api.user(), api.user()
    group = api.group(owners=(owner.name,))
    api.assign("Data Scientist", workspace=workspace, group=group)
    members = f"/api/v1/groups/{group}/members"

    refused = api.call("POST", members, owner.headers, json={"name": newcomer.name})
    _refused(refused, "escalation")
    refused_self = api.call("POST", members, owner.headers, json={"name": owner.name})
    _refused(refused_self, "escalation")
    assert api.as_admin("GET", f"/api/v1/groups/{group}").json()["members"] == []
    hidden = api.call("GET", f"/api/v1/workspaces/{workspace}", newcomer.headers)
    assert hidden.status_code == 404, hidden.text

    # once it holds what the group grants (Owner there covers Data Scientist), it may
    api.assign("Owner", workspace=workspace, user=owner.name)
    added = api.call("POST", members, owner.headers, json={"name": newcomer.name})
    assert added.status_code == 200, added.text
    seen = api.call("GET", f"/api/v1/workspaces/{workspace}", newcomer.headers)
    assert seen.status_code == 200, seen.text


@pytest.fixture
def user_manager(api: Api) -> Actor:
    """Holds users/write at global scope and nothing else."""
    manager = api.user()
    api.assign(api.role(["users/write"]), user=manager.name)
    return manager


def test_users_write_alone_cannot_make_an_admin(api: Api, user_manager: Actor) -> None:
    name = unique("evil")
    made = api.call(
        "POST", "/api/v1/users", user_manager.headers, json={"name": name, "is_admin": True}
    )
    shown = api.as_admin("GET", f"/api/v1/users/{name}") if made.status_code < 300 else None
    assert shown is None or shown.json()["is_admin"] is False
    assert made.status_code == 403, made.text
    plain = api.call("POST", "/api/v1/users", user_manager.headers, json={"name": name})
    assert plain.status_code == 201, plain.text
    assert plain.json()["is_admin"] is False


def test_users_write_alone_cannot_mint_an_admin_token(api: Api, user_manager: Actor) -> None:
    minted = api.call(
        "POST", "/api/v1/tokens", user_manager.headers, json={"name": "mine", "user": "admin"}
    )
    assert minted.status_code in (403, 404), minted.text
    assert "token" not in minted.json()
    # nor for a user holding a role it lacks; for a user holding nothing more, it may
    reader = api.user_with("Reader")
    minted = api.call(
        "POST", "/api/v1/tokens", user_manager.headers, json={"name": "x", "user": reader.name}
    )
    assert minted.status_code in (403, 404), minted.text
    weaker = api.user()
    minted = api.call(
        "POST", "/api/v1/tokens", user_manager.headers, json={"name": "x", "user": weaker.name}
    )
    assert minted.status_code == 201, minted.text


def test_users_write_alone_cannot_set_an_admin_s_password(api: Api, user_manager: Actor) -> None:
    admin = unique("admin")
    api.as_admin("POST", "/api/v1/users", json={"name": admin, "is_admin": True})
    reset = api.call(
        "PATCH", f"/api/v1/users/{admin}", user_manager.headers, json={"password": PASSWORD}
    )
    with httpx.Client(base_url=api.server.url) as browser:
        login = browser.post("/api/v1/sessions", json={"name": admin, "password": PASSWORD})
        assert login.status_code == 401, login.text
    assert reset.status_code == 403, reset.text
    disabled = api.call(
        "PATCH", f"/api/v1/users/{admin}", user_manager.headers, json={"disabled": True}
    )
    assert disabled.status_code == 403, disabled.text
    assert api.as_admin("GET", f"/api/v1/users/{admin}").json()["disabled"] is False


def test_service_principals_write_alone_cannot_mint_a_token_for_a_stronger_one(
    api: Api,
) -> None:
    operator = api.user()
    api.assign(api.role(["servicePrincipals/write"]), user=operator.name)
    robot = unique("robot")
    api.as_admin("POST", "/api/v1/service-principals", json={"name": robot})
    api.assign("Owner", service_principal=robot)
    minted = api.call(
        "POST", "/api/v1/tokens", operator.headers, json={"name": "mine", "user": robot}
    )
    assert minted.status_code in (403, 404), minted.text
    weak = api.service_principal()
    minted = api.call(
        "POST", "/api/v1/tokens", operator.headers, json={"name": "mine", "user": weak.name}
    )
    assert minted.status_code == 201, minted.text


def test_users_write_alone_cannot_log_in_as_a_user_it_made_stronger(
    tmp_path: Path, database_url: str
) -> None:
    with (
        start_server(tmp_path, database_url, new_user_roles=["Reader"]) as server,
        httpx.Client(timeout=30) as http,
    ):
        api = Api(server, http)
        manager = api.user()
        for held in api.as_admin("GET", assignments_path(None)).json():
            if held["principal_name"] == manager.name:  # the Reader every new user gets
                api.as_admin("DELETE", f"{assignments_path(None)}/{held['id']}")
        api.assign(api.role(["users/write"]), user=manager.name)
        _refused(api.call("GET", "/api/v1/users", manager.headers), "forbidden")

        puppet = unique("puppet")
        body = {"name": puppet, "password": PASSWORD}
        created = api.call("POST", "/api/v1/users", manager.headers, json=body)
        if created.status_code != 201:  # refused outright
            assert created.status_code == 403, created.text
            assert problem_code(created) in ("escalation", "forbidden"), created.text
            return
        with httpx.Client(base_url=server.url) as browser:
            login = browser.post("/api/v1/sessions", json=body)
            assert login.status_code == 201, login.text
            as_puppet = browser.get("/api/v1/users")
            assert as_puppet.status_code == 403, "the manager reads users through its puppet"
