"""A run's files through the SDK: upload a file and a folder, list, download, delete."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.sdk.client import Client
from tests.conftest import unique


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_files_and_folders_round_trip(admin: Client, tmp_path: Path) -> None:
    name = unique("ws")
    admin.workspaces.create(name=name)
    ws = admin.workspace(name)
    src = tmp_path / "src"
    (src / "nested" / "deeper").mkdir(parents=True)
    (src / "top.txt").write_text("top")
    (src / "nested" / "mid.bin").write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several chunks
    (src / "nested" / "deeper" / "leaf.json").write_text("{}")
    (tmp_path / "model.pkl").write_bytes(b"\x80\x04fake")

    with ws.start_run(experiment=unique("exp")) as run:
        single = run.log_artifact(tmp_path / "model.pkl", artifact_path="model")
        written = run.log_artifacts(src, artifact_path="data")
    assert single.path == "model/model.pkl"
    assert single.size == 6
    assert [w.path for w in written] == [
        "data/nested/deeper/leaf.json",
        "data/nested/mid.bin",
        "data/top.txt",
    ]

    files = ws.jobs.artifacts(run.id)
    top = [(a.path, a.is_dir) for a in files.list()]
    assert top == [("data", True), ("model", True)]
    every = [a.path for a in files.list(recursive=True)]
    assert every == [
        "data/nested/deeper/leaf.json",
        "data/nested/mid.bin",
        "data/top.txt",
        "model/model.pkl",
    ]

    out = files.download("data", tmp_path / "out")
    assert out == tmp_path / "out" / "data"
    assert _tree(out) == _tree(src)
    one = files.download("model/model.pkl", tmp_path / "one")
    assert one.read_bytes() == b"\x80\x04fake"
    assert files.read_bytes("data/top.txt") == b"top"

    files.delete("data/nested")
    assert [a.path for a in files.list(recursive=True)] == ["data/top.txt", "model/model.pkl"]
    with pytest.raises(NotFoundError):
        files.read_bytes("data/nested/mid.bin")


def test_a_link_out_of_the_folder_is_refused_before_any_upload(
    admin: Client, tmp_path: Path
) -> None:
    name = unique("ws")
    admin.workspaces.create(name=name)
    ws = admin.workspace(name)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not send")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "ok.txt").write_text("ok")
    (folder / "sneaky.txt").symlink_to(secret)
    with ws.start_run() as run:
        with pytest.raises(InvalidInputError) as caught:
            run.log_artifacts(folder)
        assert caught.value.code == "link_outside_folder"
    assert ws.jobs.artifacts(run.id).list() == []
