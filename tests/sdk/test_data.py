"""``ws.data`` and ``ws.models`` against a real server: local folders uploaded by content,
versions, downloads, previews, and what the SDK refuses before sending anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.domain.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.sdk.client import Client
from shipyard.sdk.workspaces import WorkspaceHandle
from tests.conftest import RunningServer, unique

CSV = "city,people\noslo,700000\nrome,2800000\nlima,9700000\n"


class Recorder:
    def __init__(self) -> None:
        self.total = -1
        self.files = -1
        self.sent = 0

    def start(self, total_bytes: int, files: int) -> None:
        self.total, self.files = total_bytes, files

    def advance(self, nbytes: int) -> None:
        self.sent += nbytes


@pytest.fixture
def ws(admin: Client) -> WorkspaceHandle:
    name = unique()
    admin.workspaces.create(name)
    return admin.workspace(name)


def stored(server: RunningServer) -> list[Path]:
    return sorted(p for p in Path(server.settings.artifact_root_uri).rglob("*") if p.is_file())


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def csv_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "cities"
    (folder / "more").mkdir(parents=True)
    (folder / "cities.csv").write_text(CSV)
    (folder / "more" / "notes.txt").write_text("population figures")
    return folder


def test_a_folder_is_uploaded_once_and_downloaded_whole(
    ws: WorkspaceHandle, server: RunningServer, tmp_path: Path
) -> None:
    folder = csv_folder(tmp_path)
    first_progress = Recorder()
    first = ws.data.create("cities", folder, description="big cities", progress=first_progress)
    assert (first.version, first.type, first.file_count) == ("1", "uri_folder", 2)
    assert first.path.startswith("azureml://datastores/workspaceblobstore/paths/LocalUpload/")
    assert first_progress.files == 2
    assert first_progress.sent == first_progress.total == len(CSV) + len("population figures")

    before = stored(server)
    again_progress = Recorder()
    second = ws.data.create("cities", folder, progress=again_progress)
    assert second.version == "2"
    assert second.path == first.path
    assert (again_progress.files, again_progress.sent) == (0, 0)
    assert stored(server) == before  # identical content: no new bytes

    assert ws.data.get("cities").version == "2"
    assert ws.data.get("cities", label="latest").version == "2"
    assert ws.data.get("cities", version="1").description == "big cities"
    assert [v.version for v in ws.data.list("cities")] == ["2", "1"]
    assert [a.name for a in ws.data.list()] == ["cities"]

    copy = ws.data.download("cities", version="1", download_path=tmp_path / "copy")
    assert tree(copy) == tree(folder)


def test_a_file_and_a_table(ws: WorkspaceHandle, tmp_path: Path) -> None:
    single = tmp_path / "cities.csv"
    single.write_text(CSV)
    made = ws.data.create("cities-file", single, type="uri_file")
    assert made.path.endswith("/cities.csv")
    assert ws.data.preview("cities-file").rows[0] == ["oslo", 700000]
    copy = ws.data.download("cities-file", download_path=tmp_path / "copy")
    assert (copy / "cities.csv").read_text() == CSV

    table = tmp_path / "table"
    table.mkdir()
    (table / "cities.csv").write_text(CSV)
    (table / "MLTable").write_text(
        "paths:\n  - file: ./cities.csv\ntransformations:\n"
        "  - read_delimited: {delimiter: ','}\n  - take: 2\n  - keep_columns: people\n"
    )
    ws.data.create("cities-table", table, type="mltable")
    shown = ws.data.preview("cities-table", rows=10)
    assert [(c.name, c.type) for c in shown.columns] == [("people", "int64")]
    assert shown.rows == [[700000], [2800000]]


def test_the_sdk_refuses_before_sending(
    ws: WorkspaceHandle, server: RunningServer, tmp_path: Path
) -> None:
    folder = csv_folder(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not upload")
    (folder / "link").symlink_to(secret)
    before = stored(server)
    with pytest.raises(InvalidInputError) as caught:
        ws.data.create("leaky", folder)
    assert caught.value.code == "link_outside_folder"
    assert stored(server) == before

    (folder / "link").unlink()
    (folder / "inside").symlink_to(folder / "cities.csv")  # inside the folder: fine
    assert ws.data.create("linked", folder).file_count == 3

    for call, code in (
        (lambda: ws.data.create("x", tmp_path / "cities.csv-missing"), "path_not_found"),
        (lambda: ws.data.create("x", folder, type="uri_file"), "not_a_file"),
        (lambda: ws.data.create("x", folder, type="mltable"), "mltable_missing"),
        (lambda: ws.data.get(".."), "invalid_name"),
        (lambda: ws.data.get("cities", version="1", label="latest"), "invalid_field"),
        (lambda: ws.data.get("cities", label="newest"), "invalid_label"),
    ):
        with pytest.raises(InvalidInputError) as refused:
            call()
        assert refused.value.code == code


def test_archive_update_and_delete(ws: WorkspaceHandle, tmp_path: Path) -> None:
    folder = csv_folder(tmp_path)
    ws.data.create("life", folder, version="v1")
    ws.data.create("life", folder, version="v2")
    ws.data.archive("life", "v2")
    assert ws.data.get("life").version == "v1"
    ws.data.restore("life", "v2")
    assert ws.data.get("life").version == "v2"
    ws.data.archive("life")
    assert list(ws.data.list()) == []
    ws.data.restore("life")
    assert ws.data.update("life", "v1", tags={"k": "v"}).tags == {"k": "v"}
    with pytest.raises(ConflictError):
        ws.data.create("life", folder, version="v1")
    ws.data.delete("life", "v1")
    with pytest.raises(NotFoundError):
        ws.data.get("life", "v1")


def test_models_from_local_files(ws: WorkspaceHandle, tmp_path: Path) -> None:
    weights = tmp_path / "weights.bin"
    weights.write_bytes(os.urandom(5000))
    made = ws.models.create("clf", weights, description="a single file", properties={"k": "v"})
    assert (made.version, made.type) == (1, "custom_model")
    assert made.path is not None
    assert made.path.endswith("/weights.bin")
    assert made.logged_model_id is not None
    second = ws.models.create("clf", weights)
    assert second.logged_model_id == made.logged_model_id
    ws.models.set_alias("clf", "champion", 1)
    assert ws.models.get("clf", label="champion").version == 1
    assert ws.models.get("clf").version == 2
    assert ws.models.transition_stage("clf", 2, "Staging").stage == "Staging"
    assert ws.models.update("clf", 2, description="better").description == "better"
    assert ws.models.update("clf", tags={"team": "ml"}).tags == {"team": "ml"}
    assert [v.version for v in ws.models.list("clf")] == [2, 1]
    assert [m.name for m in ws.models.list()] == ["clf"]
    copy = ws.models.download("clf", label="champion", download_path=tmp_path / "copy")
    assert (copy / "weights.bin").read_bytes() == weights.read_bytes()
    ws.models.delete_alias("clf", "champion")
    ws.models.delete("clf", 1)
    assert [v.version for v in ws.models.list("clf")] == [2]
    ws.models.delete("clf")
    with pytest.raises(NotFoundError):
        ws.models.get("clf")
    for bad in ("..", "a/b", ""):
        with pytest.raises(InvalidInputError):
            ws.models.get(bad)
