"""The key vault over real HTTP: set, list, read and delete secrets; bad input; who may read
a value; and a value that never shows up where it should not (responses, logs, audit log,
the database)."""

from __future__ import annotations

import http.client
import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import MetaData, select

from shipyard.api.logging import JsonFormatter, TextFormatter
from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.secrets import MAX_SECRET_BYTES
from tests.api.conftest import Actor, Api, problem_code
from tests.conftest import unique


def secrets_path(workspace: str, name: str | None = None, suffix: str = "") -> str:
    base = f"/api/v1/workspaces/{workspace}/secrets"
    return base if name is None else f"{base}/{name}{suffix}"


def marker() -> str:
    """A value no other part of the system would write by chance."""
    return f"sv-{uuid.uuid4().hex}-{uuid.uuid4().hex}"


@pytest.fixture
def workspace(api: Api) -> str:
    return api.workspace()


def put(
    api: Api, workspace: str, name: str, value: Any, who: dict[str, str] | None = None
) -> httpx.Response:
    return api.call("PUT", secrets_path(workspace, name), who or api.admin, json={"value": value})


# ----------------------------------------------------------------------------------------
# The round trip
# ----------------------------------------------------------------------------------------


def test_set_replace_list_show_reveal_and_delete(api: Api, workspace: str) -> None:
    value = marker()
    created = put(api, workspace, "db-password", value)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "db-password"
    assert body["created_by"] == body["updated_by"] == "admin"
    assert set(body) == {"name", "key_id", "created_by", "created_at", "updated_by", "updated_at"}

    replaced = put(api, workspace, "db-password", value + "-2")
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["created_at"] == body["created_at"]
    assert replaced.json()["updated_at"] >= body["updated_at"]

    put(api, workspace, "api.token_B", "another")
    listed = api.call("GET", secrets_path(workspace), api.admin)
    assert listed.status_code == 200
    assert [s["name"] for s in listed.json()["items"]] == ["api.token_B", "db-password"]

    paged = api.call("GET", secrets_path(workspace), api.admin, params={"max_results": 1})
    assert [s["name"] for s in paged.json()["items"]] == ["api.token_B"]
    token = paged.json()["next_page_token"]
    rest = api.call(
        "GET", secrets_path(workspace), api.admin, params={"max_results": 1, "page_token": token}
    )
    assert [s["name"] for s in rest.json()["items"]] == ["db-password"]
    assert rest.json()["next_page_token"] is None

    shown = api.call("GET", secrets_path(workspace, "db-password"), api.admin)
    assert shown.status_code == 200
    assert shown.json() == replaced.json()

    revealed = api.call("POST", secrets_path(workspace, "db-password", "/reveal"), api.admin)
    assert revealed.status_code == 200
    assert revealed.json() == {"name": "db-password", "value": value + "-2"}
    assert revealed.headers["cache-control"] == "no-store"

    deleted = api.call("DELETE", secrets_path(workspace, "db-password"), api.admin)
    assert deleted.status_code == 204
    gone = api.call("GET", secrets_path(workspace, "db-password"), api.admin)
    assert (gone.status_code, problem_code(gone)) == (404, "secret_not_found")


def test_concurrent_first_writes_of_one_name_make_one_secret(api: Api, workspace: str) -> None:
    def attempt(index: int) -> int:
        with httpx.Client(timeout=60) as http:
            path = api.server.url + secrets_path(workspace, "raced")
            response = http.put(path, headers=api.admin, json={"value": f"v{index}"})
            return response.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(attempt, range(8)))
    assert statuses == [200] * 7 + [201]
    listed = api.call("GET", secrets_path(workspace), api.admin).json()["items"]
    assert [s["name"] for s in listed] == ["raced"]
    revealed = api.call("POST", secrets_path(workspace, "raced", "/reveal"), api.admin)
    assert revealed.json()["value"] in {f"v{i}" for i in range(8)}


def test_a_value_is_kept_exactly_as_sent(api: Api, workspace: str) -> None:
    for value in ("  padded with spaces \n", "line one\nline two\n", "ünïcødé ✓", "x" * 10, "0"):
        assert put(api, workspace, "exact", value).status_code in (200, 201)
        revealed = api.call("POST", secrets_path(workspace, "exact", "/reveal"), api.admin)
        assert revealed.json()["value"] == value
    # Numbers are taken as their text, like every other string field.
    assert put(api, workspace, "number", 1234).status_code == 201
    revealed = api.call("POST", secrets_path(workspace, "number", "/reveal"), api.admin)
    assert revealed.json()["value"] == "1234"


def test_the_largest_value_fits_and_one_byte_more_does_not(api: Api, workspace: str) -> None:
    largest = "é" * (MAX_SECRET_BYTES // 2)  # two bytes each in UTF-8
    assert put(api, workspace, "big", largest).status_code == 201
    revealed = api.call("POST", secrets_path(workspace, "big", "/reveal"), api.admin)
    assert revealed.json()["value"] == largest
    too_big = put(api, workspace, "big", largest + "x")
    assert (too_big.status_code, problem_code(too_big)) == (400, "secret_too_large")
    assert too_big.json()["field"] == "value"


# ----------------------------------------------------------------------------------------
# Bad input: always a 4xx that names the field
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"value": ""}, "invalid_field", "value"),
        ({}, "missing_field", "value"),
        ({"value": None}, "invalid_field", "value"),
        ({"value": ["a"]}, "invalid_field", "value"),
        ({"value": "a", "extra": "b"}, "unknown_field", "extra"),
    ],
    ids=["empty", "missing", "null", "list", "unknown-field"],
)
def test_bad_bodies_are_400s_naming_the_field(
    api: Api, workspace: str, body: dict[str, Any], code: str, field: str
) -> None:
    response = api.call("PUT", secrets_path(workspace, "s"), api.admin, json=body)
    assert (response.status_code, problem_code(response)) == (400, code), response.text
    assert response.json()["field"] == field


def test_a_value_that_is_not_unicode_text_is_a_400(api: Api, workspace: str) -> None:
    json_headers = {**api.admin, "Content-Type": "application/json"}
    lone_surrogate = b'{"value": "\\ud800"}'  # valid JSON, not encodable text
    response = api.call("PUT", secrets_path(workspace, "s"), json_headers, content=lone_surrogate)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "value"
    not_utf8 = b'{"value": "\xff\xfe"}'
    response = api.call("PUT", secrets_path(workspace, "s"), json_headers, content=not_utf8)
    assert 400 <= response.status_code < 500, response.text


def test_a_body_that_is_not_json_is_a_400(api: Api, workspace: str) -> None:
    response = api.call(
        "PUT",
        secrets_path(workspace, "s"),
        {**api.admin, "Content-Type": "application/json"},
        content=b'{"value": "unterminated',
    )
    assert (response.status_code, problem_code(response)) == (400, "malformed_json")


def raw_call(api: Api, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """A request whose path goes out exactly as written: httpx would resolve ``..`` away
    (and a DELETE of ``.../secrets/..`` would then reach the workspace itself)."""
    url = httpx.URL(api.server.url)
    connection = http.client.HTTPConnection(url.host, url.port, timeout=30)
    try:
        headers = {**api.admin, "Content-Type": "application/json"}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


@pytest.mark.parametrize(
    "name",
    ["a" * 128, "-leading-dash", ".hidden", "has%20space", "s%C3%A9maphore", "..", ".", "%00x"],
)
def test_bad_names_are_400s_on_every_route(api: Api, workspace: str, name: str) -> None:
    for method, suffix, body in (
        ("PUT", "", b'{"value": "v"}'),
        ("GET", "", None),
        ("POST", "/reveal", None),
        ("DELETE", "", None),
    ):
        status, problem = raw_call(api, method, secrets_path(workspace, name, suffix), body)
        assert (status, problem["code"], problem["field"]) == (400, "invalid_name", "name"), (
            method,
            name,
            problem,
        )
    assert api.call("GET", f"/api/v1/workspaces/{workspace}", api.admin).status_code == 200


def test_a_name_with_an_encoded_slash_reaches_no_secret_route(api: Api, workspace: str) -> None:
    for method, suffix in (("PUT", ""), ("GET", ""), ("POST", "/reveal"), ("DELETE", "")):
        status, problem = raw_call(api, method, secrets_path(workspace, "a%2Fb", suffix))
        assert (status, problem["code"]) in ((404, "route_not_found"), (405, "method_not_allowed"))


def test_the_sdk_refuses_names_a_url_would_resolve_away(api: Api, workspace: str) -> None:
    with api.server.client() as client:
        secrets = client.workspace(workspace).secrets
        for name in ("..", ".", "a/b", ""):
            with pytest.raises(InvalidInputError) as refused:
                secrets.delete(name)
            assert refused.value.field == "name"
    assert api.call("GET", f"/api/v1/workspaces/{workspace}", api.admin).status_code == 200


def test_unknown_secrets_and_workspaces_are_404s(api: Api, workspace: str) -> None:
    for method, suffix in (("GET", ""), ("POST", "/reveal"), ("DELETE", "")):
        response = api.call(method, secrets_path(workspace, "nope", suffix), api.admin)
        assert (response.status_code, problem_code(response)) == (404, "secret_not_found")
        assert response.json()["field"] == "name"
    missing = unique("missing")
    for method, path in (
        ("GET", secrets_path(missing)),
        ("PUT", secrets_path(missing, "s")),
        ("POST", secrets_path(missing, "s", "/reveal")),
    ):
        response = api.call(method, path, api.admin, json={"value": "v"})
        assert (response.status_code, problem_code(response)) == (404, "workspace_not_found")


def test_a_page_token_that_is_not_ours_is_a_400(api: Api, workspace: str) -> None:
    response = api.call("GET", secrets_path(workspace), api.admin, params={"page_token": "%%%"})
    assert (response.status_code, problem_code(response)) == (400, "invalid_page_token")


def test_a_soft_deleted_workspace_keeps_its_secrets_out_of_reach(api: Api) -> None:
    workspace = api.workspace()
    put(api, workspace, "kept", "value")
    api.as_admin("DELETE", f"/api/v1/workspaces/{workspace}")
    hidden = api.call("POST", secrets_path(workspace, "kept", "/reveal"), api.admin)
    assert (hidden.status_code, problem_code(hidden)) == (404, "workspace_deleted")
    api.as_admin("POST", f"/api/v1/workspaces/{workspace}/recover")
    back = api.call("POST", secrets_path(workspace, "kept", "/reveal"), api.admin)
    assert back.json()["value"] == "value"


def test_purging_a_workspace_deletes_its_secrets(api: Api) -> None:
    workspace = api.workspace()
    put(api, workspace, "doomed", "value")
    api.as_admin("DELETE", f"/api/v1/workspaces/{workspace}", params={"permanently_delete": "true"})
    with api.server.db.read() as session:
        table = MetaData()
        table.reflect(session.connection(), only=["secrets"])
        names = session.execute(select(table.tables["secrets"].c.name)).scalars().all()
    assert "doomed" not in names


# ----------------------------------------------------------------------------------------
# Who may do what, and isolation
# ----------------------------------------------------------------------------------------


def test_a_data_scientist_lists_names_and_sets_but_cannot_read_a_value(
    api: Api, workspace: str
) -> None:
    scientist = api.user_with("Data Scientist", workspace=workspace)
    put(api, workspace, "owned-by-admin", "top")
    listed = api.call("GET", secrets_path(workspace), scientist.headers)
    assert listed.status_code == 200
    assert [s["name"] for s in listed.json()["items"]] == ["owned-by-admin"]
    shown = api.call("GET", secrets_path(workspace, "owned-by-admin"), scientist.headers)
    assert shown.status_code == 200
    refused = api.call(
        "POST", secrets_path(workspace, "owned-by-admin", "/reveal"), scientist.headers
    )
    assert (refused.status_code, problem_code(refused)) == (403, "forbidden")
    assert "top" not in refused.text
    made = put(api, workspace, "from-scientist", "mine", scientist.headers)
    assert made.status_code == 201
    assert made.json()["created_by"] == scientist.name
    # ...and still cannot read back what they set.
    own = api.call("POST", secrets_path(workspace, "from-scientist", "/reveal"), scientist.headers)
    assert own.status_code == 403
    assert (
        api.call("DELETE", secrets_path(workspace, "from-scientist"), scientist.headers).status_code
        == 204
    )


def test_a_reader_lists_but_cannot_set_delete_or_read_values(api: Api, workspace: str) -> None:
    reader = api.user_with("Reader", workspace=workspace)
    put(api, workspace, "r", "value")
    assert api.call("GET", secrets_path(workspace), reader.headers).status_code == 200
    for method, suffix, body in (
        ("PUT", "", {"value": "changed"}),
        ("DELETE", "", None),
        ("POST", "/reveal", None),
    ):
        response = api.call(method, secrets_path(workspace, "r", suffix), reader.headers, json=body)
        assert (response.status_code, problem_code(response)) == (403, "forbidden")
    revealed = api.call("POST", secrets_path(workspace, "r", "/reveal"), api.admin)
    assert revealed.json()["value"] == "value"


def test_another_workspaces_secret_is_not_found(api: Api) -> None:
    theirs, mine = api.workspace(), api.workspace()
    put(api, theirs, "their-secret", "theirs")
    owner = api.user_with("Owner", workspace=mine)
    # By its name in my workspace: my vault has no such secret.
    for method, suffix in (("GET", ""), ("POST", "/reveal"), ("DELETE", "")):
        response = api.call(method, secrets_path(mine, "their-secret", suffix), owner.headers)
        assert (response.status_code, problem_code(response)) == (404, "secret_not_found")
    # Through their workspace's path: the workspace is hidden.
    for method, suffix in (("GET", ""), ("POST", "/reveal"), ("DELETE", "")):
        response = api.call(method, secrets_path(theirs, "their-secret", suffix), owner.headers)
        assert (response.status_code, problem_code(response)) == (404, "workspace_not_found")
    assert api.call("GET", secrets_path(mine), owner.headers).json()["items"] == []
    # The same name in two vaults is two secrets.
    put(api, mine, "their-secret", "mine", owner.headers)
    for workspace, value in ((theirs, "theirs"), (mine, "mine")):
        revealed = api.call("POST", secrets_path(workspace, "their-secret", "/reveal"), api.admin)
        assert revealed.json()["value"] == value


def test_reading_a_value_is_audited_and_reading_metadata_is_not(api: Api, workspace: str) -> None:
    owner = api.user_with("Owner", workspace=workspace)
    value = marker()
    put(api, workspace, "audited", value, owner.headers)
    revealed = api.call("POST", secrets_path(workspace, "audited", "/reveal"), owner.headers)
    events = api.events(revealed.headers["x-request-id"], principal=owner.name)
    assert len(events) == 1
    assert events[0]["action"] == "workspaces/secrets/read"
    assert events[0]["outcome"] == "succeeded"
    assert events[0]["resource"] == f"/api/v1/workspaces/{workspace}/secrets/audited/reveal"
    shown = api.call("GET", secrets_path(workspace, "audited"), owner.headers)
    api.settle()
    assert api.events(shown.headers["x-request-id"], wait=False) == []
    scientist = api.user_with("Data Scientist", workspace=workspace)
    refused = api.call("POST", secrets_path(workspace, "audited", "/reveal"), scientist.headers)
    denied = api.events(refused.headers["x-request-id"], principal=scientist.name)
    assert [e["outcome"] for e in denied] == ["denied"]


# ----------------------------------------------------------------------------------------
# A value appears in exactly one place: the response that reveals it
# ----------------------------------------------------------------------------------------


def _all_calls_with(api: Api, workspace: str, value: str, outsider: Actor) -> list[httpx.Response]:
    """Every secrets route, successes and failures, each carrying ``value`` where it can."""
    name = "leak-check"
    body = {"value": value}
    admin, path = api.admin, secrets_path(workspace, name)
    return [
        api.call("PUT", path, admin, json=body),  # created
        api.call("PUT", path, admin, json=body),  # replaced
        api.call("GET", secrets_path(workspace), admin),
        api.call("GET", path, admin),
        # failures, with the value in the request
        api.call("PUT", path, admin, json={"value": value + "x" * MAX_SECRET_BYTES}),
        api.call("PUT", path, admin, json={"value": {"nested": value}}),
        api.call("PUT", path, admin, json={"value": [value]}),
        api.call("PUT", path, admin, json={"valu": value}),
        api.call("PUT", path, admin, json={"value": value, "extra": 1}),
        api.call(
            "PUT",
            path,
            {**admin, "Content-Type": "application/json"},
            content=b'{"value": "' + value.encode() + b'" ,,}',
        ),
        api.call("PUT", secrets_path(workspace, "bad name!"), admin, json=body),
        api.call("PUT", secrets_path(unique("nowhere"), name), admin, json=body),
        api.call("PUT", path, None, json=body),  # no token
        api.call("PUT", path, outsider.headers, json=body),  # denied
        api.call("PUT", path, outsider.headers, json={"value": {"nested": value}}),
        api.call("POST", secrets_path(workspace, name, "/reveal"), outsider.headers),
        api.call("GET", secrets_path(workspace, "no-such"), admin),
    ]


class LogCapture(logging.Handler):
    """Every record the server logs at any level, printed as both of its formats would."""

    PREFIXES = ("shipyard", "uvicorn", "sqlalchemy", "fastapi", "starlette")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: dict[int, logging.LogRecord] = {}
        self._saved: list[tuple[logging.Logger, int, bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records[id(record)] = record

    def __enter__(self) -> LogCapture:
        # On every logger itself, not the root alone: configure_logging stops propagation,
        # and libraries imported by other tests (mlflow) set levels of their own.
        names = ["", *self.PREFIXES]
        names += [n for n in logging.root.manager.loggerDict if n.startswith(self.PREFIXES)]
        for name in dict.fromkeys(names):
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.level, logger.disabled))
            logger.setLevel(logging.DEBUG)
            logger.disabled = False
            logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for logger, level, disabled in self._saved:
            logger.removeHandler(self)
            logger.setLevel(level)
            logger.disabled = disabled

    def text(self) -> str:
        json_lines, text_lines = JsonFormatter(), TextFormatter("%(name)s: %(message)s")
        server_side = [
            r for r in self.records.values() if not r.name.startswith(("httpx", "httpcore"))
        ]
        assert any(r.name == "shipyard.access" for r in server_side), "no access log captured"
        assert any(r.name.startswith("sqlalchemy.engine") for r in server_side), "no SQL log"
        return "\n".join(f(r) for r in server_side for f in (json_lines.format, text_lines.format))


def test_a_value_never_appears_in_responses_logs_or_the_audit_log(api: Api, workspace: str) -> None:
    value = marker()
    reader = api.user_with("Reader", workspace=workspace)
    with LogCapture() as logs:  # everything, SQL statements and their parameters included
        responses = _all_calls_with(api, workspace, value, reader)
        revealed = api.call("POST", secrets_path(workspace, "leak-check", "/reveal"), api.admin)
        api.settle()
    statuses = [r.status_code for r in responses]
    assert statuses == [201, 200, 200, 200, *[400] * 7, 404, 401, 403, 403, 403, 404]
    for response in responses:
        shown = response.text + json.dumps(dict(response.headers))
        assert value not in shown, (response.request.method, response.request.url, shown[:300])
    assert revealed.json()["value"] == value  # the one place it may appear

    assert value not in logs.text()
    events = api.audit(workspace=workspace) + api.audit()
    assert any(e["action"] == "workspaces/secrets/read" for e in events)
    assert value not in json.dumps(events)


def test_a_value_is_encrypted_at_rest(api: Api, workspace: str) -> None:
    value = marker()
    assert put(api, workspace, "at-rest", value).status_code == 201
    needle = value.encode()
    with api.server.db.read() as session:
        metadata = MetaData()
        metadata.reflect(session.connection())
        for table in metadata.sorted_tables:
            for row in session.execute(select(table)):
                for cell in row:
                    raw = cell if isinstance(cell, bytes) else str(cell).encode()
                    assert needle not in raw, f"the value is in table {table.name}"
    url = api.server.db.url
    if url.get_backend_name() == "sqlite":
        database = Path(str(url.database))
        files = [p for p in database.parent.glob(database.name + "*") if p.is_file()]
        assert database in files
        for path in files:  # the database, its WAL and shared memory
            assert needle not in path.read_bytes(), path
