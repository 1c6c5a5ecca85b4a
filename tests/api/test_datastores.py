"""Datastores over real HTTP: local folders inside the allowed roots, S3 buckets on a real
SeaweedFS server with keys in the key vault, the default, bad input, who may read the keys,
isolation between workspaces, and keys that never show up where they should not."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard.api.app import build_services
from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.services.datastores import DatastoreService, NamedDatastoreResolver
from shipyard.storage.base import write_all
from shipyard.store.workspaces import get_workspace
from tests.api.conftest import Api, problem_code
from tests.api.test_secrets import LogCapture, raw_call
from tests.conftest import RunningServer, free_port, start_server, unique
from tests.s3server import S3Server


def marker() -> str:
    """A secret no other part of the system would write by chance."""
    return f"ds-{uuid.uuid4().hex}{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datastore-roots").resolve()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data").resolve()


@pytest.fixture(scope="module")
def rbac_server(module_database_url: str, roots: Path, data_dir: Path) -> Iterator[RunningServer]:
    """The access tests' server (new users hold no role), with a folder for datastores and,
    as a second allowed root, the server's own data folder (which must stay refused)."""
    allowed = [str(roots), str(data_dir)]
    with start_server(
        data_dir,
        module_database_url,
        new_user_roles=[],
        datastore_roots=allowed,
        storage_roots=[str(roots)],
    ) as running:
        yield running


@pytest.fixture
def workspace(api: Api) -> str:
    return api.workspace()


@pytest.fixture(scope="module")
def service(api: Api) -> DatastoreService:
    """The server's own datastore service, built by the app factory on the same database."""
    return build_services(api.server.settings, api.server.db).datastores


def path_of(workspace: str, name: str | None = None, suffix: str = "") -> str:
    base = f"/api/v1/workspaces/{workspace}/datastores"
    return base if name is None else f"{base}/{name}{suffix}"


def folder(roots: Path) -> Path:
    made = roots / unique("folder")
    made.mkdir()
    return made


def s3_spec(s3: S3Server, name: str, bucket: str, **extra: Any) -> dict[str, Any]:
    keys = {"access_key_id": s3.access_key_id, "secret_access_key": s3.secret_access_key}
    return {
        "name": name,
        "type": "s3",
        "bucket": bucket,
        "endpoint_url": s3.endpoint_url,
        "region": "us-east-1",
        "credentials": keys,
        **extra,
    }


def create(
    api: Api, workspace: str, spec: dict[str, Any], who: dict[str, str] | None = None, **params: Any
) -> httpx.Response:
    return api.call("POST", path_of(workspace), who or api.admin, json=spec, params=params or None)


def expect(response: httpx.Response, status: int, code: str, field: str | None = None) -> None:
    assert (response.status_code, problem_code(response)) == (status, code), response.text
    if field is not None:
        assert response.json()["field"] == field, response.text


# ----------------------------------------------------------------------------------------
# The workspace's own storage, and local folders
# ----------------------------------------------------------------------------------------


def test_every_workspace_has_workspaceblobstore_as_its_default(api: Api, workspace: str) -> None:
    listed = api.call("GET", path_of(workspace), api.admin)
    assert listed.status_code == 200, listed.text
    [own] = listed.json()["items"]
    assert own["name"] == "workspaceblobstore"
    assert own["is_default"] is True
    assert own["type"] == "local"
    assert own["credentials"] == {"kind": "none", "secret_name": None, "managed": False}
    shown = api.call("GET", path_of(workspace, "workspaceblobstore"), api.admin)
    assert shown.json() == own
    for method, suffix in (("PATCH", ""), ("DELETE", "")):
        refused = api.call(
            method, path_of(workspace, "workspaceblobstore", suffix), api.admin, json={}
        )
        expect(refused, 409, "datastore_protected", "name")
    taken = create(api, workspace, {"name": "workspaceblobstore", "type": "local", "path": "/x"})
    expect(taken, 409, "datastore_exists", "name")


def test_a_local_datastore_from_create_to_delete(api: Api, workspace: str, roots: Path) -> None:
    target = folder(roots)
    (target / "hello.txt").write_text("hi")
    made = create(
        api,
        workspace,
        {"name": "team_data", "type": "local", "path": str(target), "tags": {"k": "v"}},
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["type"], body["path"], body["uri"]) == ("local", str(target), str(target))
    assert body["credentials"]["kind"] == "none"
    assert (body["is_default"], body["read_only"], body["created_by"]) == (False, False, "admin")

    names = [d["name"] for d in api.call("GET", path_of(workspace), api.admin).json()["items"]]
    assert names == ["workspaceblobstore", "team_data"]
    changed = api.call(
        "PATCH",
        path_of(workspace, "team_data"),
        api.admin,
        json={"description": "shared CSVs", "tags": {"a": "b"}, "read_only": True},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["tags"]) == ("shared CSVs", {"a": "b"})
    assert changed.json()["read_only"] is True

    made_default = api.call("POST", path_of(workspace, "team_data", "/set-default"), api.admin)
    assert made_default.json()["is_default"] is True
    listed = api.call("GET", path_of(workspace), api.admin).json()["items"]
    assert [(d["name"], d["is_default"]) for d in listed] == [
        ("workspaceblobstore", False),
        ("team_data", True),
    ]
    deleted = api.call("DELETE", path_of(workspace, "team_data"), api.admin)
    assert deleted.status_code == 204
    assert (target / "hello.txt").read_text() == "hi"  # the data stays
    gone = api.call("GET", path_of(workspace, "team_data"), api.admin)
    expect(gone, 404, "datastore_not_found", "name")
    own = api.call("GET", path_of(workspace, "workspaceblobstore"), api.admin).json()
    assert own["is_default"] is True


def test_one_default_at_a_time(
    api: Api, workspace: str, roots: Path, service: DatastoreService
) -> None:
    for name in ("first", "second"):
        assert (
            create(
                api, workspace, {"name": name, "type": "local", "path": str(folder(roots))}
            ).status_code
            == 201
        )
    api.call("POST", path_of(workspace, "first", "/set-default"), api.admin)
    api.call("POST", path_of(workspace, "second", "/set-default"), api.admin)
    defaults = [
        d["name"]
        for d in api.call("GET", path_of(workspace), api.admin).json()["items"]
        if d["is_default"]
    ]
    assert defaults == ["second"]
    assert service.default_name(workspace) == "second"
    back = api.call("POST", path_of(workspace, "workspaceblobstore", "/set-default"), api.admin)
    assert back.json()["is_default"] is True
    assert service.default_name(workspace) == "workspaceblobstore"


def test_lists_page_with_the_workspace_storage_first(api: Api, workspace: str, roots: Path) -> None:
    for name in ("b_store", "a_store", "c_store"):
        create(api, workspace, {"name": name, "type": "local", "path": str(folder(roots))})
    seen, token = [], None
    while True:
        params: dict[str, Any] = {"max_results": 1}
        if token:
            params["page_token"] = token
        page = api.call("GET", path_of(workspace), api.admin, params=params).json()
        seen += [d["name"] for d in page["items"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == ["workspaceblobstore", "a_store", "b_store", "c_store"]
    two = api.call("GET", path_of(workspace), api.admin, params={"max_results": 2}).json()
    assert [d["name"] for d in two["items"]] == ["workspaceblobstore", "a_store"]
    rest = api.call(
        "GET",
        path_of(workspace),
        api.admin,
        params={"max_results": 2, "page_token": two["next_page_token"]},
    ).json()
    assert [d["name"] for d in rest["items"]] == ["b_store", "c_store"]
    assert rest["next_page_token"] is None


def test_a_folder_outside_the_allowed_roots_is_refused(
    api: Api, workspace: str, tmp_path: Path, roots: Path, data_dir: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    cases = {
        str(outside): "storage_not_allowed",
        "/etc": "storage_not_allowed",
        str(roots / ".." / roots.name / ".." / "x"): "storage_not_allowed",
        str(roots / "does-not-exist"): "storage_not_found",
        "relative/folder": "invalid_path",
        "s3://bucket/x": "invalid_path",
        str(roots) + "/\x00x": "invalid_path",
        # The server's own data folder is an allowed root here, and still refused.
        str(data_dir): "storage_not_allowed",
        str(data_dir / "artifacts"): "storage_not_allowed",
    }
    for path, code in cases.items():
        response = create(api, workspace, {"name": "outside", "type": "local", "path": path})
        expect(response, 400, code, "path")
    # Nothing tells whether a folder outside the roots exists.
    missing = create(api, workspace, {"name": "o", "type": "local", "path": str(outside / "no")})
    assert missing.json()["code"] == "storage_not_allowed"


def test_a_symlink_escaping_the_roots_is_refused_then_and_later(
    api: Api, workspace: str, tmp_path: Path, roots: Path, service: DatastoreService
) -> None:
    outside = tmp_path / "secret-place"
    outside.mkdir()
    link = roots / unique("link")
    link.symlink_to(outside, target_is_directory=True)
    refused = create(api, workspace, {"name": "linked", "type": "local", "path": str(link)})
    expect(refused, 400, "storage_not_allowed", "path")

    # A folder swapped for such a symlink after the datastore was made is refused on use.
    target = folder(roots)
    assert (
        create(
            api, workspace, {"name": "swapped", "type": "local", "path": str(target)}
        ).status_code
        == 201
    )
    assert service.open(workspace, "swapped").storage.list("") == []
    target.rmdir()
    target.symlink_to(outside, target_is_directory=True)
    with pytest.raises(ConflictError) as later:
        service.open(workspace, "swapped")
    assert later.value.code == "storage_not_allowed"


def test_another_workspaces_storage_cannot_become_a_datastore(api: Api, roots: Path) -> None:
    brought = folder(roots)
    theirs = unique("ws")
    body = {"name": theirs, "storage": {"uri": str(brought)}}
    api.as_admin("POST", "/api/v1/workspaces", json=body)
    own = api.call("GET", path_of(theirs, "workspaceblobstore"), api.admin).json()["path"]
    assert Path(own).parent == brought
    mine = api.workspace()
    for path in (own, str(brought)):
        response = create(api, mine, {"name": "peek", "type": "local", "path": path})
        expect(response, 400, "storage_not_allowed", "path")
    sibling = folder(roots)
    made = create(api, mine, {"name": "fine", "type": "local", "path": str(sibling)})
    assert made.status_code == 201, made.text


def test_concurrent_defaults_leave_exactly_one(api: Api, workspace: str, roots: Path) -> None:
    names = [f"candidate_{i}" for i in range(6)]
    for name in names:
        create(api, workspace, {"name": name, "type": "local", "path": str(folder(roots))})

    def make_default(name: str) -> int:
        with httpx.Client(timeout=60) as http:
            url = api.server.url + path_of(workspace, name, "/set-default")
            return http.post(url, headers=api.admin).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(make_default, names))
    assert set(statuses) <= {200, 409}, statuses
    assert 200 in statuses
    listed = api.call("GET", path_of(workspace), api.admin).json()["items"]
    assert sum(d["is_default"] for d in listed) == 1


def test_concurrent_creates_of_one_name_make_one_datastore(
    api: Api, workspace: str, s3_server: S3Server
) -> None:
    spec = s3_spec(s3_server, "raced", s3_server.new_bucket("ds"))

    def attempt(index: int) -> int:
        keys = {"access_key_id": s3_server.access_key_id, "secret_access_key": f"k{index}"}
        with httpx.Client(timeout=60) as http:
            url = api.server.url + path_of(workspace)
            body = {**spec, "credentials": keys, "description": f"d{index}"}
            params = {"skip_validation": "true"}
            return http.post(url, headers=api.admin, json=body, params=params).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(attempt, range(6)))
    assert statuses == [201] + [409] * 5
    # The keys kept are the winner's: a loser never replaced them.
    winner = api.call("GET", path_of(workspace, "raced"), api.admin).json()["description"]
    kept = api.call("POST", path_of(workspace, "raced", "/list-secrets"), api.admin).json()
    assert kept["secret_access_key"] == "k" + winner.removeprefix("d")


def test_a_read_only_datastore_refuses_writes(
    api: Api, workspace: str, roots: Path, service: DatastoreService
) -> None:
    target = folder(roots)
    (target / "a.csv").write_text("x,y\n")
    create(api, workspace, {"name": "ro", "type": "local", "path": str(target), "read_only": True})
    storage, read_only = service.open(workspace, "ro")
    assert read_only is True
    assert b"".join(storage.read("a.csv")) == b"x,y\n"
    with pytest.raises(ConflictError) as refused:
        write_all(storage, "b.csv", [b"no"])
    assert refused.value.code == "datastore_read_only"
    assert not (target / "b.csv").exists()
    api.call("PATCH", path_of(workspace, "ro"), api.admin, json={"read_only": False})
    storage, read_only = service.open(workspace, "ro")
    write_all(storage, "b.csv", [b"yes"])
    assert (target / "b.csv").read_text() == "yes"


# ----------------------------------------------------------------------------------------
# S3 datastores on a real SeaweedFS server
# ----------------------------------------------------------------------------------------


def test_an_s3_datastore_keeps_its_keys_in_the_key_vault(
    api: Api, workspace: str, s3_server: S3Server, service: DatastoreService
) -> None:
    bucket = s3_server.new_bucket("ds")
    made = create(api, workspace, s3_spec(s3_server, "lake", bucket, prefix="raw/2024"))
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["uri"] == f"s3://{bucket}/raw/2024"
    assert body["credentials"] == {
        "kind": "secret",
        "secret_name": "datastore-lake-credentials",
        "managed": True,
    }
    assert s3_server.secret_access_key not in made.text
    assert s3_server.access_key_id not in made.text
    vault = api.call("GET", f"/api/v1/workspaces/{workspace}/secrets", api.admin).json()
    assert [s["name"] for s in vault["items"]] == ["datastore-lake-credentials"]

    keys = api.call("POST", path_of(workspace, "lake", "/list-secrets"), api.admin)
    assert keys.status_code == 200, keys.text
    assert keys.headers["cache-control"] == "no-store"
    assert keys.json() == {
        "name": "lake",
        "kind": "secret",
        "access_key_id": s3_server.access_key_id,
        "secret_access_key": s3_server.secret_access_key,
    }

    storage, _ = service.open(workspace, "lake")
    write_all(storage, "day1/part-0.csv", [b"a,b\n1,2\n"])
    assert [f.path for f in storage.list("", recursive=True)] == ["day1/part-0.csv"]
    raw = s3_server.filesystem()
    assert raw.cat_file(f"{bucket}/raw/2024/day1/part-0.csv") == b"a,b\n1,2\n"

    deleted = api.call("DELETE", path_of(workspace, "lake"), api.admin)
    assert deleted.status_code == 204
    vault = api.call("GET", f"/api/v1/workspaces/{workspace}/secrets", api.admin).json()
    assert vault["items"] == []
    assert raw.cat_file(f"{bucket}/raw/2024/day1/part-0.csv") == b"a,b\n1,2\n"


def test_a_wrong_secret_is_a_clear_403_that_does_not_quote_it(
    api: Api, workspace: str, s3_server: S3Server
) -> None:
    bucket, wrong = s3_server.new_bucket("ds"), marker()
    spec = s3_spec(s3_server, "bad_keys", bucket)
    spec["credentials"]["secret_access_key"] = wrong
    response = create(api, workspace, spec)
    expect(response, 403, "storage_access_denied", "credentials")
    assert bucket in response.json()["detail"]
    assert wrong not in response.text
    unknown = s3_spec(s3_server, "bad_id", bucket)
    unknown["credentials"]["access_key_id"] = "AKIANOSUCHKEY"
    expect(create(api, workspace, unknown), 403, "storage_access_denied", "credentials")
    # Nothing was kept: no datastore, no secret.
    assert [d["name"] for d in api.call("GET", path_of(workspace), api.admin).json()["items"]] == [
        "workspaceblobstore"
    ]
    assert (
        api.call("GET", f"/api/v1/workspaces/{workspace}/secrets", api.admin).json()["items"] == []
    )


def test_an_endpoint_that_does_not_answer_is_a_quick_503(
    api: Api, workspace: str, s3_server: S3Server
) -> None:
    spec = s3_spec(s3_server, "down", "some-bucket", endpoint_url=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    response = create(api, workspace, spec)
    took = time.monotonic() - started
    expect(response, 503, "storage_unavailable", "endpoint_url")
    assert "does not answer" in response.json()["detail"]
    assert took < 15, took  # one attempt, not a retry loop (a bound, not a benchmark)
    # Made anyway when asked not to check; using it is then the same clear 503.
    made = create(api, workspace, spec, skip_validation="true")
    assert made.status_code == 201, made.text


def test_a_missing_bucket_is_a_404_naming_the_bucket(
    api: Api, workspace: str, s3_server: S3Server
) -> None:
    response = create(
        api, workspace, s3_spec(s3_server, "nobucket", f"missing-{uuid.uuid4().hex[:8]}")
    )
    expect(response, 404, "bucket_not_found", "bucket")


def test_keys_rotate_and_can_move_to_a_secret_of_the_vault(
    api: Api, workspace: str, s3_server: S3Server, service: DatastoreService
) -> None:
    bucket = s3_server.new_bucket("ds")
    assert create(api, workspace, s3_spec(s3_server, "rot", bucket)).status_code == 201
    wrong = {"access_key_id": s3_server.access_key_id, "secret_access_key": marker()}
    refused = api.call("PATCH", path_of(workspace, "rot"), api.admin, json={"credentials": wrong})
    expect(refused, 403, "storage_access_denied", "credentials")
    keys = api.call("POST", path_of(workspace, "rot", "/list-secrets"), api.admin).json()
    assert keys["secret_access_key"] == s3_server.secret_access_key  # unchanged

    shared = {
        "access_key_id": s3_server.access_key_id,
        "secret_access_key": s3_server.secret_access_key,
    }
    api.as_admin(
        "PUT", f"/api/v1/workspaces/{workspace}/secrets/team-s3", json={"value": json.dumps(shared)}
    )
    moved = api.call(
        "PATCH",
        path_of(workspace, "rot"),
        api.admin,
        json={"credentials": {"secret_name": "team-s3"}},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["credentials"] == {
        "kind": "secret",
        "secret_name": "team-s3",
        "managed": False,
    }
    vault = api.call("GET", f"/api/v1/workspaces/{workspace}/secrets", api.admin).json()
    assert [s["name"] for s in vault["items"]] == ["team-s3"]  # the managed one went
    write_all(service.open(workspace, "rot").storage, "x.txt", [b"x"])

    api.as_admin("DELETE", path_of(workspace, "rot"))
    vault = api.call("GET", f"/api/v1/workspaces/{workspace}/secrets", api.admin).json()
    assert [s["name"] for s in vault["items"]] == ["team-s3"]  # not the datastore's to delete


def test_a_referenced_secret_must_exist_and_hold_keys(
    api: Api, workspace: str, s3_server: S3Server
) -> None:
    bucket, value = s3_server.new_bucket("ds"), marker()
    spec = s3_spec(s3_server, "ref", bucket, credentials={"secret_name": "nope"})
    expect(create(api, workspace, spec), 404, "secret_not_found", "credentials.secret_name")
    api.as_admin("PUT", f"/api/v1/workspaces/{workspace}/secrets/plain", json={"value": value})
    spec["credentials"] = {"secret_name": "plain"}
    response = create(api, workspace, spec)
    expect(response, 400, "invalid_credentials_secret", "credentials.secret_name")
    assert value not in response.text
    spec["credentials"] = {"secret_name": "datastore-other-credentials"}
    expect(create(api, workspace, spec), 400, "invalid_credentials", "credentials.secret_name")


def test_without_credentials_an_s3_datastore_needs_the_administrators_leave(
    api: Api, workspace: str, s3_server: S3Server
) -> None:
    spec = s3_spec(s3_server, "ambient", s3_server.new_bucket("ds"))
    del spec["credentials"]
    expect(create(api, workspace, spec), 400, "server_credentials_not_allowed", "credentials")
    # Anonymous is a choice of its own: SeaweedFS refuses unsigned requests to this bucket.
    spec["credentials"] = {"anonymous": True}
    expect(create(api, workspace, spec), 403, "storage_access_denied", "credentials")


# ----------------------------------------------------------------------------------------
# Bad input: a 4xx naming the field, never a 500
# ----------------------------------------------------------------------------------------

AZURE_BLOB = {
    "name": "azure_blob_example",
    "type": "azure_blob",
    "account_name": "mytestblobstore",
    "container_name": "data-container",
    "credentials": {"account_key": "XXXxxxXXX"},
}


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (AZURE_BLOB, 400, "invalid_field", "type"),
        (
            {**AZURE_BLOB, "type": "azure_data_lake_gen2", "filesystem": "fs"},
            400,
            "invalid_field",
            "type",
        ),
        ({"name": "x", "type": "ftp"}, 400, "invalid_field", "type"),
        ({"name": "x"}, 400, "missing_field", "type"),
        ({"name": "bad name", "type": "local", "path": "/x"}, 400, "invalid_name", "name"),
        ({"name": "..", "type": "local", "path": "/x"}, 400, "invalid_name", "name"),
        ({"name": "x" * 101, "type": "local", "path": "/x"}, 400, "invalid_name", "name"),
        ({"name": "x", "type": "local"}, 400, "missing_field", "path"),
        (
            {"name": "x", "type": "local", "path": "/x", "bucket": "b"},
            400,
            "invalid_field",
            "bucket",
        ),
        ({"name": "x", "type": "s3"}, 400, "missing_field", "bucket"),
        ({"name": "x", "type": "s3", "bucket": "B_ad"}, 400, "invalid_bucket", "bucket"),
        ({"name": "x", "type": "s3", "bucket": "bkt", "path": "/x"}, 400, "invalid_field", "path"),
        (
            {"name": "x", "type": "s3", "bucket": "bkt", "prefix": "../up"},
            400,
            "invalid_path",
            "prefix",
        ),
        (
            {"name": "x", "type": "s3", "bucket": "bkt", "prefix": "%2e%2e/up"},
            400,
            "invalid_path",
            "prefix",
        ),
        (
            {"name": "x", "type": "s3", "bucket": "bkt", "endpoint_url": "ftp://h"},
            400,
            "invalid_endpoint",
            "endpoint_url",
        ),
        (
            {"name": "x", "type": "s3", "bucket": "bkt", "endpoint_url": "http://u:p@h"},
            400,
            "invalid_endpoint",
            "endpoint_url",
        ),
        (
            {"name": "x", "type": "s3", "bucket": "bkt", "endpoint_url": "http://h:99999"},
            400,
            "invalid_endpoint",
            "endpoint_url",
        ),
        (
            {"name": "x", "type": "s3", "bucket": "bkt", "region": "US East"},
            400,
            "invalid_region",
            "region",
        ),
        (
            {"name": "x", "type": "s3", "bucket": "bkt", "credentials": {}},
            400,
            "invalid_credentials",
            "credentials",
        ),
        (
            {"name": "x", "type": "s3", "bucket": "bkt", "credentials": {"access_key_id": "a"}},
            400,
            "missing_field",
            "credentials.secret_access_key",
        ),
        (
            {
                "name": "x",
                "type": "s3",
                "bucket": "bkt",
                "credentials": {"anonymous": True, "secret_name": "s"},
            },
            400,
            "invalid_credentials",
            "credentials",
        ),
        (
            {"name": "x", "type": "s3", "bucket": "bkt", "credentials": {"sas_token": "t"}},
            400,
            "unknown_field",
            "credentials.sas_token",
        ),
        (
            {"name": "x", "type": "local", "path": "/x", "credentials": {"anonymous": True}},
            400,
            "invalid_field",
            "credentials",
        ),
        (
            {
                "name": "x",
                "type": "s3",
                "bucket": "bkt",
                "credentials": {"access_key_id": "a\r\nX: y", "secret_access_key": "s"},
            },
            400,
            "invalid_credentials",
            "credentials.access_key_id",
        ),
        (
            {
                "name": "x",
                "type": "s3",
                "bucket": "bkt",
                "credentials": {"access_key_id": "a", "secret_access_key": "with space"},
            },
            400,
            "invalid_credentials",
            "credentials.secret_access_key",
        ),
        (
            {"name": "x", "type": "local", "path": "/x", "description": "a\x00b"},
            400,
            "invalid_field",
            "description",
        ),
    ],
)
def test_bad_bodies_are_4xx_naming_the_field(
    api: Api, workspace: str, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    expect(create(api, workspace, body), status, code, field)


def test_an_azure_file_is_told_what_to_use_instead(api: Api, workspace: str) -> None:
    detail = create(api, workspace, AZURE_BLOB).json()["detail"]
    for needed in ("Azure Blob Storage", "'s3'", "'local'", "docs/datastores.md"):
        assert needed in detail
    assert "XXXxxxXXX" not in detail


@pytest.mark.parametrize("name", ["..", ".", "a%20b", "-lead", "x" * 101, "%00x"])
def test_bad_names_in_the_path_are_400s_on_every_route(api: Api, workspace: str, name: str) -> None:
    for method, suffix in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/set-default"),
        ("POST", "/list-secrets"),
    ):
        body = b"{}" if method == "PATCH" else None
        status, problem = raw_call(api, method, path_of(workspace, name, suffix), body)
        assert (status, problem["code"], problem["field"]) == (400, "invalid_name", "name"), (
            method,
            name,
            problem,
        )
    assert api.call("GET", f"/api/v1/workspaces/{workspace}", api.admin).status_code == 200


def test_a_soft_deleted_workspace_hides_its_datastores_and_a_purge_removes_them(
    api: Api, roots: Path
) -> None:
    workspace = api.workspace()
    create(api, workspace, {"name": "kept", "type": "local", "path": str(folder(roots))})
    api.as_admin("DELETE", f"/api/v1/workspaces/{workspace}")
    expect(api.call("GET", path_of(workspace, "kept"), api.admin), 404, "workspace_deleted")
    api.as_admin("POST", f"/api/v1/workspaces/{workspace}/recover")
    assert api.call("GET", path_of(workspace, "kept"), api.admin).status_code == 200
    api.as_admin("DELETE", f"/api/v1/workspaces/{workspace}", params={"permanently_delete": "true"})
    api.as_admin("POST", "/api/v1/workspaces", json={"name": workspace})
    expect(api.call("GET", path_of(workspace, "kept"), api.admin), 404, "datastore_not_found")


# ----------------------------------------------------------------------------------------
# Who may read the keys, and isolation
# ----------------------------------------------------------------------------------------


def test_only_roles_that_read_secrets_may_list_a_datastores_keys(
    api: Api, workspace: str, s3_server: S3Server
) -> None:
    spec = s3_spec(s3_server, "guarded", s3_server.new_bucket("ds"))
    assert create(api, workspace, spec).status_code == 201
    owner = api.user_with("Owner", workspace=workspace)
    allowed = api.call("POST", path_of(workspace, "guarded", "/list-secrets"), owner.headers)
    assert allowed.json()["secret_access_key"] == s3_server.secret_access_key
    events = api.events(allowed.headers["x-request-id"], principal=owner.name)
    assert [(e["action"], e["outcome"]) for e in events] == [
        ("workspaces/datastores/listSecrets/action", "succeeded")
    ]
    for role in ("Data Scientist", "Reader", "ML Engineer"):
        actor = api.user_with(role, workspace=workspace)
        shown = api.call("GET", path_of(workspace, "guarded"), actor.headers)
        assert shown.status_code == 200
        refused = api.call("POST", path_of(workspace, "guarded", "/list-secrets"), actor.headers)
        expect(refused, 403, "forbidden")
        assert s3_server.secret_access_key not in refused.text
        denied = api.events(refused.headers["x-request-id"], principal=actor.name)
        assert [e["outcome"] for e in denied] == ["denied"]


def test_a_data_scientist_creates_datastores_but_cannot_read_their_keys(
    api: Api, workspace: str, s3_server: S3Server
) -> None:
    scientist = api.user_with("Data Scientist", workspace=workspace)
    made = create(
        api, workspace, s3_spec(s3_server, "theirs", s3_server.new_bucket("ds")), scientist.headers
    )
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == scientist.name
    refused = api.call("POST", path_of(workspace, "theirs", "/list-secrets"), scientist.headers)
    expect(refused, 403, "forbidden")
    # Naming a vault secret as the keys needs the right to read that secret.
    keys = json.dumps(s3_spec(s3_server, "k", "b")["credentials"])
    api.as_admin("PUT", f"/api/v1/workspaces/{workspace}/secrets/team-keys", json={"value": keys})
    spec = s3_spec(
        s3_server, "named", s3_server.new_bucket("ds"), credentials={"secret_name": "team-keys"}
    )
    expect(
        create(api, workspace, spec, scientist.headers), 403, "forbidden", "credentials.secret_name"
    )
    assert create(api, workspace, spec).status_code == 201  # the admin may
    moved = api.call(
        "PATCH",
        path_of(workspace, "theirs"),
        scientist.headers,
        json={"credentials": {"secret_name": "team-keys"}},
    )
    expect(moved, 403, "forbidden", "credentials.secret_name")
    reader = api.user_with("Reader", workspace=workspace)
    expect(
        create(api, workspace, {"name": "r", "type": "s3", "bucket": "bkt"}, reader.headers),
        403,
        "forbidden",
    )


def test_another_workspaces_datastore_is_not_found(
    api: Api, roots: Path, service: DatastoreService
) -> None:
    theirs, mine = api.workspace(), api.workspace()
    create(api, theirs, {"name": "their_store", "type": "local", "path": str(folder(roots))})
    owner = api.user_with("Owner", workspace=mine)
    for method, suffix in (
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/set-default"),
        ("POST", "/list-secrets"),
    ):
        by_name = api.call(method, path_of(mine, "their_store", suffix), owner.headers, json={})
        expect(by_name, 404, "datastore_not_found", "name")
        through_theirs = api.call(
            method, path_of(theirs, "their_store", suffix), owner.headers, json={}
        )
        expect(through_theirs, 404, "workspace_not_found")
    with pytest.raises(NotFoundError) as missing:
        service.open(mine, "their_store")
    assert missing.value.code == "datastore_not_found"


def test_datastore_uris_resolve_through_the_apps_resolver(
    api: Api, workspace: str, roots: Path
) -> None:
    """The resolver data assets and models use knows every datastore of the workspace, and
    only of that workspace."""
    target = folder(roots)
    (target / "sub").mkdir()
    (target / "sub" / "f.txt").write_text("content")
    create(
        api, workspace, {"name": "files", "type": "local", "path": str(target), "read_only": True}
    )
    other = api.workspace()
    resolver = build_services(api.server.settings, api.server.db).uploads.resolver
    assert isinstance(resolver, NamedDatastoreResolver)
    with api.server.db.read() as session:
        ws = get_workspace(session, workspace)
        assert ws is not None
        found = resolver.resolve(session, ws, "files", "sub/f.txt", field="path")
        assert b"".join(found.storage.read(found.key)) == b"content"
        assert found.read_only is True
        assert found.uri == "azureml://datastores/files/paths/sub/f.txt"
        own = resolver.resolve(session, ws, "workspaceblobstore", "x", field="path")
        assert own.datastore == "workspaceblobstore"
        elsewhere = get_workspace(session, other)
        assert elsewhere is not None
        with pytest.raises(NotFoundError) as missing:
            resolver.resolve(session, elsewhere, "files", "sub/f.txt", field="path")
        assert (missing.value.code, missing.value.field) == ("datastore_not_found", "path")
        with pytest.raises(InvalidInputError) as escape:
            resolver.resolve(session, ws, "files", "../outside", field="path")
        assert escape.value.code == "invalid_path"


def test_data_assets_point_into_datastores_of_their_own_workspace_only(
    api: Api, workspace: str, roots: Path, s3_server: S3Server
) -> None:
    target = folder(roots)
    (target / "people.csv").write_text("name,age\nann,31\n")
    create(
        api, workspace, {"name": "drop", "type": "local", "path": str(target), "read_only": True}
    )
    bucket = s3_server.new_bucket("assets")
    assert (
        create(api, workspace, s3_spec(s3_server, "lake", bucket, prefix="in")).status_code == 201
    )
    s3_server.filesystem().pipe_file(f"{bucket}/in/t/part-0.csv", b"a,b\n1,2\n")
    data = f"/api/v1/workspaces/{workspace}/data"
    local = api.call(
        "POST",
        f"{data}/people/versions",
        api.admin,
        json={"path": "azureml://datastores/drop/paths/people.csv", "type": "uri_file"},
    )
    assert local.status_code == 201, local.text
    got = api.call("GET", f"{data}/people/versions/1/files/people.csv", api.admin)
    assert got.content == b"name,age\nann,31\n"
    on_s3 = api.call(
        "POST",
        f"{data}/table/versions",
        api.admin,
        json={"path": "shipyard://datastores/lake/paths/t"},
    )
    assert on_s3.status_code == 201, on_s3.text
    got = api.call("GET", f"{data}/table/versions/1/files/part-0.csv", api.admin)
    assert got.content == b"a,b\n1,2\n"
    # From another workspace, the same URI names nothing.
    other = api.workspace()
    elsewhere = api.call(
        "POST",
        f"/api/v1/workspaces/{other}/data/people/versions",
        api.admin,
        json={"path": "azureml://datastores/drop/paths/people.csv", "type": "uri_file"},
    )
    expect(elsewhere, 404, "datastore_not_found")
    # A datastore that data lives on stays until that data goes.
    in_use = api.call("DELETE", path_of(workspace, "drop"), api.admin)
    expect(in_use, 409, "datastore_in_use", "name")
    assert "people:1" in in_use.json()["detail"]
    gone = api.call("DELETE", f"{data}/people/versions/1", api.admin)
    assert gone.status_code == 204, gone.text
    assert api.call("DELETE", path_of(workspace, "drop"), api.admin).status_code == 204


# ----------------------------------------------------------------------------------------
# Keys appear in one place: the response that lists them
# ----------------------------------------------------------------------------------------


def _calls_carrying(
    api: Api, workspace: str, s3: S3Server, secret: str, outsider: dict[str, str]
) -> list[httpx.Response]:
    """Every datastore route, successes and failures, each carrying ``secret`` where it can.
    The server holds the real key too (its list-secrets is the one exception, made apart)."""
    bucket = s3.new_bucket("leak")
    good = s3_spec(s3, "leaky", bucket)
    wrong = s3_spec(s3, "wrong", bucket)
    wrong["credentials"]["secret_access_key"] = secret
    down = {**wrong, "name": "down", "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    keyed = {"access_key_id": "AKIAEXAMPLE", "secret_access_key": secret}
    path = path_of(workspace, "leaky")
    return [
        create(api, workspace, good),
        create(api, workspace, wrong),  # 403
        create(api, workspace, down),  # 503
        create(api, workspace, {**good, "name": "nob", "bucket": "no-such-bkt"}),
        create(api, workspace, {**wrong, "name": "bad name"}),
        create(api, workspace, {**wrong, "credentials": {**keyed, "extra": 1}}),
        create(api, workspace, {**wrong, "credentials": {"secret_access_key": {"x": secret}}}),
        create(api, workspace, {**wrong, "type": "azure_blob", "account_key": secret}),
        create(api, workspace, {**wrong, "name": "skipped"}, skip_validation="true"),
        create(api, workspace, wrong, outsider),  # denied
        api.call("GET", path_of(workspace), api.admin),
        api.call("GET", path, api.admin),
        api.call("GET", path_of(workspace, "skipped"), api.admin),
        api.call("PATCH", path, api.admin, json={"credentials": keyed}),  # 403
        api.call(
            "PATCH",
            path,
            api.admin,
            json={"credentials": keyed},
            params={"skip_validation": "true"},
        ),
        api.call("PATCH", path, api.admin, json={"credentials": good["credentials"]}),
        api.call("PATCH", path, outsider, json={"credentials": keyed}),
        api.call("POST", path_of(workspace, "leaky", "/list-secrets"), outsider),
        api.call("POST", path_of(workspace, "leaky", "/set-default"), api.admin),
        api.call("DELETE", path_of(workspace, "skipped"), api.admin),
    ]


def test_keys_never_appear_in_responses_logs_or_the_audit_log(
    api: Api, workspace: str, s3_server: S3Server
) -> None:
    secret = marker()
    reader = api.user_with("Reader", workspace=workspace)
    with LogCapture() as logs:  # everything, SQL statements and their parameters included
        responses = _calls_carrying(api, workspace, s3_server, secret, reader.headers)
        listed = api.call("POST", path_of(workspace, "skipped", "/list-secrets"), api.admin)
        api.settle()
    statuses = [r.status_code for r in responses]
    assert statuses == [
        201,
        403,
        503,
        404,
        400,
        400,
        400,
        400,
        201,
        403,
        200,
        200,
        200,
        403,
        200,
        200,
        403,
        403,
        200,
        204,
    ]
    for response in responses:
        shown = response.text + json.dumps(dict(response.headers))
        assert secret not in shown, (response.request.method, response.request.url, shown[:300])
        assert s3_server.secret_access_key not in shown
    assert listed.status_code == 404  # deleted above; the reveal is tested on its own
    assert secret not in logs.text()
    assert s3_server.secret_access_key not in logs.text()
    events = api.audit(workspace=workspace) + api.audit()
    assert any(e["action"] == "workspaces/datastores/write" for e in events)
    assert secret not in json.dumps(events)


def test_keys_are_encrypted_at_rest(api: Api, workspace: str, s3_server: S3Server) -> None:
    secret = marker()
    spec = s3_spec(s3_server, "at_rest", "any-bucket")
    spec["credentials"]["secret_access_key"] = secret
    assert create(api, workspace, spec, skip_validation="true").status_code == 201
    from sqlalchemy import MetaData, select

    needle = secret.encode()
    with api.server.db.read() as session:
        metadata = MetaData()
        metadata.reflect(session.connection())
        for table in metadata.sorted_tables:
            for row in session.execute(select(table)):
                for cell in row:
                    raw = cell if isinstance(cell, bytes) else str(cell).encode()
                    assert needle not in raw, f"the key is in table {table.name}"
