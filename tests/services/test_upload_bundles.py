"""The bundle reader on its own, over a real folder: a body cut into pieces of every size
(headers and files split anywhere) unpacks the same; an error leaves no partial file."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.schemas.uploads import BUNDLE_MAGIC, bundle_header
from shipyard.services.datastore_uris import Location
from shipyard.services.uploads import BundleWriter, OpenUpload
from shipyard.storage.local import LocalStorage

FILES = {
    "a.csv": b"x,y\n1,2\n",
    "deep/folder/b.bin": os.urandom(3000),
    "empty": b"",
    "c\u00e9.txt": "caf\u00e9\n".encode(),
}


def open_upload(root: Path) -> OpenUpload:
    manifest = {path: (hashlib.sha256(b).hexdigest(), len(b)) for path, b in FILES.items()}
    folder = Location("workspaceblobstore", LocalStorage(root), "", "upload")
    return OpenUpload("d" * 64, manifest, folder, limit=1 << 20)


def body() -> bytes:
    return BUNDLE_MAGIC + b"".join(bundle_header(p, len(b)) + b for p, b in FILES.items())


def files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root / "upload").as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 18, 19, 64, 1000, 1 << 20])
def test_any_cut_of_the_body_unpacks_the_same(tmp_path: Path, piece: int) -> None:
    writer = BundleWriter(open_upload(tmp_path))
    data = body()
    for start in range(0, len(data), piece):
        writer.write(data[start : start + piece])
    written = writer.commit()
    assert (written.files, written.size) == (4, sum(len(b) for b in FILES.values()))
    assert files_under(tmp_path) == FILES


@pytest.mark.parametrize("piece", [1, 5, 1 << 20])
def test_a_failure_midway_leaves_only_whole_checked_files(tmp_path: Path, piece: int) -> None:
    writer = BundleWriter(open_upload(tmp_path))
    wrong = bytearray(FILES["deep/folder/b.bin"])
    wrong[-1] ^= 1
    data = BUNDLE_MAGIC + bundle_header("a.csv", 8) + FILES["a.csv"]
    data += bundle_header("deep/folder/b.bin", len(wrong)) + bytes(wrong)

    def feed() -> None:  # the error comes with the piece that ends the wrong file
        for start in range(0, len(data), piece):
            writer.write(data[start : start + piece])

    with pytest.raises(InvalidInputError) as refused:
        feed()
    writer.abort()
    assert refused.value.code == "content_mismatch"
    assert files_under(tmp_path) == {"a.csv": FILES["a.csv"]}


def test_aborting_inside_a_file_removes_what_it_wrote(tmp_path: Path) -> None:
    writer = BundleWriter(open_upload(tmp_path))
    data = body()
    writer.write(data[: data.index(FILES["deep/folder/b.bin"]) + 100])
    assert any(".shipyard-upload-" in p.name for p in tmp_path.rglob("*"))
    with pytest.raises(InvalidInputError) as cut:
        writer.commit()
    writer.abort()
    assert "deep/folder/b.bin" in cut.value.detail
    assert files_under(tmp_path) == {"a.csv": FILES["a.csv"]}
