"""Isolation: an Owner of workspace A has no way into workspace B, which it cannot even see.

A workspace the caller may not read answers exactly as a workspace that does not exist (404
``workspace_not_found``), for every route under it, and is missing from the caller's lists.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Actor, Api, assignments_path, problem_code
from tests.conftest import unique


@pytest.fixture(scope="module")
def two_workspaces(api: Api) -> tuple[Actor, str, str]:
    """(owner of A only, A, B): A and B made by the admin, B untouched by the owner."""
    a, b = api.workspace(), api.workspace()
    owner = api.user_with("Owner", workspace=a)
    api.assign("Reader", workspace=b, user=api.user().name)  # B has an assignment to see
    return owner, a, b


def _hidden(response: httpx.Response, workspace: str) -> dict[str, Any]:
    assert response.status_code == 404, response.text
    assert problem_code(response) == "workspace_not_found", response.text
    body: dict[str, Any] = response.json()
    assert body["detail"] == f"workspace {workspace!r} does not exist", body
    return body


def _without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


def _admin_view(api: Api, workspace: str) -> dict[str, Any]:
    body: dict[str, Any] = api.as_admin("GET", f"/api/v1/workspaces/{workspace}").json()
    return body


def test_the_owner_of_a_has_everything_in_a(
    api: Api, two_workspaces: tuple[Actor, str, str]
) -> None:
    owner, a, _ = two_workspaces
    for method, path in (
        ("GET", f"/api/v1/workspaces/{a}"),
        ("GET", f"/api/v1/workspaces/{a}/role-assignments"),
        ("GET", f"/api/v1/workspaces/{a}/audit"),
    ):
        response = api.call(method, path, owner.headers)
        assert response.status_code == 200, (path, response.text)
    patched = api.call(
        "PATCH", f"/api/v1/workspaces/{a}", owner.headers, json={"description": "mine"}
    )
    assert patched.status_code == 200, patched.text


def test_b_answers_like_a_workspace_that_does_not_exist(
    api: Api, two_workspaces: tuple[Actor, str, str]
) -> None:
    owner, _, b = two_workspaces
    before = _admin_view(api, b)
    missing = unique("nowhere")
    requests: list[tuple[str, str, Any]] = [
        ("GET", "/api/v1/workspaces/{}", None),
        ("PATCH", "/api/v1/workspaces/{}", {"description": "taken over"}),
        ("DELETE", "/api/v1/workspaces/{}", None),
        ("POST", "/api/v1/workspaces/{}/recover", None),
        ("GET", "/api/v1/workspaces/{}/role-assignments", None),
        ("POST", "/api/v1/workspaces/{}/role-assignments", {"role": "Owner", "user": owner.name}),
        ("GET", "/api/v1/workspaces/{}/audit", None),
    ]
    for method, template, body in requests:
        to_b = api.call(method, template.format(b), owner.headers, json=body)
        to_nowhere = api.call(method, template.format(missing), owner.headers, json=body)
        seen_b = _without_request_id(_hidden(to_b, b))
        seen_nowhere = _without_request_id(_hidden(to_nowhere, missing))
        assert seen_b == {**seen_nowhere, "detail": seen_nowhere["detail"].replace(missing, b)}
    assert _admin_view(api, b) == before, "B changed"
    names = [a["principal_name"] for a in api.as_admin("GET", assignments_path(b)).json()]
    assert owner.name not in names


def test_a_deleted_b_cannot_be_recovered_or_purged_by_the_owner_of_a(
    api: Api, two_workspaces: tuple[Actor, str, str]
) -> None:
    owner, _, _ = two_workspaces
    c = api.workspace()
    api.as_admin("DELETE", f"/api/v1/workspaces/{c}")
    _hidden(api.call("POST", f"/api/v1/workspaces/{c}/recover", owner.headers), c)
    purge = api.call(
        "DELETE",
        f"/api/v1/workspaces/{c}",
        owner.headers,
        params={"permanently_delete": "true"},
    )
    _hidden(purge, c)
    deleted = api.as_admin("GET", "/api/v1/workspaces", params={"deleted": "true"}).json()
    assert c in [w["name"] for w in deleted["items"]], "C is no longer soft-deleted"


def test_the_role_assignments_of_b_cannot_be_deleted(
    api: Api, two_workspaces: tuple[Actor, str, str]
) -> None:
    owner, a, b = two_workspaces
    in_b = api.assign("Reader", workspace=b, user=api.user().name)
    # through B's own path: B is hidden
    _hidden(api.call("DELETE", f"{assignments_path(b)}/{in_b}", owner.headers), b)
    # through A's path, where the owner may delete assignments: the id is not one of A's
    through_a = api.call("DELETE", f"{assignments_path(a)}/{in_b}", owner.headers)
    assert through_a.status_code == 404, through_a.text
    assert problem_code(through_a) == "role_assignment_not_found"
    # not through the global path either, even for the admin
    through_global = api.call("DELETE", f"{assignments_path(None)}/{in_b}", api.admin)
    assert through_global.status_code == 404, through_global.text
    assert problem_code(through_global) == "role_assignment_not_found"
    ids = [x["id"] for x in api.as_admin("GET", assignments_path(b)).json()]
    assert in_b in ids


def test_an_assignment_made_through_a_is_about_a_only(
    api: Api, two_workspaces: tuple[Actor, str, str]
) -> None:
    owner, a, b = two_workspaces
    grantee = api.user()
    # the body cannot name another workspace: the path is the only scope
    aimed_at_b = api.call(
        "POST",
        assignments_path(a),
        owner.headers,
        json={"role": "Reader", "user": grantee.name, "workspace": b},
    )
    assert aimed_at_b.status_code == 400, aimed_at_b.text
    assert problem_code(aimed_at_b) == "unknown_field"

    made = api.call(
        "POST", assignments_path(a), owner.headers, json={"role": "Owner", "user": grantee.name}
    )
    assert made.status_code == 201, made.text
    assert (made.json()["scope"], made.json()["workspace"]) == (f"/workspaces/{a}", a)
    assert made.json()["id"] in [x["id"] for x in api.as_admin("GET", assignments_path(a)).json()]
    in_b = [x["principal_name"] for x in api.as_admin("GET", assignments_path(b)).json()]
    assert grantee.name not in in_b
    assert api.call("GET", f"/api/v1/workspaces/{a}", grantee.headers).status_code == 200
    _hidden(api.call("GET", f"/api/v1/workspaces/{b}", grantee.headers), b)


def test_lists_show_only_what_the_caller_may_read(
    api: Api, two_workspaces: tuple[Actor, str, str]
) -> None:
    owner, a, b = two_workspaces
    listed = api.call("GET", "/api/v1/workspaces", owner.headers, params={"max_results": 1000})
    assert listed.status_code == 200, listed.text
    names = [w["name"] for w in listed.json()["items"]]
    assert a in names
    assert b not in names
    assert all(w["name"] == a for w in listed.json()["items"]), names

    # soft-deleted workspaces are listed the same way
    d = api.workspace()
    api.assign("Owner", workspace=d, user=owner.name)
    hidden_deleted = api.workspace()
    api.as_admin("DELETE", f"/api/v1/workspaces/{d}")
    api.as_admin("DELETE", f"/api/v1/workspaces/{hidden_deleted}")
    deleted = api.call("GET", "/api/v1/workspaces", owner.headers, params={"deleted": "true"})
    assert [w["name"] for w in deleted.json()["items"]] == [d]

    # a principal with no role sees none; a Reader at global sees all
    nobody = api.user()
    assert api.call("GET", "/api/v1/workspaces", nobody.headers).json()["items"] == []
    reader = api.user_with("Reader")
    everything = api.call("GET", "/api/v1/workspaces", reader.headers, params={"max_results": 1000})
    assert {a, b} <= {w["name"] for w in everything.json()["items"]}


def test_the_owner_of_a_cannot_read_b_s_audit_nor_the_global_audit(
    api: Api, two_workspaces: tuple[Actor, str, str]
) -> None:
    owner, a, b = two_workspaces
    _hidden(api.call("GET", f"/api/v1/workspaces/{b}/audit", owner.headers), b)
    everything = api.call("GET", "/api/v1/audit", owner.headers)
    assert everything.status_code == 403, everything.text
    assert problem_code(everything) == "forbidden"
    own = api.call(
        "GET", f"/api/v1/workspaces/{a}/audit", owner.headers, params={"max_results": 1000}
    )
    assert own.status_code == 200, own.text
    assert own.json()["items"], "A's audit shows none of the changes made in A"
    assert {e["workspace"] for e in own.json()["items"]} == {a}


def test_only_a_group_s_owners_and_admins_manage_it(api: Api) -> None:
    owner, outsider, newcomer = api.user(), api.user(), api.user()
    group = api.group(owners=(owner.name,))
    members = f"/api/v1/groups/{group}/members"

    refused = api.call("POST", members, outsider.headers, json={"name": newcomer.name})
    assert refused.status_code == 403, refused.text
    assert problem_code(refused) == "forbidden"
    refused_self = api.call("POST", members, outsider.headers, json={"name": outsider.name})
    assert refused_self.status_code == 403, refused_self.text
    shown = api.as_admin("GET", f"/api/v1/groups/{group}").json()
    assert shown["members"] == []

    added = api.call("POST", members, owner.headers, json={"name": newcomer.name})
    assert added.status_code == 200, added.text
    assert [m["name"] for m in added.json()["members"]] == [newcomer.name]

    not_removed = api.call("DELETE", f"{members}/{newcomer.name}", outsider.headers)
    assert not_removed.status_code == 403, not_removed.text
    not_deleted = api.call("DELETE", f"/api/v1/groups/{group}", outsider.headers)
    assert not_deleted.status_code == 403, not_deleted.text
    assert [
        m["name"] for m in api.as_admin("GET", f"/api/v1/groups/{group}").json()["members"]
    ] == [newcomer.name]

    removed = api.call("DELETE", f"{members}/{newcomer.name}", owner.headers)
    assert removed.status_code == 200, removed.text
    assert removed.json()["members"] == []
    # a member (not an owner) gains no say over the group
    api.as_admin("POST", members, json={"name": newcomer.name})
    by_member = api.call("POST", members, newcomer.headers, json={"name": outsider.name})
    assert by_member.status_code == 403, by_member.text


def test_owning_one_group_gives_no_say_over_another(api: Api) -> None:
    owner = api.user()
    api.group(owners=(owner.name,))
    other = api.group()
    refused = api.call(
        "POST", f"/api/v1/groups/{other}/members", owner.headers, json={"name": owner.name}
    )
    assert refused.status_code == 403, refused.text
    assert api.as_admin("GET", f"/api/v1/groups/{other}").json()["members"] == []


def test_a_reused_workspace_name_inherits_no_assignments(api: Api) -> None:
    """Assignments hold the workspace's id: a purged name, made again, starts with none."""
    name = api.workspace()
    owner = api.user_with("Owner", workspace=name)
    assert api.call("GET", f"/api/v1/workspaces/{name}", owner.headers).status_code == 200
    api.as_admin("DELETE", f"/api/v1/workspaces/{name}", params={"permanently_delete": "true"})
    api.as_admin("POST", "/api/v1/workspaces", json={"name": name})
    _hidden(api.call("GET", f"/api/v1/workspaces/{name}", owner.headers), name)
    holders = [a["principal_name"] for a in api.as_admin("GET", assignments_path(name)).json()]
    assert holders == ["admin"]  # the creator, as its Owner


def test_references_to_b_in_a_body_find_nothing(
    api: Api, two_workspaces: tuple[Actor, str, str]
) -> None:
    """Ids of B's objects in bodies sent to A: treated as ids that do not exist."""
    owner, a, b = two_workspaces
    b_run = api.as_admin("POST", f"/api/v1/workspaces/{b}/runs", json={}).json()["id"]
    mlflow_b = f"/mlflow/workspaces/{b}/api/2.0/mlflow"
    b_experiment = api.as_admin(
        "POST", f"/api/v1/workspaces/{b}/experiments", json={"name": unique("exp")}
    ).json()["id"]
    b_model = api.as_admin(
        "POST", f"{mlflow_b}/logged-models", json={"experiment_id": b_experiment}
    ).json()["model"]["info"]["model_id"]
    a_run = api.call("POST", f"/api/v1/workspaces/{a}/runs", owner.headers, json={}).json()["id"]
    mlflow_a = f"/mlflow/workspaces/{a}/api/2.0/mlflow"
    name = unique("model")
    api.call("POST", f"{mlflow_a}/registered-models/create", owner.headers, json={"name": name})

    refused = [
        # a child run of B's run
        api.call(
            "POST", f"/api/v1/workspaces/{a}/runs", owner.headers, json={"parent_run_id": b_run}
        ),
        # a model version whose files or lineage are B's run
        api.call(
            "POST",
            f"{mlflow_a}/model-versions/create",
            owner.headers,
            json={"name": name, "source": f"runs:/{b_run}/model"},
        ),
        api.call(
            "POST",
            f"{mlflow_a}/model-versions/create",
            owner.headers,
            json={"name": name, "source": f"runs:/{a_run}/model", "run_id": b_run},
        ),
        api.call(
            "POST",
            f"{mlflow_a}/model-versions/create",
            owner.headers,
            json={"name": name, "source": f"models:/{b_model}"},
        ),
        # B's logged model as an input of A's run
        api.call(
            "POST",
            f"{mlflow_a}/runs/log-inputs",
            owner.headers,
            json={"run_id": a_run, "models": [{"model_id": b_model}]},
        ),
    ]
    for response in refused:
        assert response.status_code in (400, 404), response.text
        assert b not in response.text  # nothing about B comes back
    versions = api.call(
        "GET",
        f"{mlflow_a}/model-versions/search",
        owner.headers,
        params={"filter": f"name='{name}'"},
    ).json()
    assert versions.get("model_versions", []) == []
