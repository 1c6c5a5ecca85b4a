"""Data assets over real HTTP: versions, latest, immutability, archive, delete guarded by the
models that use a version, files, previews, and the bad input every field can carry."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.lineage import JobAssetRow
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow
from tests.api.test_uploads import manifest, upload
from tests.conftest import RunningServer, unique

BLOB = "azureml://datastores/workspaceblobstore/paths"
CSV = b"name,age,city\nann,31,oslo\nbob,42,rome\ncid,27,lima\ndan,55,kiev\neve,38,nice\n"


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=30) as client:
        yield client


@pytest.fixture
def ws(http: httpx.Client) -> str:
    name = unique()
    assert http.post("/api/v1/workspaces", json={"name": name}).status_code == 201
    return name


def data_url(ws: str, rest: str = "") -> str:
    return f"/api/v1/workspaces/{ws}/data{rest}"


def create(http: httpx.Client, ws: str, name: str, **body: Any) -> httpx.Response:
    return http.post(data_url(ws, f"/{name}/versions"), json=body)


def folder(http: httpx.Client, ws: str, files: dict[str, bytes]) -> str:
    return f"{BLOB}/LocalUpload/{upload(http, ws, files)}"


def model_upload(http: httpx.Client, ws: str, files: dict[str, bytes]) -> str:
    """Upload files as a model's; their datastore URI (a logged model's folder)."""
    digest, body = manifest(files)
    upload(http, ws, files, area="models")
    uri: str = http.put(f"/api/v1/workspaces/{ws}/models/artifacts/{digest}", json=body).json()[
        "uri"
    ]
    return uri


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=2)
    return sink.getvalue()


def test_versions_count_up_and_latest_is_the_newest(http: httpx.Client, ws: str) -> None:
    path = folder(http, ws, {"a.csv": CSV})
    assert create(http, ws, "sales", path=path).json()["version"] == "1"
    assert create(http, ws, "sales", path=path).json()["version"] == "2"
    assert create(http, ws, "sales", path=path, version="2024-06").json()["version"] == "2024-06"
    assert create(http, ws, "sales", path=path, version="10").json()["version"] == "10"
    for expected in ("11", "12"):  # numbers, not text: 12 comes after 11, not after 1
        assert create(http, ws, "sales", path=path).json()["version"] == expected
    latest = http.get(data_url(ws, "/sales/versions/latest")).json()
    assert latest["version"] == "12"
    assert latest["type"] == "uri_folder"
    assert latest["path"] == path
    assert latest["datastore"] == "workspaceblobstore"
    assert (latest["file_count"], latest["size"]) == (1, len(CSV))
    versions = [v["version"] for v in http.get(data_url(ws, "/sales/versions")).json()["items"]]
    assert versions == ["12", "11", "10", "2024-06", "2", "1"]
    page = http.get(data_url(ws, "/sales/versions"), params={"max_results": 4}).json()
    rest = http.get(
        data_url(ws, "/sales/versions"), params={"page_token": page["next_page_token"]}
    ).json()
    assert [v["version"] for v in page["items"] + rest["items"]] == versions
    assets = http.get(data_url(ws)).json()["items"]
    assert [(a["name"], a["latest_version"]) for a in assets] == [("sales", "12")]


def test_versions_are_immutable(http: httpx.Client, ws: str) -> None:
    path = folder(http, ws, {"a.csv": CSV})
    create(http, ws, "frozen", path=path, version="1", description="v1", tags={"a": "b"})
    again = create(http, ws, "frozen", path=path, version="1")
    assert (again.status_code, again.json()["code"]) == (409, "data_version_exists")
    for bad in ("latest", "LATEST"):
        got = create(http, ws, "frozen", path=path, version=bad)
        assert (got.status_code, got.json()["field"]) == (400, "version")
    changed = http.patch(
        data_url(ws, "/frozen/versions/1"), json={"description": "better", "tags": {"k": "v"}}
    ).json()
    assert (changed["description"], changed["tags"], changed["path"]) == (
        "better",
        {"k": "v"},
        path,
    )
    moved = http.patch(data_url(ws, "/frozen/versions/1"), json={"path": f"{BLOB}/elsewhere"})
    assert (moved.status_code, moved.json()["code"]) == (400, "unknown_field")
    # Deleting the newest version does not free its number.
    create(http, ws, "frozen", path=path)
    assert http.delete(data_url(ws, "/frozen/versions/2")).status_code == 204
    assert create(http, ws, "frozen", path=path).json()["version"] == "3"


def test_archive_hides_and_restore_brings_back(http: httpx.Client, ws: str) -> None:
    path = folder(http, ws, {"a.csv": CSV})
    create(http, ws, "arch", path=path)
    create(http, ws, "arch", path=path)
    assert http.post(data_url(ws, "/arch/versions/2/archive")).status_code == 204
    assert http.get(data_url(ws, "/arch/versions/latest")).json()["version"] == "1"
    listed = http.get(data_url(ws, "/arch/versions")).json()["items"]
    assert [v["version"] for v in listed] == ["1"]
    every = http.get(data_url(ws, "/arch/versions"), params={"include_archived": True}).json()
    assert [v["version"] for v in every["items"]] == ["2", "1"]
    assert http.get(data_url(ws, "/arch/versions/2")).json()["archived"] is True

    assert http.post(data_url(ws, "/arch/archive")).status_code == 204
    assert http.get(data_url(ws)).json()["items"] == []
    archived = http.get(data_url(ws), params={"include_archived": True}).json()["items"]
    assert [(a["name"], a["archived"]) for a in archived] == [("arch", True)]
    assert http.post(data_url(ws, "/arch/restore")).status_code == 204
    assert http.post(data_url(ws, "/arch/versions/2/restore")).status_code == 204
    assert http.get(data_url(ws, "/arch/versions/latest")).json()["version"] == "2"


def test_web_references_are_kept_not_fetched(http: httpx.Client, ws: str) -> None:
    url = "https://data.example.invalid/titanic.csv"
    made = create(http, ws, "web", path=url, type="uri_file").json()
    assert (made["path"], made["datastore"]) == (url, None)
    for route in ("/web/versions/1/files", "/web/versions/1/preview"):
        got = http.get(data_url(ws, route))
        assert (got.status_code, got.json()["code"]) == (400, "web_reference")


def test_datastore_paths_must_exist_and_fit_the_type(http: httpx.Client, ws: str) -> None:
    base = folder(http, ws, {"a.csv": CSV, "sub/b.csv": CSV})
    assert create(http, ws, "one", path=f"{base}/a.csv", type="uri_file").status_code == 201
    sub = create(http, ws, "sub", path=f"{base}/sub").json()
    assert (sub["file_count"], sub["size"]) == (1, len(CSV))
    cases = [
        ({"path": f"{BLOB}/nowhere"}, 404, "path_not_found"),
        ({"path": f"{base}/a.csv"}, 400, "path_is_file"),
        ({"path": base, "type": "uri_file"}, 400, "path_is_folder"),
        ({"path": base, "type": "mltable"}, 400, "mltable_missing"),
        ({"path": "azureml://datastores/lake/paths/x"}, 404, "datastore_not_found"),
        (
            "azureml://subscriptions/s/resourcegroups/r/workspaces/other/datastores/"
            "workspaceblobstore/paths/x",
            404,
            "datastore_not_found",
        ),
        ({"path": "./local/folder"}, 400, "unsupported_path"),
        ({"path": "wasbs://c@acct.blob.core.windows.net/x"}, 400, "unsupported_path"),
        ({"path": "runs:/abc/model"}, 400, "unsupported_path"),
        ({"path": f"{BLOB}/LocalUpload/{'0' * 64}"}, 404, "upload_not_found"),
        ({"path": f"{BLOB}/LocalUpload/not-a-digest"}, 404, "upload_not_found"),
        ({"path": f"{BLOB}/x", "type": "table"}, 400, "invalid_field"),
    ]
    for body, status, code in cases:
        body = body if isinstance(body, dict) else {"path": body}
        got = create(http, ws, "bad", **body)
        assert (got.status_code, got.json()["code"], got.json()["field"]) == (
            status,
            code,
            "path" if code != "invalid_field" else "type",
        ), body
    assert http.get(data_url(ws, "/bad/versions")).status_code == 404


TRAVERSALS = [
    "../x",
    "a/../../x",
    "%2e%2e/x",
    "%252e%252e/x",
    "/etc/passwd",
    "a\\..\\x",
    "a\x00b",
    "a/" + "x" * 300,
]


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_traversal_in_a_path_field_is_refused(http: httpx.Client, ws: str, bad: str) -> None:
    got = create(http, ws, "evil", path=f"{BLOB}/{bad}")
    assert got.status_code == 400, got.text
    assert got.json()["field"] == "path"
    assert got.json()["code"] in ("invalid_path", "invalid_field")


@pytest.mark.parametrize("bad", ["%2e%2e/%2e%2e/x", "%252e%252e/x", "a%5cb", "a%00b", "x" * 300])
def test_traversal_in_file_routes_is_refused(http: httpx.Client, ws: str, bad: str) -> None:
    create(http, ws, "files", path=folder(http, ws, {"a.csv": CSV}))
    got = http.get(data_url(ws, f"/files/versions/1/files/{bad}"))
    assert (got.status_code, got.json()["code"]) == (400, "invalid_path"), got.text
    listed = http.get(data_url(ws, "/files/versions/1/files"), params={"path": bad})
    assert (listed.status_code, listed.json()["code"]) == (400, "invalid_path"), listed.text


@pytest.mark.parametrize("bad", ["%2e%2e", ".hidden", "a b", "x" * 300, "a%00b"])
def test_bad_names_are_refused(http: httpx.Client, ws: str, bad: str) -> None:
    got = create(http, ws, bad, path=f"{BLOB}/x")
    assert (got.status_code, got.json()["field"]) == (400, "name"), got.text


def test_files_list_and_download_with_ranges(http: httpx.Client, ws: str) -> None:
    create(http, ws, "tree", path=folder(http, ws, {"a.csv": CSV, "sub/b.txt": b"bee"}))
    top = http.get(data_url(ws, "/tree/versions/1/files")).json()["items"]
    assert [(f["path"], f["is_dir"]) for f in top] == [("a.csv", False), ("sub", True)]
    every = http.get(data_url(ws, "/tree/versions/1/files"), params={"recursive": True}).json()
    assert [f["path"] for f in every["items"]] == ["a.csv", "sub/b.txt"]
    assert http.get(data_url(ws, "/tree/versions/1/files/sub/b.txt")).content == b"bee"
    ranged = http.get(data_url(ws, "/tree/versions/1/files/a.csv"), headers={"Range": "bytes=0-3"})
    assert (ranged.status_code, ranged.content) == (206, CSV[:4])
    folder_get = http.get(data_url(ws, "/tree/versions/1/files/sub"))
    assert (folder_get.status_code, folder_get.json()["code"]) == (400, "path_is_folder")
    missing = http.get(data_url(ws, "/tree/versions/1/files/nope.txt"))
    assert (missing.status_code, missing.json()["code"]) == (404, "file_not_found")

    base = folder(http, ws, {"only.csv": CSV})
    create(http, ws, "single", path=f"{base}/only.csv", type="uri_file")
    listed = http.get(data_url(ws, "/single/versions/1/files")).json()["items"]
    assert [(f["path"], f["size"]) for f in listed] == [("only.csv", len(CSV))]
    assert http.get(data_url(ws, "/single/versions/1/files/only.csv")).content == CSV


def test_another_workspaces_asset_is_not_found(http: httpx.Client, ws: str) -> None:
    create(http, ws, "private", path=folder(http, ws, {"a.csv": CSV}))
    other = unique()
    http.post("/api/v1/workspaces", json={"name": other})
    for route in ("/private/versions/1", "/private/versions/latest", "/private/versions"):
        got = http.get(data_url(other, route))
        assert (got.status_code, got.json()["code"]) == (404, "data_not_found")


def test_a_version_a_model_uses_is_not_deleted_unless_forced(
    http: httpx.Client, ws: str, server: RunningServer
) -> None:
    create(http, ws, "train", path=folder(http, ws, {"a.csv": CSV}))
    made = http.post(
        f"/api/v1/workspaces/{ws}/models/clf/versions",
        json={
            "path": model_upload(http, ws, {"model.pkl": b"not really a pickle"}),
            "training_data": ["azureml:train:1"],
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["training_data"] == ["azureml:train:1"]

    refused = http.delete(data_url(ws, "/train/versions/1"))
    assert (refused.status_code, refused.json()["code"]) == (409, "data_version_in_use")
    assert "model clf:1" in refused.json()["detail"]
    assert http.delete(data_url(ws, "/train/versions/1"), params={"force": True}).status_code == 204
    after = http.get(f"/api/v1/workspaces/{ws}/models/clf/versions/1").json()
    assert after["training_data"] == []
    gone = http.get(data_url(ws, "/train/versions/1"))
    assert (gone.status_code, gone.json()["code"]) == (404, "data_version_not_found")


# --- previews --------------------------------------------------------------------------------


def mltable(http: httpx.Client, ws: str, name: str, files: dict[str, bytes], table: str) -> None:
    made = create(
        http, ws, name, type="mltable", path=folder(http, ws, {**files, "MLTable": table.encode()})
    )
    assert made.status_code == 201, made.text


def preview(http: httpx.Client, ws: str, name: str, **params: Any) -> dict[str, Any]:
    got = http.get(data_url(ws, f"/{name}/versions/latest/preview"), params=params)
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def test_csv_preview_applies_skip_take_keep_and_drop(http: httpx.Client, ws: str) -> None:
    mltable(
        http,
        ws,
        "people",
        {"people.csv": CSV},
        """
type: mltable
paths:
  - file: ./people.csv
transformations:
  - read_delimited:
      delimiter: ","
      header: all_files_same_headers
  - skip: 1
  - take: 3
  - keep_columns: [name, age, city]
  - drop_columns: city
""",
    )
    shown = preview(http, ws, "people")
    assert shown["columns"] == [
        {"name": "name", "type": "string"},
        {"name": "age", "type": "int64"},
    ]
    assert shown["rows"] == [["bob", 42], ["cid", 27], ["dan", 55]]
    assert preview(http, ws, "people", rows=2)["rows"] == [["bob", 42], ["cid", 27]]


def test_parquet_preview_reads_row_groups(http: httpx.Client, ws: str) -> None:
    table = pa.table(
        {"id": list(range(10)), "score": [i / 2 for i in range(10)], "tag": list("abcdefghij")}
    )
    mltable(
        http,
        ws,
        "scores",
        {
            "part-0.parquet": parquet_bytes(table.slice(0, 5)),
            "part-1.parquet": parquet_bytes(table.slice(5)),
        },
        """
paths:
  - pattern: ./*.parquet
transformations:
  - read_parquet: {}
  - skip: 3
  - take: 4
  - drop_columns: [score]
""",
    )
    shown = preview(http, ws, "scores")
    assert [c["name"] for c in shown["columns"]] == ["id", "tag"]
    assert shown["rows"] == [[3, "d"], [4, "e"], [5, "f"], [6, "g"]]
    assert shown["files"] == ["part-0.parquet", "part-1.parquet"]


def test_json_lines_preview(http: httpx.Client, ws: str) -> None:
    lines = b"".join(
        json.dumps({"x": i, "y": f"v{i}", "z": None}).encode() + b"\n" for i in range(6)
    )
    mltable(
        http,
        ws,
        "events",
        {"logs/a.jsonl": lines, "logs/b.jsonl": b'{"x": 99, "y": "last"}\nnot json\n'},
        """
paths:
  - folder: ./logs
transformations:
  - read_json_lines: {invalid_lines: drop}
  - skip: 4
  - keep_columns: [y, x]
""",
    )
    shown = preview(http, ws, "events")
    assert [c["name"] for c in shown["columns"]] == ["y", "x"]
    assert shown["rows"] == [["v4", 4], ["v5", 5], ["last", 99]]


def test_a_uri_file_previews_by_extension(http: httpx.Client, ws: str) -> None:
    base = folder(http, ws, {"people.csv": CSV, "notes.bin": b"\x00\x01"})
    create(http, ws, "people-file", path=f"{base}/people.csv", type="uri_file")
    shown = preview(http, ws, "people-file", rows=1)
    assert shown["rows"] == [["ann", 31, "oslo"]]
    create(http, ws, "blob", path=f"{base}/notes.bin", type="uri_file")
    refused = http.get(data_url(ws, "/blob/versions/1/preview"))
    assert (refused.status_code, refused.json()["code"]) == (400, "preview_unsupported")
    create(http, ws, "plain-folder", path=base)
    refused = http.get(data_url(ws, "/plain-folder/versions/1/preview"))
    assert (refused.status_code, refused.json()["code"]) == (400, "preview_unsupported")
    for rows in (0, 1001):
        got = http.get(data_url(ws, "/people-file/versions/1/preview"), params={"rows": rows})
        assert (got.status_code, got.json()["field"]) == (400, "rows")


def test_preview_errors_name_the_transformation(http: httpx.Client, ws: str) -> None:
    mltable(
        http,
        ws,
        "typo",
        {"p.csv": CSV},
        "paths:\n  - file: ./p.csv\n"
        "transformations:\n  - read_delimited: {}\n  - keep_columns: [nme]\n",
    )
    got = http.get(data_url(ws, "/typo/versions/1/preview"))
    assert got.status_code == 400
    assert (got.json()["code"], got.json()["field"]) == (
        "unknown_column",
        "MLTable.transformations.1.keep_columns",
    )
    mltable(
        http,
        ws,
        "broken-csv",
        {"p.csv": b"a,b\n1,2\n3\n"},
        "paths:\n  - file: ./p.csv\n",
    )
    got = http.get(data_url(ws, "/broken-csv/versions/1/preview"))
    assert (got.status_code, got.json()["code"]) == (400, "unreadable_data")


@pytest.mark.parametrize(
    ("table", "field", "code"),
    [
        (
            "paths: [{file: ./p.csv}]\ntransformations: [{filter: 'col(\"a\") > 1'}]",
            "MLTable.transformations.0",
            "unsupported_transformation",
        ),
        ("paths: []", "MLTable.paths", "invalid_mltable"),
        ("paths: [{file: ./p.csv}\n", "MLTable", "invalid_descriptor"),
        ("a: &a [*a, *a]\n", "MLTable", "invalid_descriptor"),
    ],
)
def test_bad_mltable_files_are_refused_at_create(
    http: httpx.Client, ws: str, table: str, field: str, code: str
) -> None:
    path = folder(http, ws, {"p.csv": CSV, "MLTable": table.encode()})
    got = create(http, ws, "bad-table", type="mltable", path=path)
    assert got.status_code == 400, got.text
    assert got.json()["code"] == code
    assert got.json()["field"] == field


def test_preview_paths_cannot_leave_the_table(http: httpx.Client, ws: str) -> None:
    path = folder(http, ws, {"p.csv": CSV, "MLTable": b"paths: [{file: ../../../etc/passwd}]\n"})
    got = create(http, ws, "escape", type="mltable", path=path)
    assert got.status_code == 201  # the file is only read when previewed
    shown = http.get(data_url(ws, "/escape/versions/1/preview"))
    assert (shown.status_code, shown.json()["code"]) == (400, "invalid_path")


def test_concurrent_registrations_get_distinct_versions(
    server: RunningServer, http: httpx.Client, ws: str
) -> None:
    path = folder(http, ws, {"a.csv": CSV})

    def register(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as own:
            return create(own, ws, "busy", path=path)

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(register, range(8)))
    assert [a.status_code for a in answers] == [201] * 8, [a.text for a in answers]
    assert sorted(int(a.json()["version"]) for a in answers) == list(range(1, 9))


def test_an_mltable_may_point_at_files_elsewhere_in_a_datastore(
    http: httpx.Client, ws: str
) -> None:
    elsewhere = folder(http, ws, {"exports/jan.csv": CSV, "exports/readme.txt": b"notes"})
    mltable(
        http,
        ws,
        "remote",
        {},
        f"paths:\n  - pattern: {elsewhere}/exports/*.csv\n"
        "transformations:\n  - read_delimited: {}\n  - take: 1\n",
    )
    shown = preview(http, ws, "remote")
    assert shown["rows"] == [["ann", 31, "oslo"]]
    assert shown["files"] == [f"{elsewhere}/exports/jan.csv"]
    mltable(http, ws, "lake", {}, "paths:\n  - folder: azureml://datastores/lake/paths/x\n")
    got = http.get(data_url(ws, "/lake/versions/1/preview"))
    assert (got.status_code, got.json()["code"]) == (404, "datastore_not_found")
    mltable(http, ws, "web", {}, "paths:\n  - file: https://example.invalid/x.csv\n")
    got = http.get(data_url(ws, "/web/versions/1/preview"))
    assert (got.status_code, got.json()["code"]) == (400, "preview_unsupported")


def test_a_version_a_job_took_as_input_is_not_deleted_unless_forced(
    http: httpx.Client, ws: str, server: RunningServer
) -> None:
    create(http, ws, "inputs", path=folder(http, ws, {"a.csv": CSV}))
    run = http.post(f"/api/v1/workspaces/{ws}/runs", json={})
    assert run.status_code == 201, run.text
    job = unique("job")
    with server.db.write() as session:
        workspace = session.scalars(select(WorkspaceRow).where(WorkspaceRow.name == ws)).one()
        admin = session.scalars(select(UserRow).where(UserRow.name == "admin")).one()
        # What submitting a job with `inputs: {d: azureml:inputs:1}` records (its lineage).
        session.add(
            JobSubmissionRow(
                job_id=run.json()["id"],
                workspace_id=workspace.id,
                name=job,
                compute="local",
                created_by=admin.id,
            )
        )
        session.flush()
        session.add(
            JobAssetRow(
                job_id=run.json()["id"],
                direction="input",
                kind="data",
                name="inputs",
                version="1",
                workspace_id=workspace.id,
            )
        )

    refused = http.delete(data_url(ws, "/inputs/versions/1"))
    assert (refused.status_code, refused.json()["code"]) == (409, "data_version_in_use")
    assert f"job {job}" in refused.json()["detail"]
    assert (
        http.delete(data_url(ws, "/inputs/versions/1"), params={"force": True}).status_code == 204
    )
