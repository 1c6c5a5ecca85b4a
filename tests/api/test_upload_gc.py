"""Removing unfinished and unused uploads: ``shipyard admin gc-uploads`` as a real process,
the collector itself, and the server's own periodic sweep; folders and an S3 bucket on a real
SeaweedFS server. Uploads are aged by setting their times in the database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from shipyard.api.app import build_services
from shipyard.services.upload_gc import UploadCollector, UploadUsers, in_use
from shipyard.store.base import utcnow
from shipyard.store.components import ComponentVersionRow
from shipyard.store.endpoints import OnlineDeploymentRow, OnlineEndpointRow
from shipyard.store.jobs import JobSubmissionRow
from shipyard.store.logged_models import LoggedModelRow
from shipyard.store.uploads import ContentUploadRow
from shipyard.store.users import UserRow
from shipyard.store.workspaces import WorkspaceRow
from tests.api.test_uploads import manifest, upload
from tests.conftest import RunningServer, start_server, unique
from tests.s3server import S3Server

OLD = 48.0  # hours: past the default of 24


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


@pytest.fixture(scope="module")
def collector(server: RunningServer) -> UploadCollector:
    """The collector the app factory builds, on the server's database."""
    return build_services(server.settings, server.db).upload_gc


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.auth, timeout=60) as made:
        yield made


@pytest.fixture
def ws(http: httpx.Client) -> str:
    name = unique()
    assert http.post("/api/v1/workspaces", json={"name": name}).status_code == 201
    return name


# -- helpers -------------------------------------------------------------------------------


def begin(
    http: httpx.Client, ws: str, files: dict[str, bytes], *send: str, area: str = "data"
) -> tuple[str, dict[str, Any]]:
    """Begin an upload and send only the files named in ``send``: (digest, begin answer)."""
    digest, body = manifest(files)
    root = f"/api/v1/workspaces/{ws}/{area}/artifacts/{digest}"
    begun = http.put(root, json=body)
    assert begun.status_code == 200, begun.text
    for path in send:
        assert http.put(f"{root}/{path}", content=files[path]).status_code == 201
    return digest, begun.json()


def register(http: httpx.Client, ws: str, name: str, digest: str, datastore: str = "") -> None:
    store = datastore or "workspaceblobstore"
    body = {
        "type": "uri_folder",
        "path": f"azureml://datastores/{store}/paths/LocalUpload/{digest}",
    }
    made = http.post(f"/api/v1/workspaces/{ws}/data/{name}/versions", json=body)
    assert made.status_code == 201, made.text


def rows(server: RunningServer, ws: str, digest: str) -> list[ContentUploadRow]:
    with server.db.read() as session:
        query = (
            select(ContentUploadRow)
            .join(WorkspaceRow, WorkspaceRow.id == ContentUploadRow.workspace_id)
            .where(WorkspaceRow.name == ws, ContentUploadRow.digest == digest)
        )
        return list(session.scalars(query))


def age(server: RunningServer, ws: str, digest: str, hours: float = OLD) -> None:
    """Make the upload look begun (and, if committed, committed) ``hours`` ago."""
    when = utcnow() - timedelta(hours=hours)
    ids = [row.id for row in rows(server, ws, digest)]
    assert ids, "no such upload"
    with server.db.write() as session:
        session.execute(
            update(ContentUploadRow).where(ContentUploadRow.id.in_(ids)).values(created_at=when)
        )
        session.execute(
            update(ContentUploadRow)
            .where(ContentUploadRow.id.in_(ids), ContentUploadRow.committed_at.is_not(None))
            .values(committed_at=when)
        )


def own_storage(http: httpx.Client, ws: str) -> Path:
    storage = http.get(f"/api/v1/workspaces/{ws}").json()["storage"]
    return Path(storage["uri"]) / storage["prefix"]


def backdate_files(folder: Path, hours: float = OLD) -> None:
    """Files untouched for ``hours`` (the collector spares folders written to recently)."""
    stamp = time.time() - hours * 3600
    for path in folder.rglob("*"):
        os.utime(path, (stamp, stamp))


def local_datastore(http: httpx.Client, ws: str, roots: Path, name: str, **extra: Any) -> Path:
    folder = roots / unique("folder")
    folder.mkdir()
    spec = {"name": name, "type": "local", "path": str(folder), **extra}
    made = http.post(f"/api/v1/workspaces/{ws}/datastores", json=spec)
    assert made.status_code == 201, made.text
    return folder


def set_default(http: httpx.Client, ws: str, name: str) -> None:
    done = http.post(f"/api/v1/workspaces/{ws}/datastores/{name}/set-default")
    assert done.status_code == 200, done.text


def gc_uploads(server: RunningServer, *extra: str) -> subprocess.CompletedProcess[str]:
    store = ["--data-dir", str(server.settings.data_dir), "--db-url", server.settings.database_url]
    return subprocess.run(
        [sys.executable, "-m", "shipyard", "admin", "gc-uploads", *store, *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )


# -- the command, in a real process --------------------------------------------------------


def test_gc_uploads_removes_abandoned_and_unused_uploads_and_nothing_else(
    server: RunningServer, http: httpx.Client, ws: str
) -> None:
    own = own_storage(http, ws)
    abandoned, _ = begin(http, ws, {"a.txt": b"half", "b.txt": b"never sent"}, "a.txt")
    fresh, _ = begin(http, ws, {"c.txt": b"still coming", "d.txt": b"soon"}, "c.txt")
    used = upload(http, ws, {"e.csv": b"e\n1\n"})
    register(http, ws, "used", used)
    unused = upload(http, ws, {"f.csv": b"f\n1\n"})
    dropped = upload(http, ws, {"g.csv": b"g\n1\n"})
    register(http, ws, "dropped", dropped)
    assert http.delete(f"/api/v1/workspaces/{ws}/data/dropped/versions/1").status_code == 204
    for digest in (abandoned, used, unused, dropped):
        age(server, ws, digest)
    backdate_files(own / "LocalUpload")
    assert (own / "LocalUpload" / abandoned / "a.txt").is_file()

    done = gc_uploads(server)
    assert done.returncode == 0, done.stderr
    assert f"removed abandoned data upload {abandoned[:12]} of {ws}" in done.stdout
    assert f"removed unused data upload {unused[:12]} of {ws}" in done.stdout
    assert f"removed unused data upload {dropped[:12]} of {ws}" in done.stdout
    for gone in (abandoned, unused, dropped):
        assert rows(server, ws, gone) == []
        assert not (own / "LocalUpload" / gone).exists()
    for kept in (used, fresh):
        assert len(rows(server, ws, kept)) == 1
    assert (own / "LocalUpload" / fresh / "c.txt").read_bytes() == b"still coming"
    assert (own / "LocalUpload" / used / "e.csv").read_bytes() == b"e\n1\n"
    shown = http.get(f"/api/v1/workspaces/{ws}/data/used/versions/1/files/e.csv")
    assert shown.content == b"e\n1\n"
    # The fresh upload is finished later as if nothing happened.
    assert http.put(
        f"/api/v1/workspaces/{ws}/data/artifacts/{fresh}/d.txt", content=b"soon"
    ).status_code == (201)
    assert http.post(f"/api/v1/workspaces/{ws}/data/artifacts/{fresh}/commit").status_code == 200


def test_older_than_overrides_the_setting(
    server: RunningServer, http: httpx.Client, ws: str
) -> None:
    digest, _ = begin(http, ws, {"x.txt": b"x", "y.txt": b"y"}, "x.txt")
    age(server, ws, digest, hours=30)
    backdate_files(own_storage(http, ws) / "LocalUpload" / digest, hours=30)
    spared = gc_uploads(server, "--older-than", "48")
    assert spared.returncode == 0, spared.stderr
    assert digest[:12] not in spared.stdout
    assert len(rows(server, ws, digest)) == 1
    removed = gc_uploads(server, "--older-than", "29.5")
    assert removed.returncode == 0, removed.stderr
    assert f"removed abandoned data upload {digest[:12]}" in removed.stdout
    assert rows(server, ws, digest) == []
    refused = gc_uploads(server, "--older-than", "0")
    assert refused.returncode == 2
    assert "--older-than" in refused.stderr


# -- the collector ---------------------------------------------------------------------------


def test_an_upload_being_written_or_begun_again_is_spared(
    server: RunningServer, collector: UploadCollector, http: httpx.Client, ws: str
) -> None:
    files = {"big.bin": b"first part", "rest.bin": b"second part"}
    digest, _ = begin(http, ws, files, "big.bin")
    age(server, ws, digest)
    # A file arrived just now: the upload is in progress, whatever its row says.
    sweep = collector.collect()
    assert sweep.spared["busy"] >= 1
    assert len(rows(server, ws, digest)) == 1
    folder = own_storage(http, ws) / "LocalUpload" / digest
    backdate_files(folder)
    # A client resuming it begins it again: that makes it recent.
    begin(http, ws, files)
    collector.collect()
    assert len(rows(server, ws, digest)) == 1
    assert (folder / "big.bin").is_file()
    age(server, ws, digest)
    assert [r.digest for r in collector.collect().removed if r.digest == digest] == [digest]
    assert not folder.exists()


def test_model_uploads_go_with_their_logged_model_once_no_version_uses_them(
    server: RunningServer, collector: UploadCollector, http: httpx.Client, ws: str, tmp_path: Path
) -> None:
    _, pending = begin(http, ws, {"weights.bin": b"w" * 100}, area="models")
    pending_model = pending["logged_model_id"]
    age(server, ws, pending["digest"])
    with server.client() as client:
        weights = tmp_path / "model"
        weights.mkdir()
        (weights / "model.bin").write_bytes(os.urandom(2000))
        made = client.workspace(ws).models.create("churn", weights)
    model_id = made.logged_model_id
    assert model_id is not None
    folder = own_storage(http, ws) / "models" / model_id / "artifacts"
    model_digest = next(r for r in _all_rows(server, ws) if r.logged_model_id == model_id).digest
    age(server, ws, model_digest)
    backdate_files(folder)

    sweep = collector.collect()
    removed = {r.digest: r for r in sweep.removed}
    assert pending["digest"] in removed
    assert model_digest not in removed
    assert removed[pending["digest"]].purpose == "model"
    with server.db.read() as session:
        assert session.get(LoggedModelRow, pending_model) is None  # never finished: gone
    assert (folder / "model.bin").is_file()

    assert http.delete(f"/api/v1/workspaces/{ws}/models/churn/versions/1").status_code == 204
    assert model_digest in {r.digest for r in collector.collect().removed}
    assert not folder.exists()
    assert rows(server, ws, model_digest) == []
    with server.db.read() as session:
        logged = session.get(LoggedModelRow, model_id)
        assert logged is not None
        assert logged.lifecycle_stage == "deleted"


def test_code_snapshots_stay_while_a_job_names_them_and_shared_files_stay_with_them(
    server: RunningServer, collector: UploadCollector, http: httpx.Client, ws: str
) -> None:
    files = {"train.py": b"print('hi')\n"}
    digest = upload(http, ws, files)  # data, in LocalUpload/<digest>
    folder = own_storage(http, ws) / "LocalUpload" / digest
    run = http.post(f"/api/v1/workspaces/{ws}/runs", json={})
    assert run.status_code == 201, run.text
    with server.db.write() as session:
        workspace = session.scalars(select(WorkspaceRow).where(WorkspaceRow.name == ws)).one()
        admin = session.scalars(select(UserRow).where(UserRow.name == "admin")).one()
        data_row = rows(server, ws, digest)[0]
        # What the job submission code writes: a code upload of the same content, and a job
        # that names it.
        session.add(
            ContentUploadRow(
                workspace_id=workspace.id,
                purpose="code",
                digest=digest,
                folder=data_row.folder,
                manifest=data_row.manifest,
                file_count=1,
                size=len(files["train.py"]),
                committed_at=utcnow(),
                created_by=admin.id,
            )
        )
        session.add(
            JobSubmissionRow(
                job_id=run.json()["id"],
                workspace_id=workspace.id,
                name=unique("job"),
                compute="local",
                code_digest=digest,
                created_by=admin.id,
            )
        )
    age(server, ws, digest)
    backdate_files(folder)

    removed = [r for r in collector.collect().removed if r.digest == digest]
    assert [(r.purpose, r.files_removed) for r in removed] == [("data", False)]
    assert [r.purpose for r in rows(server, ws, digest)] == ["code"]
    assert (folder / "train.py").read_bytes() == files["train.py"]

    with server.db.write() as session:
        session.delete(session.get_one(JobSubmissionRow, run.json()["id"]))
    removed = [r for r in collector.collect().removed if r.digest == digest]
    assert [(r.purpose, r.files_removed) for r in removed] == [("code", True)]
    assert not folder.exists()


def test_code_snapshots_stay_while_a_component_version_names_them(
    server: RunningServer, collector: UploadCollector, http: httpx.Client, ws: str
) -> None:
    files = {"score.py": b"print('score')\n"}
    digest, _ = begin(http, ws, files, "score.py", area="code")
    done = http.post(f"/api/v1/workspaces/{ws}/code/artifacts/{digest}/commit")
    assert done.status_code == 200, done.text
    body = {"command": "python score.py", "code": f"sha256:{digest}",
            "environment": "azureml:shipyard-minimal:1"}  # fmt: skip
    made = http.post(f"/api/v1/workspaces/{ws}/components/score/versions", json=body)
    assert made.status_code == 201, made.text
    age(server, ws, digest)
    backdate_files(own_storage(http, ws) / "LocalUpload" / digest)

    assert [r for r in collector.collect().removed if r.digest == digest] == []
    assert [r.purpose for r in rows(server, ws, digest)] == ["code"]

    with server.db.write() as session:
        session.query(ComponentVersionRow).filter_by(code_digest=digest).delete()
    removed = [r for r in collector.collect().removed if r.digest == digest]
    assert [(r.purpose, r.files_removed) for r in removed] == [("code", True)]


def test_code_snapshots_stay_while_an_online_deployment_names_them(
    server: RunningServer, collector: UploadCollector, http: httpx.Client, ws: str
) -> None:
    files = {"score.py": b"def init(): pass\ndef run(raw): return raw\n"}
    digest, _ = begin(http, ws, files, "score.py", area="code")
    done = http.post(f"/api/v1/workspaces/{ws}/code/artifacts/{digest}/commit")
    assert done.status_code == 200, done.text
    with server.db.write() as session:
        workspace = session.scalars(select(WorkspaceRow).where(WorkspaceRow.name == ws)).one()
        endpoint = OnlineEndpointRow(workspace_id=workspace.id, name="ep", created_by="admin")
        session.add(endpoint)
        session.flush()
        # What creating a deployment with scoring code writes (the model and environment
        # do not matter to the collector).
        session.add(
            OnlineDeploymentRow(
                endpoint_id=endpoint.id, name="blue", code_digest=digest, created_by="admin"
            )
        )
    age(server, ws, digest)
    backdate_files(own_storage(http, ws) / "LocalUpload" / digest)

    assert [r for r in collector.collect().removed if r.digest == digest] == []
    assert [r.purpose for r in rows(server, ws, digest)] == ["code"]

    with server.db.write() as session:
        session.query(OnlineDeploymentRow).filter_by(code_digest=digest).delete()
    removed = [r for r in collector.collect().removed if r.digest == digest]
    assert [(r.purpose, r.files_removed) for r in removed] == [("code", True)]


def test_soft_deleted_workspaces_and_read_only_datastores_are_left_alone(
    server: RunningServer, collector: UploadCollector, http: httpx.Client, roots: Path
) -> None:
    ws = unique()
    assert http.post("/api/v1/workspaces", json={"name": ws}).status_code == 201
    frozen = local_datastore(http, ws, roots, "frozen")
    set_default(http, ws, "frozen")
    digest, _ = begin(http, ws, {"a.txt": b"a", "b.txt": b"b"}, "a.txt")
    age(server, ws, digest)
    backdate_files(frozen)
    patched = http.patch(f"/api/v1/workspaces/{ws}/datastores/frozen", json={"read_only": True})
    assert patched.status_code == 200, patched.text
    assert collector.collect().spared["read_only"] >= 1
    assert (frozen / "LocalUpload" / digest / "a.txt").is_file()

    http.patch(f"/api/v1/workspaces/{ws}/datastores/frozen", json={"read_only": False})
    assert http.delete(f"/api/v1/workspaces/{ws}").status_code == 204  # soft delete
    collector.collect()
    assert (frozen / "LocalUpload" / digest / "a.txt").is_file()
    assert http.post(f"/api/v1/workspaces/{ws}/recover").status_code == 200
    assert digest in {r.digest for r in collector.collect().removed}
    assert not (frozen / "LocalUpload" / digest).exists()


def test_an_upload_whose_datastore_was_deleted_loses_its_row(
    server: RunningServer, collector: UploadCollector, http: httpx.Client, ws: str, roots: Path
) -> None:
    gone = local_datastore(http, ws, roots, "gone")
    set_default(http, ws, "gone")
    digest, _ = begin(http, ws, {"a.txt": b"a", "b.txt": b"b"}, "a.txt")
    assert http.delete(f"/api/v1/workspaces/{ws}/datastores/gone").status_code == 204
    age(server, ws, digest)
    removed = [r for r in collector.collect().removed if r.digest == digest]
    assert [(r.datastore, r.files_removed) for r in removed] == [("gone", False)]
    assert rows(server, ws, digest) == []
    # Files of a datastore the workspace no longer has are not the server's to delete.
    assert (gone / "LocalUpload" / digest / "a.txt").is_file()


def test_a_version_in_another_workspace_on_the_same_folder_keeps_an_upload(
    server: RunningServer, collector: UploadCollector, http: httpx.Client, ws: str, roots: Path
) -> None:
    shared = local_datastore(http, ws, roots, "shared")
    set_default(http, ws, "shared")
    digest = upload(http, ws, {"p.csv": b"p\n1\n"})
    other = unique()
    assert http.post("/api/v1/workspaces", json={"name": other}).status_code == 201
    spec = {"name": "same_place", "type": "local", "path": str(shared)}
    assert http.post(f"/api/v1/workspaces/{other}/datastores", json=spec).status_code == 201
    register(http, other, "borrowed", digest, datastore="same_place")
    age(server, ws, digest)
    backdate_files(shared)
    assert digest not in {r.digest for r in collector.collect().removed}
    assert (shared / "LocalUpload" / digest / "p.csv").is_file()
    assert http.delete(f"/api/v1/workspaces/{other}/data/borrowed/versions/1").status_code == 204
    assert digest in {r.digest for r in collector.collect().removed}
    assert not (shared / "LocalUpload" / digest).exists()


def test_uploads_in_an_s3_datastore(
    server: RunningServer,
    collector: UploadCollector,
    http: httpx.Client,
    ws: str,
    s3_server: S3Server,
) -> None:
    bucket = s3_server.new_bucket("gc")
    spec = {
        "name": "lake",
        "type": "s3",
        "bucket": bucket,
        "prefix": "drop",
        "endpoint_url": s3_server.endpoint_url,
        "region": "us-east-1",
        "credentials": {
            "access_key_id": s3_server.access_key_id,
            "secret_access_key": s3_server.secret_access_key,
        },
    }
    assert http.post(f"/api/v1/workspaces/{ws}/datastores", json=spec).status_code == 201
    set_default(http, ws, "lake")
    abandoned, begun = begin(http, ws, {"a.bin": os.urandom(3000), "b.bin": b"b"}, "a.bin")
    assert begun["uri"] == f"azureml://datastores/lake/paths/LocalUpload/{abandoned}"
    used = upload(http, ws, {"kept.csv": b"k\n1\n", "sub/more.csv": b"m\n2\n"})
    register(http, ws, "kept", used, datastore="lake")
    unused = upload(http, ws, {"loose.csv": b"l\n1\n"})
    fs = s3_server.filesystem()
    assert fs.find(f"{bucket}/drop/LocalUpload/{abandoned}")
    for digest in (abandoned, used, unused):
        age(server, ws, digest)
    # SeaweedFS stamps objects itself: judge "written recently" from a moment after them.
    sweep = collector.collect(older_than=timedelta(seconds=0.001))
    removed = {r.digest: r.reason for r in sweep.removed}
    assert removed.get(abandoned) == "abandoned"
    assert removed.get(unused) == "unused"
    assert used not in removed
    fs.invalidate_cache()
    assert fs.find(f"{bucket}/drop/LocalUpload/{abandoned}") == []
    assert fs.find(f"{bucket}/drop/LocalUpload/{unused}") == []
    assert sorted(fs.find(f"{bucket}/drop/LocalUpload/{used}")) == [
        f"{bucket}/drop/LocalUpload/{used}/kept.csv",
        f"{bucket}/drop/LocalUpload/{used}/sub/more.csv",
    ]
    assert rows(server, ws, abandoned) == []
    assert rows(server, ws, unused) == []
    assert http.get(f"/api/v1/workspaces/{ws}/data/kept/versions/1/files/kept.csv").content == (
        b"k\n1\n"
    )


def test_the_check_before_each_removal_agrees_with_the_sweeps_bulk_check(
    server: RunningServer, http: httpx.Client, ws: str
) -> None:
    """``in_use`` (one upload, just before removing it) and the sweep's bulk check must give
    the same answer for every upload the tests above left, used or not."""
    kept = upload(http, ws, {"k.csv": b"k\n"})
    register(http, ws, "kept-for-check", kept)
    upload(http, ws, {"u.csv": b"u\n"})
    with server.db.read() as session:
        users = UploadUsers.load(session)
        pairs = session.execute(
            select(ContentUploadRow, WorkspaceRow).join(
                WorkspaceRow, WorkspaceRow.id == ContentUploadRow.workspace_id
            )
        ).all()
        answers = [(in_use(session, w, row), users.use(row)) for row, w in pairs]
    assert {bulk for _, bulk in answers} == {True, False}
    assert [single for single, _ in answers] == [bulk for _, bulk in answers]


# -- the server's own sweep --------------------------------------------------------------------


def test_the_server_sweeps_by_itself(tmp_path: Path, database_url: str) -> None:
    settings = {"upload_gc_interval_seconds": 0.2, "upload_abandon_after_hours": 1 / 3600}
    with (
        start_server(tmp_path / "data", database_url, **settings) as running,
        httpx.Client(base_url=running.url, headers=running.auth, timeout=60) as http,
    ):
        ws = unique()
        assert http.post("/api/v1/workspaces", json={"name": ws}).status_code == 201
        used = upload(http, ws, {"kept.csv": b"k\n1\n"})
        register(http, ws, "kept", used)
        abandoned, _ = begin(http, ws, {"a.txt": b"a", "b.txt": b"b"}, "a.txt")
        deadline = time.monotonic() + 30
        while rows(running, ws, abandoned) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rows(running, ws, abandoned) == []
        assert not (own_storage(http, ws) / "LocalUpload" / abandoned).exists()
        assert len(rows(running, ws, used)) == 1
        shown = http.get(f"/api/v1/workspaces/{ws}/data/kept/versions/1/files/kept.csv")
        assert shown.content == b"k\n1\n"


def _all_rows(server: RunningServer, ws: str) -> list[ContentUploadRow]:
    with server.db.read() as session:
        query = (
            select(ContentUploadRow)
            .join(WorkspaceRow, WorkspaceRow.id == ContentUploadRow.workspace_id)
            .where(WorkspaceRow.name == ws)
        )
        return list(session.scalars(query))
