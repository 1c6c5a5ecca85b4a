"""The audit log over real HTTP: every change and every denial leaves exactly one event,
successful reads leave none, the filters work, and nothing can edit or delete an event.

Each request is found in the log by the ``X-Request-ID`` its response carries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from shipyard.api.app import create_app
from shipyard.api.authz import iter_routes
from tests.api.conftest import Actor, Api, assignments_path, problem_code
from tests.conftest import unique

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def boss(api: Api) -> Actor:
    """Owner at global scope but not an admin, so its events can be counted apart."""
    return api.user_with("Owner")


@pytest.fixture(scope="module")
def nobody(api: Api) -> Actor:
    """A signed-in user holding no role anywhere."""
    return api.user("nobody")


def _count(api: Api, principal: str) -> int:
    return len(api.audit(principal=principal))


def _the_event(api: Api, response: httpx.Response, **filters: Any) -> dict[str, Any]:
    """The one audit event of the request that got ``response``."""
    request_id = response.headers["x-request-id"]
    found = api.events(request_id, **filters)
    assert len(found) == 1, (response.request.method, response.request.url, found)
    return found[0]


def _check_event(
    event: dict[str, Any],
    response: httpx.Response,
    *,
    principal: str | None,
    action: str,
    outcome: str,
    workspace: str | None = None,
) -> None:
    request = response.request
    assert event["principal"] == principal
    assert event["action"] == action
    assert event["method"] == request.method
    assert event["resource"] == request.url.path
    assert event["workspace"] == workspace
    assert event["outcome"] == outcome
    assert event["status"] == response.status_code
    assert event["client_address"] == "127.0.0.1"
    assert event["request_id"] == response.headers["x-request-id"]
    assert event["at"]


# ----------------------------------------------------------------------------------------
# Changes: one event each
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    method: str
    path: str
    body: Any
    status: int
    action: str
    workspace: str | None = None


def _workspace_create(api: Api, boss: Actor) -> Change:
    return Change("POST", "/api/v1/workspaces", {"name": unique()}, 201, "workspaces/create")


def _workspace_update(api: Api, boss: Actor) -> Change:
    w = api.workspace()
    return Change(
        "PATCH", f"/api/v1/workspaces/{w}", {"description": "d"}, 200, "workspaces/write", w
    )


def _workspace_delete(api: Api, boss: Actor) -> Change:
    w = api.workspace()
    return Change("DELETE", f"/api/v1/workspaces/{w}", None, 204, "workspaces/delete", w)


def _workspace_recover(api: Api, boss: Actor) -> Change:
    w = api.workspace()
    api.as_admin("DELETE", f"/api/v1/workspaces/{w}")
    return Change("POST", f"/api/v1/workspaces/{w}/recover", None, 200, "workspaces/write", w)


def _user_create(api: Api, boss: Actor) -> Change:
    return Change("POST", "/api/v1/users", {"name": unique("user")}, 201, "users/write")


def _user_update(api: Api, boss: Actor) -> Change:
    name = api.user().name
    return Change("PATCH", f"/api/v1/users/{name}", {"display_name": "D"}, 200, "users/write")


def _token_create(api: Api, boss: Actor) -> Change:
    return Change("POST", "/api/v1/tokens", {"name": "spare"}, 201, "self")


def _token_revoke(api: Api, boss: Actor) -> Change:
    token_id = api.token_id_for(boss.name)
    return Change("DELETE", f"/api/v1/tokens/{token_id}", None, 200, "self")


def _group_create(api: Api, boss: Actor) -> Change:
    return Change("POST", "/api/v1/groups", {"name": unique("grp")}, 201, "groups/write")


def _group_member_add(api: Api, boss: Actor) -> Change:
    group, member = api.group(), api.user().name
    path = f"/api/v1/groups/{group}/members"
    return Change("POST", path, {"name": member}, 200, "groups/write")


def _group_member_remove(api: Api, boss: Actor) -> Change:
    member = api.user().name
    group = api.group(member)
    return Change("DELETE", f"/api/v1/groups/{group}/members/{member}", None, 200, "groups/write")


def _group_delete(api: Api, boss: Actor) -> Change:
    return Change("DELETE", f"/api/v1/groups/{api.group()}", None, 204, "groups/delete")


def _role_create(api: Api, boss: Actor) -> Change:
    body = {"name": unique("role"), "actions": ["workspaces/read"]}
    return Change("POST", "/api/v1/roles", body, 201, "roles/write")


def _role_delete(api: Api, boss: Actor) -> Change:
    name = unique("role")
    api.as_admin("POST", "/api/v1/roles", json={"name": name, "actions": ["workspaces/read"]})
    return Change("DELETE", f"/api/v1/roles/{name}", None, 204, "roles/delete")


def _assignment_create(api: Api, boss: Actor) -> Change:
    body = {"role": "Reader", "user": api.user().name}
    return Change("POST", assignments_path(None), body, 201, "roleAssignments/write")


def _assignment_delete(api: Api, boss: Actor) -> Change:
    assignment = api.assign("Reader", user=api.user().name)
    path = f"{assignments_path(None)}/{assignment}"
    return Change("DELETE", path, None, 204, "roleAssignments/delete")


def _workspace_assignment_create(api: Api, boss: Actor) -> Change:
    w = api.workspace()
    body = {"role": "Reader", "user": api.user().name}
    return Change("POST", assignments_path(w), body, 201, "workspaces/roleAssignments/write", w)


def _workspace_assignment_delete(api: Api, boss: Actor) -> Change:
    w = api.workspace()
    assignment = api.assign("Reader", workspace=w, user=api.user().name)
    path = f"{assignments_path(w)}/{assignment}"
    return Change("DELETE", path, None, 204, "workspaces/roleAssignments/delete", w)


def _service_principal_create(api: Api, boss: Actor) -> Change:
    body = {"name": unique("sp")}
    return Change("POST", "/api/v1/service-principals", body, 201, "servicePrincipals/write")


def _service_principal_delete(api: Api, boss: Actor) -> Change:
    name = unique("sp")
    api.as_admin("POST", "/api/v1/service-principals", json={"name": name})
    path = f"/api/v1/service-principals/{name}"
    return Change("DELETE", path, None, 204, "servicePrincipals/delete")


CHANGES: dict[str, Callable[[Api, Actor], Change]] = {
    "workspace create": _workspace_create,
    "workspace update": _workspace_update,
    "workspace delete": _workspace_delete,
    "workspace recover": _workspace_recover,
    "user create": _user_create,
    "user update": _user_update,
    "token create": _token_create,
    "token revoke": _token_revoke,
    "group create": _group_create,
    "group member add": _group_member_add,
    "group member remove": _group_member_remove,
    "group delete": _group_delete,
    "role create": _role_create,
    "role delete": _role_delete,
    "role assignment create": _assignment_create,
    "role assignment delete": _assignment_delete,
    "workspace role assignment create": _workspace_assignment_create,
    "workspace role assignment delete": _workspace_assignment_delete,
    "service principal create": _service_principal_create,
    "service principal delete": _service_principal_delete,
}


@pytest.mark.parametrize("kind", list(CHANGES))
def test_each_change_leaves_exactly_one_event(api: Api, boss: Actor, kind: str) -> None:
    change = CHANGES[kind](api, boss)
    before = _count(api, boss.name)
    response = api.call(change.method, change.path, boss.headers, json=change.body)
    assert response.status_code == change.status, response.text
    event = _the_event(api, response)
    _check_event(
        event,
        response,
        principal=boss.name,
        action=change.action,
        outcome="succeeded",
        workspace=change.workspace,
    )
    assert _count(api, boss.name) == before + 1


def test_a_failed_change_leaves_one_failed_event(api: Api, boss: Actor) -> None:
    taken = api.workspace()
    before = _count(api, boss.name)
    response = api.call("POST", "/api/v1/workspaces", boss.headers, json={"name": taken})
    assert response.status_code == 409, response.text
    event = _the_event(api, response)
    _check_event(event, response, principal=boss.name, action="workspaces/create", outcome="failed")
    assert _count(api, boss.name) == before + 1


def test_a_login_leaves_one_event_succeeded_or_denied(api: Api) -> None:
    name = unique("user")
    api.as_admin("POST", "/api/v1/users", json={"name": name, "password": PASSWORD})
    wrong = api.call("POST", "/api/v1/sessions", json={"name": name, "password": "not it at all"})
    assert wrong.status_code == 401, wrong.text
    right = api.call("POST", "/api/v1/sessions", json={"name": name, "password": PASSWORD})
    assert right.status_code == 201, right.text
    for response, outcome in ((wrong, "denied"), (right, "succeeded")):
        event = _the_event(api, response)
        _check_event(event, response, principal=name, action="sessions/create", outcome=outcome)
    assert _count(api, name) == 2


def test_a_client_request_id_is_kept_if_tame(api: Api, boss: Actor) -> None:
    mine = f"ci-run-{unique('x')}"
    kept = api.call(
        "POST", "/api/v1/groups", boss.headers, json={"name": unique("grp")}, request_id=mine
    )
    assert kept.headers["x-request-id"] == mine
    assert _the_event(api, kept)["request_id"] == mine
    wild = "not tame; " + "x" * 80
    replaced = api.call(
        "POST", "/api/v1/groups", boss.headers, json={"name": unique("grp")}, request_id=wild
    )
    assert replaced.headers["x-request-id"] != wild
    assert _the_event(api, replaced)["request_id"] == replaced.headers["x-request-id"]


# ----------------------------------------------------------------------------------------
# Denials: one event each
# ----------------------------------------------------------------------------------------


def test_a_missing_token_leaves_one_denied_event(api: Api) -> None:
    for method, path, body, action in (
        ("GET", "/api/v1/users", None, "users/read"),
        ("POST", "/api/v1/workspaces", {"name": unique()}, "workspaces/create"),
    ):
        before = len(api.audit(action=action, outcome="denied"))
        response = api.call(method, path, json=body)
        assert (response.status_code, problem_code(response)) == (401, "missing_token")
        event = _the_event(api, response)
        _check_event(event, response, principal=None, action=action, outcome="denied")
        assert len(api.audit(action=action, outcome="denied")) == before + 1


def test_a_bad_token_leaves_one_denied_event(api: Api) -> None:
    revoked = api.user()
    tokens = api.as_admin("GET", "/api/v1/tokens", params={"user": revoked.name}).json()
    [token] = tokens["items"]
    revoking = api.call("DELETE", f"/api/v1/tokens/{token['id']}", revoked.headers)
    assert revoking.status_code == 200, revoking.text
    for headers, code in (
        ({"Authorization": "Bearer shp_no-such-token"}, "invalid_token"),
        (revoked.headers, "revoked_token"),
    ):
        before = len(api.audit(action="audit/read", outcome="denied"))
        response = api.call("GET", "/api/v1/audit", headers)
        assert (response.status_code, problem_code(response)) == (401, code)
        event = _the_event(api, response)
        _check_event(event, response, principal=None, action="audit/read", outcome="denied")
        assert len(api.audit(action="audit/read", outcome="denied")) == before + 1


def test_a_403_leaves_one_denied_event(api: Api, nobody: Actor) -> None:
    before = _count(api, nobody.name)
    for method, path, body, action in (
        ("GET", "/api/v1/users", None, "users/read"),
        ("POST", "/api/v1/groups", {"name": unique("grp")}, "groups/write"),
        ("GET", "/api/v1/audit", None, "audit/read"),
    ):
        response = api.call(method, path, nobody.headers, json=body)
        assert (response.status_code, problem_code(response)) == (403, "forbidden")
        event = _the_event(api, response)
        _check_event(event, response, principal=nobody.name, action=action, outcome="denied")
    assert _count(api, nobody.name) == before + 3


def test_a_concealed_404_leaves_one_denied_event_in_the_workspace_log(
    api: Api, nobody: Actor
) -> None:
    hidden = api.workspace()
    before = _count(api, nobody.name)
    for method, path, body, action in (
        ("GET", f"/api/v1/workspaces/{hidden}", None, "workspaces/read"),
        ("DELETE", f"/api/v1/workspaces/{hidden}", None, "workspaces/delete"),
        ("GET", f"/api/v1/workspaces/{hidden}/audit", None, "workspaces/audit/read"),
    ):
        response = api.call(method, path, nobody.headers, json=body)
        assert (response.status_code, problem_code(response)) == (404, "workspace_not_found")
        event = _the_event(api, response)
        _check_event(
            event,
            response,
            principal=nobody.name,
            action=action,
            outcome="denied",
            workspace=hidden,
        )
        in_workspace_log = api.as_admin(
            "GET", f"/api/v1/workspaces/{hidden}/audit", params={"max_results": 1000}
        ).json()["items"]
        assert event["id"] in [e["id"] for e in in_workspace_log]
    assert _count(api, nobody.name) == before + 3


def test_a_403_from_a_service_on_a_read_leaves_one_denied_event(api: Api, nobody: Actor) -> None:
    response = api.call("GET", "/api/v1/tokens", nobody.headers, params={"user": "admin"})
    assert (response.status_code, problem_code(response)) == (403, "forbidden")
    api.settle()
    found = api.events(response.headers["x-request-id"], wait=False)
    assert len(found) == 1, found
    _check_event(found[0], response, principal=nobody.name, action="self", outcome="denied")


def _escalation(api: Api) -> tuple[Actor, str, dict[str, str]]:
    workspace = api.workspace()
    granter = api.user_with("Contributor", workspace=workspace)
    api.assign(
        api.role(["workspaces/roleAssignments/write"]), workspace=workspace, user=granter.name
    )
    return granter, workspace, {"role": "Owner", "user": api.user().name}


def test_a_403_from_a_service_on_a_change_leaves_one_denied_event(api: Api, nobody: Actor) -> None:
    """Refusals decided past the route's authorization (escalation, someone else's tokens)
    are denials like the others."""
    granter, workspace, body = _escalation(api)
    escalation = api.call("POST", assignments_path(workspace), granter.headers, json=body)
    assert (escalation.status_code, problem_code(escalation)) == (403, "escalation")
    event = _the_event(api, escalation)
    _check_event(
        event,
        escalation,
        principal=granter.name,
        action="workspaces/roleAssignments/write",
        outcome="denied",
        workspace=workspace,
    )
    before = _count(api, nobody.name)
    other_token = api.call(
        "POST", "/api/v1/tokens", nobody.headers, json={"name": "t", "user": "admin"}
    )
    assert (other_token.status_code, problem_code(other_token)) == (403, "forbidden")
    event = _the_event(api, other_token)
    _check_event(event, other_token, principal=nobody.name, action="self", outcome="denied")
    assert _count(api, nobody.name) == before + 1


@pytest.mark.parametrize("body", ["malformed", "oversized"])
@pytest.mark.parametrize("authenticated", [False, True], ids=["no token", "token"])
def test_a_change_with_a_bad_body_leaves_one_event(
    api: Api, boss: Actor, authenticated: bool, body: str
) -> None:
    """The body is checked only for a caller the route lets in: without a token the answer
    is 401, whatever the body; either way the attempt is recorded once."""
    limit = api.server.settings.max_request_body_bytes
    content = b'{"name": ' if body == "malformed" else b'{"name": "' + b"x" * limit + b'"}'
    headers = {**(boss.headers if authenticated else {}), "Content-Type": "application/json"}
    response = api.call("POST", "/api/v1/groups", headers, content=content)
    status = {"malformed": 400, "oversized": 413}[body] if authenticated else 401
    assert response.status_code == status, response.text
    event = _the_event(api, response)
    _check_event(
        event,
        response,
        principal=boss.name if authenticated else None,
        action="groups/write",
        outcome="failed" if authenticated else "denied",
    )


# ----------------------------------------------------------------------------------------
# Reads leave nothing
# ----------------------------------------------------------------------------------------


def test_successful_reads_leave_no_event(api: Api, boss: Actor) -> None:
    workspace = api.workspace()
    group = api.group()
    before = _count(api, boss.name)
    request_ids = []
    for path in (
        "/api/v1/users/me",
        "/api/v1/users",
        f"/api/v1/users/{boss.name}",
        "/api/v1/tokens",
        "/api/v1/workspaces",
        f"/api/v1/workspaces/{workspace}",
        f"/api/v1/workspaces/{workspace}/role-assignments",
        f"/api/v1/workspaces/{workspace}/audit",
        "/api/v1/groups",
        f"/api/v1/groups/{group}",
        "/api/v1/service-principals",
        "/api/v1/roles",
        "/api/v1/roles/Reader",
        "/api/v1/role-assignments",
        "/api/v1/audit",
        "/api/v1/sessions/current",
    ):
        response = api.call("GET", path, boss.headers)
        assert response.status_code == 200, (path, response.text)
        request_ids.append(response.headers["x-request-id"])
    api.settle()
    assert _count(api, boss.name) == before
    recorded = {e["request_id"] for e in api.audit()}
    assert recorded.isdisjoint(request_ids)


# ----------------------------------------------------------------------------------------
# Filters and scopes
# ----------------------------------------------------------------------------------------


def _three_events(api: Api) -> tuple[Actor, list[dict[str, Any]]]:
    """A fresh Owner-at-global user with three recorded changes, oldest first."""
    actor = api.user_with("Owner")
    events = []
    for _ in range(3):
        response = api.call("POST", "/api/v1/groups", actor.headers, json={"name": unique("grp")})
        assert response.status_code == 201, response.text
        events.append(_the_event(api, response))
    return actor, events


def _ids(items: list[dict[str, Any]]) -> list[int]:
    return [e["id"] for e in items]


def test_the_principal_filter(api: Api, nobody: Actor) -> None:
    actor, events = _three_events(api)
    api.call("GET", "/api/v1/users", nobody.headers)  # someone else's event in between
    mine = api.audit(principal=actor.name)
    assert _ids(mine) == _ids(events[::-1])  # newest first
    assert api.audit(principal=unique("no-one")) == []


def test_the_since_and_until_filters(api: Api) -> None:
    actor, events = _three_events(api)
    first, second, third = (datetime.fromisoformat(e["at"]) for e in events)
    assert first < second < third
    tick = timedelta(microseconds=1)

    def window(**bounds: datetime) -> list[int]:
        params = {k: v.isoformat() for k, v in bounds.items()}
        return _ids(api.audit(principal=actor.name, **params))

    ids = _ids(events)
    assert window(since=second) == [ids[2], ids[1]]  # since: at or after
    assert window(since=second + tick) == [ids[2]]
    assert window(until=second) == [ids[0]]  # until: before
    assert window(until=second + tick) == [ids[1], ids[0]]
    assert window(since=first, until=third) == [ids[1], ids[0]]
    assert window(since=third + tick) == []
    # the same instant in another time zone
    east = second.astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert window(since=east) == [ids[2], ids[1]]


def test_a_time_without_a_zone_is_no_server_error(api: Api) -> None:
    actor, events = _three_events(api)
    second = datetime.fromisoformat(events[1]["at"]).astimezone(UTC)
    naive = second.replace(tzinfo=None).isoformat()
    response = api.call(
        "GET", "/api/v1/audit", api.admin, params={"since": naive, "principal": actor.name}
    )
    assert response.status_code in (200, 400), response.text
    if response.status_code == 200:  # read as UTC, the zone the events are shown in
        assert _ids(response.json()["items"]) == [events[2]["id"], events[1]["id"]]
    else:
        assert problem_code(response) == "invalid_field"


def test_the_action_and_outcome_filters(api: Api, nobody: Actor) -> None:
    actor, events = _three_events(api)
    refused = api.call("POST", "/api/v1/groups", nobody.headers, json={"name": unique("grp")})
    assert refused.status_code == 403
    denial = _the_event(api, refused)

    by_action = api.audit(action="groups/write")
    assert by_action
    assert {e["action"] for e in by_action} == {"groups/write"}
    assert set(_ids(events)) | {denial["id"]} <= set(_ids(by_action))
    assert api.audit(action="groups/write", principal=actor.name) == api.audit(principal=actor.name)

    denied = api.audit(outcome="denied")
    assert {e["outcome"] for e in denied} == {"denied"}
    assert denial["id"] in _ids(denied)
    assert set(_ids(events)).isdisjoint(_ids(denied))
    succeeded = api.audit(outcome="succeeded", principal=actor.name)
    assert _ids(succeeded) == _ids(events[::-1])
    assert api.audit(outcome="failed", principal=actor.name) == []

    wrong = api.call("GET", "/api/v1/audit", api.admin, params={"outcome": "maybe"})
    assert (wrong.status_code, problem_code(wrong)) == (400, "invalid_field")


def test_a_workspace_log_shows_only_that_workspace(api: Api, boss: Actor) -> None:
    a, b = api.workspace(), api.workspace()
    in_a = api.call("PATCH", f"/api/v1/workspaces/{a}", boss.headers, json={"description": "a"})
    in_b = api.call("PATCH", f"/api/v1/workspaces/{b}", boss.headers, json={"description": "b"})
    elsewhere = api.call("POST", "/api/v1/groups", boss.headers, json={"name": unique("grp")})
    a_event, b_event, other = (_the_event(api, r) for r in (in_a, in_b, elsewhere))

    reader = api.user_with("Data Scientist", workspace=a)  # holds workspaces/audit/read at A
    response = api.call(
        "GET", f"/api/v1/workspaces/{a}/audit", reader.headers, params={"max_results": 1000}
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert {e["workspace"] for e in items} == {a}
    assert a_event["id"] in _ids(items)
    assert b_event["id"] not in _ids(items)
    assert other["id"] not in _ids(items)
    # filters apply within the workspace too
    filtered = api.call(
        "GET",
        f"/api/v1/workspaces/{a}/audit",
        reader.headers,
        params={"principal": boss.name, "action": "workspaces/write"},
    ).json()["items"]
    assert _ids(filtered) == [a_event["id"]]


def test_the_whole_log_needs_audit_read_at_global(api: Api) -> None:
    workspace = api.workspace()
    owner = api.user_with("Owner", workspace=workspace)
    refused = api.call("GET", "/api/v1/audit", owner.headers)
    assert (refused.status_code, problem_code(refused)) == (403, "forbidden")
    own = api.call("GET", f"/api/v1/workspaces/{workspace}/audit", owner.headers)
    assert own.status_code == 200, own.text
    reader = api.user_with("Reader")
    assert api.call("GET", "/api/v1/audit", reader.headers).status_code == 200


# ----------------------------------------------------------------------------------------
# Append-only
# ----------------------------------------------------------------------------------------


def test_no_route_changes_or_deletes_audit_events(api: Api) -> None:
    routes = [
        r
        for r in iter_routes(create_app(api.server.settings, api.server.db).routes)
        if isinstance(r, APIRoute) and "audit" in r.path.lower()
    ]
    assert {r.path for r in routes} == {
        "/api/v1/audit",
        "/api/v1/workspaces/{workspace}/audit",
    }
    assert all(r.methods == {"GET"} for r in routes), [(r.path, r.methods) for r in routes]


def test_audit_events_cannot_be_changed_or_deleted_over_http(api: Api, boss: Actor) -> None:
    workspace = api.workspace()
    made = api.call("POST", "/api/v1/groups", boss.headers, json={"name": unique("grp")})
    event = _the_event(api, made)
    for path in (
        "/api/v1/audit",
        f"/api/v1/audit/{event['id']}",
        f"/api/v1/workspaces/{workspace}/audit",
        f"/api/v1/workspaces/{workspace}/audit/{event['id']}",
    ):
        for method in ("POST", "PUT", "PATCH", "DELETE"):
            response = api.call(method, path, api.admin, json={"outcome": "succeeded"})
            assert response.status_code in (404, 405), (method, path, response.text)
    assert _the_event(api, made) == event
