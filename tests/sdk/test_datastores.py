"""``ws.datastores`` against a real server: local folders and buckets on a real SeaweedFS
server, the default, keys kept out of everything but ``list_secrets``, and typed errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard import Client
from shipyard.domain.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
)
from tests.conftest import RunningServer, free_port, start_server, unique
from tests.s3server import S3Server


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("roots").resolve()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_database_url: str, roots: Path
) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("data")
    with start_server(data, module_database_url, datastore_roots=[str(roots)]) as running:
        yield running


def keys_of(s3: S3Server) -> dict[str, str]:
    return {"access_key_id": s3.access_key_id, "secret_access_key": s3.secret_access_key}


def test_create_get_list_update_default_and_delete(admin: Client, roots: Path) -> None:
    ws = admin.workspace(admin.workspaces.create(unique()).name)
    folder = roots / unique("csv")
    folder.mkdir()
    made = ws.datastores.create(
        "csv_drop", type="local", path=str(folder), description="CSV drops", tags={"t": "1"}
    )
    assert (made.name, made.type, made.path, made.credentials.kind) == (
        "csv_drop",
        "local",
        str(folder),
        "none",
    )
    assert ws.datastores.get("csv_drop") == made
    assert [d.name for d in ws.datastores.list()] == ["workspaceblobstore", "csv_drop"]
    assert ws.datastores.get_default().name == "workspaceblobstore"

    changed = ws.datastores.update("csv_drop", read_only=True, tags={"t": "2"})
    assert (changed.read_only, changed.tags, changed.description) == (True, {"t": "2"}, "CSV drops")
    cleared = ws.datastores.update("csv_drop", description=None)
    assert cleared.description is None

    assert ws.datastores.set_default("csv_drop").is_default is True
    assert ws.datastores.get_default().name == "csv_drop"
    assert ws.datastores.list_secrets("csv_drop").kind == "none"
    ws.datastores.delete("csv_drop")
    with pytest.raises(NotFoundError) as gone:
        ws.datastores.get("csv_drop")
    assert gone.value.code == "datastore_not_found"
    assert ws.datastores.get_default().name == "workspaceblobstore"


def test_an_s3_datastore_and_its_keys(admin: Client, s3_server: S3Server) -> None:
    ws = admin.workspace(admin.workspaces.create(unique()).name)
    bucket = s3_server.new_bucket("sdk")
    made = ws.datastores.create(
        "lake",
        type="s3",
        bucket=bucket,
        prefix="curated",
        endpoint_url=s3_server.endpoint_url,
        region="us-east-1",
        credentials=keys_of(s3_server),
    )
    assert made.uri == f"s3://{bucket}/curated"
    assert made.credentials.secret_name == "datastore-lake-credentials"
    assert s3_server.secret_access_key not in made.model_dump_json()
    assert s3_server.secret_access_key not in repr(list(ws.datastores.list()))
    secrets = ws.datastores.list_secrets("lake")
    assert (secrets.access_key_id, secrets.secret_access_key) == (
        s3_server.access_key_id,
        s3_server.secret_access_key,
    )
    rotated = ws.datastores.update("lake", credentials=keys_of(s3_server))
    assert rotated.credentials.managed is True


def test_errors_arrive_typed_with_their_codes(admin: Client, s3_server: S3Server) -> None:
    ws = admin.workspace(admin.workspaces.create(unique()).name)
    bucket = s3_server.new_bucket("sdk")
    common: dict[str, Any] = {
        "type": "s3",
        "bucket": bucket,
        "endpoint_url": s3_server.endpoint_url,
    }
    wrong = {"access_key_id": s3_server.access_key_id, "secret_access_key": "not-the-key"}
    with pytest.raises(ForbiddenError) as denied:
        ws.datastores.create("w", credentials=wrong, **common)
    assert (denied.value.code, denied.value.field) == ("storage_access_denied", "credentials")
    down = {**common, "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(UnavailableError) as unavailable:
        ws.datastores.create("d", credentials=keys_of(s3_server), **down)
    assert unavailable.value.code == "storage_unavailable"
    with pytest.raises(ConflictError):
        ws.datastores.delete("workspaceblobstore")
    for name in ("..", ".", "a/b", ""):
        with pytest.raises(InvalidInputError) as refused:
            ws.datastores.delete(name)
        assert refused.value.field == "name"
    # Made without the check, it is still there to fix.
    skipped = ws.datastores.create(
        "later",
        credentials=wrong,
        skip_validation=True,
        **common,
    )
    assert skipped.name == "later"
    fixed = ws.datastores.update("later", credentials=keys_of(s3_server))
    assert fixed.credentials.kind == "secret"
