"""/api/v1/registries over real HTTP, and role assignments at registry scope.

The server is the access tests' one (new users hold no role), so every permission a caller
has here is one the test gave it. The full role-by-route matrix for these routes is in
tests/api/test_access_matrix.py; this module checks the behaviour and the client mistakes.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Actor, Api, assignments_path, problem_code
from tests.conftest import unique

REGISTRIES = "/api/v1/registries"


def _problem(response: httpx.Response, status: int, code: str, field: str | None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["code"], body.get("field")) == (code, field), body
    return str(body["detail"])


def _names(api: Api, actor: Actor | None = None) -> list[str]:
    headers = actor.headers if actor else api.admin
    response = api.call("GET", REGISTRIES, headers, params={"max_results": 1000})
    assert response.status_code == 200, response.text
    return [r["name"] for r in response.json()["items"]]


def _holders(api: Api, registry: str) -> list[tuple[str, str]]:
    listed = api.as_admin("GET", assignments_path(None, registry)).json()
    return sorted((a["principal_name"], a["role"]) for a in listed)


# ----------------------------------------------------------------------------------------
# The registry itself
# ----------------------------------------------------------------------------------------


def test_create_show_update_list_and_delete(api: Api) -> None:
    name = unique("reg")
    body = {"name": name, "description": "Vetted models", "tags": {"team": "platform"}}
    made = api.call("POST", REGISTRIES, api.admin, json=body)
    assert made.status_code == 201, made.text
    registry = made.json()
    assert (registry["name"], registry["description"], registry["tags"]) == (
        name,
        "Vetted models",
        {"team": "platform"},
    )
    assert registry["created_by"] == "admin"
    assert api.as_admin("GET", f"{REGISTRIES}/{name}").json() == registry
    assert name in _names(api)

    changed = api.as_admin("PATCH", f"{REGISTRIES}/{name}", json={"tags": {"stage": "prod"}})
    assert changed.json()["tags"] == {"stage": "prod"}
    assert changed.json()["description"] == "Vetted models"  # only what was sent changes
    assert changed.json()["updated_at"] >= registry["updated_at"]
    cleared = api.as_admin(
        "PATCH", f"{REGISTRIES}/{name}", json={"description": None, "tags": None}
    )
    assert (cleared.json()["description"], cleared.json()["tags"]) == (None, {})

    deleted = api.call("DELETE", f"{REGISTRIES}/{name}", api.admin)
    assert deleted.status_code == 204, deleted.text
    _problem(
        api.call("GET", f"{REGISTRIES}/{name}", api.admin), 404, "registry_not_found", "registry"
    )
    assert name not in _names(api)


def test_the_creator_becomes_owner_at_the_registry(api: Api) -> None:
    creator = api.user_with("Contributor")  # registries/write at global scope
    name = unique("reg")
    made = api.call("POST", REGISTRIES, creator.headers, json={"name": name})
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == creator.name
    assert _holders(api, name) == [(creator.name, "Owner")]
    # As Owner there (Contributor alone may not), the creator hands out roles in it.
    colleague = api.user()
    granted = api.call(
        "POST",
        assignments_path(None, name),
        creator.headers,
        json={"role": "Registry User", "user": colleague.name},
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()["scope"] == f"/registries/{name}"
    assert (granted.json()["registry"], granted.json()["workspace"]) == (name, None)


@pytest.mark.parametrize("name", ["A-upper", "-lead", "x", "a_b", "a" * 64, "sp ace", "a/b"])
def test_invalid_names_are_400_naming_the_field(api: Api, name: str) -> None:
    response = api.call("POST", REGISTRIES, api.admin, json={"name": name})
    _problem(response, 400, "invalid_field", "name")


def test_azureml_is_a_reserved_name(api: Api) -> None:
    response = api.call("POST", REGISTRIES, api.admin, json={"name": "azureml"})
    detail = _problem(response, 400, "reserved_name", "name")
    assert "curated environments" in detail


def test_a_duplicate_name_is_409(api: Api) -> None:
    name = api.registry()
    response = api.call("POST", REGISTRIES, api.admin, json={"name": name})
    _problem(response, 409, "registry_exists", "name")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"description": "no name"}, "missing_field", "name"),
        ({"name": "r-loc", "location": "eastus"}, "unknown_field", "location"),
        (
            {"name": "r-rep", "replication_locations": [{"location": "westus"}]},
            "unknown_field",
            "replication_locations",
        ),
        ({"name": "r-tags", "tags": ["not", "a", "map"]}, "invalid_field", "tags"),
        ({"name": "r-tag", "tags": {"k": {"nested": 1}}}, "invalid_field", "tags.k"),
        ({"name": "r-desc", "description": "x" * 8193}, "invalid_field", "description"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(
    api: Api, body: dict[str, Any], code: str, field: str
) -> None:
    _problem(api.call("POST", REGISTRIES, api.admin, json=body), 400, code, field)
    assert body.get("name") not in _names(api)


def test_bad_updates_are_400_naming_the_field(api: Api) -> None:
    name = api.registry()
    path = f"{REGISTRIES}/{name}"
    _problem(
        api.call("PATCH", path, api.admin, json={"name": "other"}), 400, "unknown_field", "name"
    )
    _problem(api.call("PATCH", path, api.admin, json={"tags": "x"}), 400, "invalid_field", "tags")


def test_an_unknown_registry_is_404_on_every_route(api: Api) -> None:
    missing = unique("nope")
    for method, path, body in (
        ("GET", f"{REGISTRIES}/{missing}", None),
        ("PATCH", f"{REGISTRIES}/{missing}", {"description": "x"}),
        ("DELETE", f"{REGISTRIES}/{missing}", None),
        ("GET", assignments_path(None, missing), None),
        ("POST", assignments_path(None, missing), {"role": "Reader", "user": "admin"}),
        ("DELETE", assignments_path(None, missing) + "/abc", None),
    ):
        response = api.call(method, path, api.admin, json=body)
        detail = _problem(response, 404, "registry_not_found", "registry")
        assert detail == f"registry {missing!r} does not exist"


def test_the_list_pages_by_name(api: Api) -> None:
    made = sorted(api.registry() for _ in range(3))
    seen: list[str] = []
    params: dict[str, Any] = {"max_results": 2}
    while True:
        page = api.as_admin("GET", REGISTRIES, params=params).json()
        assert len(page["items"]) <= 2
        seen += [r["name"] for r in page["items"]]
        if not page["next_page_token"]:
            break
        params["page_token"] = page["next_page_token"]
    assert seen == sorted(seen)
    assert set(made) <= set(seen)
    _problem(
        api.call("GET", REGISTRIES, api.admin, params={"max_results": 0}),
        400,
        "invalid_field",
        "max_results",
    )


# ----------------------------------------------------------------------------------------
# Who may do what: registry scope
# ----------------------------------------------------------------------------------------


def test_a_registry_user_reads_its_registry_and_nothing_more(api: Api) -> None:
    registry, other = api.registry(), api.registry()
    user = api.user_with("Registry User", registry=registry)
    path = f"{REGISTRIES}/{registry}"

    shown = api.call("GET", path, user.headers)
    assert shown.status_code == 200, shown.text
    assert _names(api, user) == [registry]
    for method, body in (("PATCH", {"description": "x"}), ("DELETE", None)):
        _problem(api.call(method, path, user.headers, json=body), 403, "forbidden", None)
    _problem(
        api.call("POST", REGISTRIES, user.headers, json={"name": unique("reg")}),
        403,
        "forbidden",
        None,
    )
    # another registry looks as if it did not exist; so does every workspace
    hidden = api.call("GET", f"{REGISTRIES}/{other}", user.headers)
    _problem(hidden, 404, "registry_not_found", "registry")
    workspace = api.workspace()
    hidden = api.call("GET", f"/api/v1/workspaces/{workspace}", user.headers)
    _problem(hidden, 404, "workspace_not_found", "workspace")
    assert api.call("GET", "/api/v1/workspaces", user.headers).json()["items"] == []
    # nor may it see or change who holds what in its registry
    listing = api.call("GET", assignments_path(None, registry), user.headers)
    _problem(listing, 403, "forbidden", None)
    assert api.as_admin("GET", path).json()["description"] is None


def test_workspace_roles_give_nothing_on_registries_and_registry_roles_nothing_in_workspaces(
    api: Api,
) -> None:
    registry, workspace = api.registry(), api.workspace()
    ws_owner = api.user_with("Owner", workspace=workspace)
    reg_owner = api.user_with("Owner", registry=registry)

    _problem(
        api.call("GET", f"{REGISTRIES}/{registry}", ws_owner.headers),
        404,
        "registry_not_found",
        "registry",
    )
    assert _names(api, ws_owner) == []
    _problem(
        api.call("GET", f"/api/v1/workspaces/{workspace}", reg_owner.headers),
        404,
        "workspace_not_found",
        "workspace",
    )
    # An Owner at a registry holds nothing at global scope: no new registries, no users.
    made = api.call("POST", REGISTRIES, reg_owner.headers, json={"name": unique("reg")})
    _problem(made, 403, "forbidden", None)
    _problem(api.call("GET", "/api/v1/users", reg_owner.headers), 403, "forbidden", None)
    deleted = api.call("DELETE", f"{REGISTRIES}/{registry}", reg_owner.headers)
    assert deleted.status_code == 204, deleted.text


def test_a_reader_at_global_lists_and_reads_every_registry_but_changes_none(api: Api) -> None:
    registry = api.registry()
    reader = api.user_with("Reader")
    assert registry in _names(api, reader)
    assert api.call("GET", f"{REGISTRIES}/{registry}", reader.headers).status_code == 200
    listing = api.call("GET", assignments_path(None, registry), reader.headers)
    assert listing.status_code == 200, listing.text
    patched = api.call("PATCH", f"{REGISTRIES}/{registry}", reader.headers, json={"tags": {}})
    _problem(patched, 403, "forbidden", None)
    grant = {"role": "Reader", "user": reader.name}
    _problem(
        api.call("POST", assignments_path(None, registry), reader.headers, json=grant),
        403,
        "forbidden",
        None,
    )


def test_a_group_s_registry_role_reaches_its_members(api: Api) -> None:
    registry = api.registry()
    member = api.user()
    group = api.group(member.name)
    assert _names(api, member) == []
    api.assign("Reader", registry=registry, group=group)
    assert _names(api, member) == [registry]
    api.as_admin("DELETE", f"/api/v1/groups/{group}/members/{member.name}")
    assert _names(api, member) == []


def test_assigning_at_a_registry_needs_its_role_assignment_write(api: Api) -> None:
    registry = api.registry()
    colleague = api.user()
    grant = {"role": "Registry User", "user": colleague.name}
    path = assignments_path(None, registry)

    # Contributor at the registry: everything but role assignments
    contributor = api.user_with("Contributor", registry=registry)
    _problem(api.call("POST", path, contributor.headers, json=grant), 403, "forbidden", None)
    # Owner of a workspace, or at another registry: nothing here (the registry is hidden)
    elsewhere = api.user_with("Owner", registry=api.registry())
    _problem(
        api.call("POST", path, elsewhere.headers, json=grant), 404, "registry_not_found", "registry"
    )
    assert colleague.name not in [name for name, _ in _holders(api, registry)]

    # a custom role with only registries/roleAssignments/* may pass on what it holds there
    assigner = api.user()
    api.assign(
        api.role(["registries/read", "registries/assets/*", "registries/roleAssignments/*"]),
        registry=registry,
        user=assigner.name,
    )
    _problem(
        api.call("POST", path, assigner.headers, json={**grant, "role": "Owner"}),
        403,
        "escalation",
        "role",
    )
    granted = api.call("POST", path, assigner.headers, json=grant)
    assert granted.status_code == 201, granted.text
    assert (colleague.name, "Registry User") in _holders(api, registry)
    # ... and remove it again
    removed = api.call("DELETE", f"{path}/{granted.json()['id']}", assigner.headers)
    assert removed.status_code == 204, removed.text
    assert (colleague.name, "Registry User") not in _holders(api, registry)


def test_a_global_owner_assigns_at_any_registry(api: Api) -> None:
    registry = api.registry()
    boss = api.user_with("Owner")
    colleague = api.user()
    granted = api.call(
        "POST",
        assignments_path(None, registry),
        boss.headers,
        json={"role": "Owner", "user": colleague.name},
    )
    assert granted.status_code == 201, granted.text
    assert api.call("DELETE", f"{REGISTRIES}/{registry}", colleague.headers).status_code == 204


def test_a_role_s_assignable_scopes_apply_at_a_registry(api: Api) -> None:
    registry = api.registry()
    path = assignments_path(None, registry)
    body = {"role": "Workspace Creator", "user": api.user().name}
    _problem(api.call("POST", path, api.admin, json=body), 400, "scope_not_assignable", "role")
    workspace_only = unique("Workspace Only")
    api.as_admin(
        "POST",
        "/api/v1/roles",
        json={
            "name": workspace_only,
            "actions": ["workspaces/read"],
            "assignable_scopes": ["workspace"],
        },
    )
    body["role"] = workspace_only
    _problem(api.call("POST", path, api.admin, json=body), 400, "scope_not_assignable", "role")
    # and Registry User cannot be held at a workspace
    ws_path = assignments_path(api.workspace())
    body["role"] = "Registry User"
    _problem(api.call("POST", ws_path, api.admin, json=body), 400, "scope_not_assignable", "role")


def test_bad_assignments_at_a_registry_name_the_field(api: Api) -> None:
    registry = api.registry()
    path = assignments_path(None, registry)
    cases = [
        ({"role": "Reader"}, 400, "invalid_body", None),
        ({"role": "Reader", "user": "a", "group": "b"}, 400, "invalid_body", None),
        ({"role": "No Such Role", "user": "admin"}, 404, "role_not_found", "role"),
        ({"role": "Reader", "user": unique("ghost")}, 404, "user_not_found", "user"),
        ({"role": "Reader", "group": unique("ghost")}, 404, "group_not_found", "group"),
        ({"role": "Reader", "user": "admin", "registry": "x"}, 400, "unknown_field", "registry"),
    ]
    for body, status, code, field in cases:
        response = api.call("POST", path, api.admin, json=body)
        assert response.status_code == status, (body, response.text)
        assert (problem_code(response), response.json().get("field")) == (code, field), body
    made = api.assign("Reader", registry=registry, user="admin")
    again = api.call("POST", path, api.admin, json={"role": "Reader", "user": "admin"})
    _problem(again, 409, "role_assignment_exists", "role")
    # an assignment is found only at the scope it was made at
    elsewhere = api.call("DELETE", f"{assignments_path(None, api.registry())}/{made}", api.admin)
    _problem(elsewhere, 404, "role_assignment_not_found", "id")
    at_global = api.call("DELETE", f"{assignments_path(None)}/{made}", api.admin)
    _problem(at_global, 404, "role_assignment_not_found", "id")


def test_deleting_a_registry_removes_its_assignments(api: Api) -> None:
    registry = api.registry()
    user = api.user_with("Reader", registry=registry)
    assert _names(api, user) == [registry]
    api.as_admin("DELETE", f"{REGISTRIES}/{registry}")
    assert _names(api, user) == []
    # A registry made again under the same name inherits nothing of the old one.
    api.as_admin("POST", REGISTRIES, json={"name": registry})
    assert _holders(api, registry) == [("admin", "Owner")]
    _problem(
        api.call("GET", f"{REGISTRIES}/{registry}", user.headers),
        404,
        "registry_not_found",
        "registry",
    )
    mine = api.as_admin("GET", "/api/v1/users/" + user.name).json()
    assert mine["name"] == user.name  # the user itself is untouched
