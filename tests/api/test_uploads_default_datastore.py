"""Local files go to the workspace's default datastore, whichever it is: a local folder or an
S3 bucket (a real SeaweedFS server) made the default with ``set-default``. Models stay in the
workspace's own storage; a read-only default refuses uploads; the workspace shows its real
default datastore."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from shipyard.domain.errors import ConflictError
from shipyard.sdk.client import Client
from shipyard.sdk.workspaces import WorkspaceHandle
from shipyard.store.uploads import ContentUploadRow
from shipyard.store.workspaces import WorkspaceRow
from tests.api.test_uploads import manifest, upload
from tests.conftest import RunningServer, start_server, unique
from tests.s3server import S3Server


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("datastore-roots").resolve()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str, roots: Path
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("data")
    with start_server(data, module_database_url, datastore_roots=[str(roots)]) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[Client]:
    with server.client() as made:
        yield made


@pytest.fixture
def ws(client: Client) -> WorkspaceHandle:
    name = unique()
    client.workspaces.create(name)
    return client.workspace(name)


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as made:
        yield made


def local_datastore(ws: WorkspaceHandle, roots: Path, name: str, **extra: object) -> Path:
    folder = roots / unique("folder")
    folder.mkdir()
    ws.datastores.create(name, type="local", path=str(folder), **extra)  # type: ignore[arg-type]
    return folder


def sales(tmp_path: Path) -> Path:
    """The same folder (the same content) however often it is asked for."""
    folder = tmp_path / "sales"
    if folder.exists():
        return folder
    (folder / "2024").mkdir(parents=True)
    (folder / "2024" / "01.csv").write_text("region,units\nnorth,120\nsouth,95\n")
    (folder / "2024" / "02.csv").write_text("region,units\nnorth,80\n")
    (folder / "notes.bin").write_bytes(os.urandom(5000))
    return folder


def files_under(folder: Path) -> dict[str, float]:
    """Every file below ``folder`` with its modification time (a rewrite changes it)."""
    return {
        str(path.relative_to(folder)): path.stat().st_mtime_ns
        for path in folder.rglob("*")
        if path.is_file()
    }


def upload_rows(server: RunningServer, workspace: str, digest: str) -> list[ContentUploadRow]:
    with server.db.read() as session:
        query = (
            select(ContentUploadRow)
            .join(WorkspaceRow, WorkspaceRow.id == ContentUploadRow.workspace_id)
            .where(WorkspaceRow.name == workspace, ContentUploadRow.digest == digest)
        )
        return list(session.scalars(query))


# ----------------------------------------------------------------------------------------
# The workspace shows its default datastore
# ----------------------------------------------------------------------------------------


def test_the_workspace_shows_its_real_default_datastore(
    ws: WorkspaceHandle, client: Client, roots: Path
) -> None:
    assert client.workspaces.get(ws.name).storage.default_datastore == "workspaceblobstore"
    local_datastore(ws, roots, "team_drop")
    assert client.workspaces.get(ws.name).storage.default_datastore == "workspaceblobstore"
    ws.datastores.set_default("team_drop")
    assert client.workspaces.get(ws.name).storage.default_datastore == "team_drop"
    listed = {w.name: w.storage.default_datastore for w in client.workspaces.list()}
    assert listed[ws.name] == "team_drop"
    other = unique()
    client.workspaces.create(other)
    assert client.workspaces.get(other).storage.default_datastore == "workspaceblobstore"
    assert {w.name: w.storage.default_datastore for w in client.workspaces.list()}[other] == (
        "workspaceblobstore"
    )
    updated = client.workspaces.update(ws.name, description="drops")
    assert updated.storage.default_datastore == "team_drop"
    ws.datastores.set_default("workspaceblobstore")
    assert client.workspaces.get(ws.name).storage.default_datastore == "workspaceblobstore"


# ----------------------------------------------------------------------------------------
# Local datastores
# ----------------------------------------------------------------------------------------


def test_data_from_a_local_folder_goes_to_the_default_local_datastore(
    ws: WorkspaceHandle, server: RunningServer, roots: Path, tmp_path: Path
) -> None:
    drop = local_datastore(ws, roots, "drop")
    ws.datastores.set_default("drop")
    made = ws.data.create("sales", sales(tmp_path), type="uri_folder")
    digest = made.content_digest
    assert digest is not None
    assert made.path == f"azureml://datastores/drop/paths/LocalUpload/{digest}"
    assert (made.datastore, made.file_count) == ("drop", 3)
    stored = files_under(drop)
    assert set(stored) == {
        f"LocalUpload/{digest}/2024/01.csv",
        f"LocalUpload/{digest}/2024/02.csv",
        f"LocalUpload/{digest}/notes.bin",
    }
    [row] = upload_rows(server, ws.name, digest)
    assert (row.datastore, row.folder, row.committed_at is not None) == (
        "drop",
        f"LocalUpload/{digest}",
        True,
    )
    # The workspace's own storage got nothing.
    own = Path(server.settings.artifact_root_uri)
    assert not list(own.rglob(f"*{digest}*"))

    again = ws.data.create("sales", sales(tmp_path), type="uri_folder")
    assert (again.version, again.path, again.content_digest) == ("2", made.path, digest)
    assert files_under(drop) == stored  # nothing rewritten, nothing added

    copy = ws.data.download("sales", version="1", download_path=tmp_path / "copy")
    assert (copy / "2024" / "01.csv").read_text() == "region,units\nnorth,120\nsouth,95\n"
    assert [f.path for f in ws.data.files("sales", "2", recursive=True)] == [
        "2024/01.csv",
        "2024/02.csv",
        "notes.bin",
    ]


def test_a_single_file_goes_there_too_and_models_stay_in_the_workspace_storage(
    ws: WorkspaceHandle, server: RunningServer, roots: Path, tmp_path: Path
) -> None:
    drop = local_datastore(ws, roots, "drop")
    ws.datastores.set_default("drop")
    table = tmp_path / "one.csv"
    table.write_text("a,b\n1,2\n")
    made = ws.data.create("one", table, type="uri_file")
    assert made.path == f"azureml://datastores/drop/paths/LocalUpload/{made.content_digest}/one.csv"
    assert ws.data.preview("one").rows == [[1, 2]]

    weights = tmp_path / "model"
    weights.mkdir()
    (weights / "weights.bin").write_bytes(os.urandom(1000))
    model = ws.models.create("churn", weights)
    assert model.path is not None
    assert model.path.startswith("azureml://datastores/workspaceblobstore/paths/models/")
    assert not list(drop.rglob("weights.bin"))
    copy = ws.models.download("churn", download_path=tmp_path / "copy")
    assert (copy / "weights.bin").read_bytes() == (weights / "weights.bin").read_bytes()


def test_a_read_only_default_refuses_uploads_naming_it(
    ws: WorkspaceHandle, http: httpx.Client, roots: Path, tmp_path: Path
) -> None:
    frozen = local_datastore(ws, roots, "frozen", read_only=True)
    ws.datastores.set_default("frozen")
    with pytest.raises(ConflictError) as refused:
        ws.data.create("nope", sales(tmp_path), type="uri_folder")
    assert refused.value.code == "datastore_read_only"
    assert "'frozen'" in refused.value.detail
    digest, body = manifest({"a.txt": b"a"})
    answer = http.put(f"/api/v1/workspaces/{ws.name}/data/artifacts/{digest}", json=body)
    assert (answer.status_code, answer.json()["code"]) == (409, "datastore_read_only")
    assert answer.json()["field"] == "datastore"
    assert files_under(frozen) == {}
    # Models do not go to the default datastore: they are not refused.
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"w")
    assert ws.models.create("still-fine", weights).version == 1
    # Made writable, the same upload goes through.
    ws.datastores.update("frozen", read_only=False)
    made = ws.data.create("nope", sales(tmp_path), type="uri_folder")
    assert made.datastore == "frozen"


def test_after_the_default_changes_the_same_content_is_uploaded_to_the_new_one(
    ws: WorkspaceHandle, server: RunningServer, roots: Path, tmp_path: Path
) -> None:
    first = ws.data.create("moved", sales(tmp_path), type="uri_folder")
    assert first.datastore == "workspaceblobstore"
    drop = local_datastore(ws, roots, "drop")
    ws.datastores.set_default("drop")
    again = ws.data.create("moved", sales(tmp_path), type="uri_folder")
    digest = first.content_digest
    assert (again.datastore, again.content_digest) == ("drop", digest)
    assert again.path == f"azureml://datastores/drop/paths/LocalUpload/{digest}"
    assert len(files_under(drop)) == 3
    # One upload per datastore: both versions keep their own files.
    assert sorted(r.datastore for r in upload_rows(server, ws.name, str(digest))) == [
        "drop",
        "workspaceblobstore",
    ]
    assert [f.path for f in ws.data.files("moved", "1", recursive=True)] == [
        "2024/01.csv",
        "2024/02.csv",
        "notes.bin",
    ]
    stored = files_under(drop)
    third = ws.data.create("moved", sales(tmp_path), type="uri_folder")
    assert (third.version, third.path) == ("3", again.path)
    assert files_under(drop) == stored
    # Back to the workspace's own storage: its copy is found again, nothing is sent.
    ws.datastores.set_default("workspaceblobstore")
    assert ws.data.create("moved", sales(tmp_path), type="uri_folder").path == first.path


def test_an_upload_begun_before_the_default_changed_finishes_where_it_began(
    ws: WorkspaceHandle, server: RunningServer, http: httpx.Client, roots: Path
) -> None:
    drop = local_datastore(ws, roots, "drop")
    files = {"a.txt": b"alpha", "b.txt": b"beta"}
    digest, body = manifest(files)
    root = f"/api/v1/workspaces/{ws.name}/data/artifacts/{digest}"
    begun = http.put(root, json=body).json()
    assert begun["uri"] == f"azureml://datastores/workspaceblobstore/paths/LocalUpload/{digest}"
    assert http.put(f"{root}/a.txt", content=files["a.txt"]).status_code == 201
    ws.datastores.set_default("drop")
    assert http.put(f"{root}/b.txt", content=files["b.txt"]).status_code == 201
    done = http.post(f"{root}/commit").json()
    assert (done["committed"], done["uri"]) == (True, begun["uri"])
    assert files_under(drop) == {}
    # Beginning it again now is a new upload, to the new default.
    moved = http.put(root, json=body).json()
    assert moved["uri"] == f"azureml://datastores/drop/paths/LocalUpload/{digest}"
    assert (moved["committed"], moved["missing"]) == (False, ["a.txt", "b.txt"])
    for path, content in files.items():
        assert http.put(f"{root}/{path}", content=content).status_code == 201
    assert http.post(f"{root}/commit").json()["uri"] == moved["uri"]
    assert (drop / "LocalUpload" / digest / "b.txt").read_bytes() == b"beta"


def test_files_deleted_from_a_datastore_behind_its_back_are_sent_again(
    ws: WorkspaceHandle, roots: Path, tmp_path: Path
) -> None:
    drop = local_datastore(ws, roots, "drop")
    ws.datastores.set_default("drop")
    made = ws.data.create("lost", sales(tmp_path), type="uri_folder")
    lost = drop / "LocalUpload" / str(made.content_digest) / "2024" / "02.csv"
    lost.unlink()  # a person, or a bucket's lifecycle rule
    again = ws.data.create("lost", sales(tmp_path), type="uri_folder")
    assert again.path == made.path
    assert lost.read_text() == "region,units\nnorth,80\n"
    assert len(files_under(drop)) == 3


def test_only_committed_uploads_of_the_datastore_are_registered(
    ws: WorkspaceHandle, http: httpx.Client, roots: Path
) -> None:
    drop = local_datastore(ws, roots, "drop")
    ws.datastores.set_default("drop")
    files = {"x.csv": b"x\n1\n", "y.csv": b"y\n2\n"}
    digest, body = manifest(files)
    root = f"/api/v1/workspaces/{ws.name}/data/artifacts/{digest}"
    assert http.put(root, json=body).status_code == 200
    assert http.put(f"{root}/x.csv", content=files["x.csv"]).status_code == 201
    versions = f"/api/v1/workspaces/{ws.name}/data/half/versions"
    uri = f"azureml://datastores/drop/paths/LocalUpload/{digest}"
    early = http.post(versions, json={"type": "uri_folder", "path": uri})
    assert (early.status_code, early.json()["code"]) == (409, "upload_incomplete")
    assert http.put(f"{root}/y.csv", content=files["y.csv"]).status_code == 201
    assert http.post(f"{root}/commit").status_code == 200
    made = http.post(versions, json={"type": "uri_folder", "path": uri})
    assert made.status_code == 201, made.text
    assert (made.json()["content_digest"], made.json()["file_count"]) == (digest, 2)
    # Files someone else put in the datastore's LocalUpload folder are data like any other.
    foreign = drop / "LocalUpload" / ("f" * 64)
    foreign.mkdir(parents=True)
    (foreign / "z.csv").write_text("z\n3\n")
    other = http.post(
        f"/api/v1/workspaces/{ws.name}/data/foreign/versions",
        json={
            "type": "uri_folder",
            "path": f"azureml://datastores/drop/paths/LocalUpload/{'f' * 64}",
        },
    )
    assert other.status_code == 201, other.text
    assert other.json()["content_digest"] is None
    # In the workspace's own storage, LocalUpload holds uploads only.
    missing = http.post(
        f"/api/v1/workspaces/{ws.name}/data/foreign/versions",
        json={
            "type": "uri_folder",
            "path": f"azureml://datastores/workspaceblobstore/paths/LocalUpload/{digest}",
        },
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "upload_not_found")


def test_uploads_of_one_workspace_are_not_anothers(
    ws: WorkspaceHandle, client: Client, http: httpx.Client, roots: Path
) -> None:
    local_datastore(ws, roots, "drop")
    ws.datastores.set_default("drop")
    digest = upload(http, ws.name, {"secret.csv": b"s\n1\n"})
    other = unique()
    client.workspaces.create(other)
    peek = http.post(f"/api/v1/workspaces/{other}/data/artifacts/{digest}/commit")
    assert (peek.status_code, peek.json()["code"]) == (404, "upload_not_found")
    taken = http.post(
        f"/api/v1/workspaces/{other}/data/stolen/versions",
        json={
            "type": "uri_folder",
            "path": f"azureml://datastores/drop/paths/LocalUpload/{digest}",
        },
    )
    assert (taken.status_code, taken.json()["code"]) == (404, "datastore_not_found")


# ----------------------------------------------------------------------------------------
# An S3 datastore on a real SeaweedFS server
# ----------------------------------------------------------------------------------------


def test_data_goes_to_a_default_s3_datastore_once(
    ws: WorkspaceHandle, server: RunningServer, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket = s3_server.new_bucket("drop")
    ws.datastores.create(
        "lake",
        type="s3",
        bucket=bucket,
        prefix="teams/churn",
        endpoint_url=s3_server.endpoint_url,
        region="us-east-1",
        credentials={
            "access_key_id": s3_server.access_key_id,
            "secret_access_key": s3_server.secret_access_key,
        },
    )
    ws.datastores.set_default("lake")
    folder = sales(tmp_path)
    (folder / "MLTable").write_text("paths:\n  - pattern: ./2024/*.csv\n")
    made = ws.data.create("sales", folder, type="mltable")
    digest = made.content_digest
    assert made.path == f"azureml://datastores/lake/paths/LocalUpload/{digest}"
    fs = s3_server.filesystem()
    objects = sorted(fs.find(bucket))
    assert objects == [
        f"{bucket}/teams/churn/LocalUpload/{digest}/{name}"
        for name in ("2024/01.csv", "2024/02.csv", "MLTable", "notes.bin")
    ]
    stamps = {key: fs.info(key)["LastModified"] for key in objects}
    assert [r.datastore for r in upload_rows(server, ws.name, str(digest))] == ["lake"]

    again = ws.data.create("sales", folder, type="mltable")
    assert (again.version, again.path) == ("2", made.path)
    fs.invalidate_cache()
    assert sorted(fs.find(bucket)) == objects
    assert {key: fs.info(key)["LastModified"] for key in objects} == stamps

    assert ws.data.preview("sales").rows == [["north", 120], ["south", 95], ["north", 80]]
    copy = ws.data.download("sales", version="2", download_path=tmp_path / "copy")
    assert (copy / "notes.bin").read_bytes() == (folder / "notes.bin").read_bytes()
