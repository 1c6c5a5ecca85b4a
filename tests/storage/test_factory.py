"""Storage URIs: which implementation each one opens, and what is refused (as a 400 naming the
field). Nothing here talks to a server: opening an S3 storage sends no request."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from shipyard.domain.errors import InvalidInputError
from shipyard.storage.base import write_all
from shipyard.storage.factory import join_uri, local_path, open_storage, require_local_path
from shipyard.storage.local import LocalStorage
from shipyard.storage.s3 import S3Storage
from shipyard.storage.s3_options import S3Options


def test_folders_by_path_or_file_uri(tmp_path: Path) -> None:
    for uri in (str(tmp_path), tmp_path.as_uri(), f"file://localhost{tmp_path}"):
        storage = open_storage(uri)
        assert isinstance(storage, LocalStorage)
        assert storage.uri == tmp_path.resolve().as_uri()
    assert local_path("file:///srv/with%20space") == Path("/srv/with space")
    assert require_local_path("/srv/data") == Path("/srv/data")


def test_s3_uris_open_a_bucket_and_prefix() -> None:
    options = S3Options(endpoint_url="http://127.0.0.1:9", access_key_id="a", secret_access_key="b")
    storage = open_storage("s3://my-bucket/some//prefix/", s3=options)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix, storage.uri) == (
        "my-bucket",
        "some/prefix",
        "s3://my-bucket/some/prefix",
    )
    assert open_storage("s3://my-bucket").uri == "s3://my-bucket"


@pytest.mark.parametrize(
    "uri",
    ["gs://bucket/x", "relative/folder", "file://otherhost/srv", "", "http://example.com/x"],
)
def test_unsupported_schemes(uri: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_storage(uri, field="datastore.uri")
    error = caught.value
    assert (error.code, error.field, error.status) == ("unsupported_storage", "datastore.uri", 400)


@pytest.mark.parametrize(
    ("uri", "code"),
    [
        ("s3://UPPER-case", "invalid_storage_uri"),
        ("s3://ab", "invalid_storage_uri"),
        ("s3://-bucket", "invalid_storage_uri"),
        ("s3://a..b", "invalid_storage_uri"),
        ("s3://", "invalid_storage_uri"),
        ("s3://bucket:9000/x", "invalid_storage_uri"),
        ("s3://bucket/x?versionId=1", "invalid_storage_uri"),
        ("s3://bucket/x#frag", "invalid_storage_uri"),
        ("s3://bucket/../x", "invalid_path"),
        ("s3://bucket/%2e%2e/x", "invalid_path"),
        ("s3://bucket/a\\b", "invalid_path"),
    ],
)
def test_bad_s3_uris(uri: str, code: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_storage(uri)
    assert (caught.value.code, caught.value.field) == (code, "storage.uri")


def test_a_bad_s3_prefix_names_the_callers_field() -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_storage("s3://bucket/%252e%252e/x", field="datastore.uri")
    assert (caught.value.code, caught.value.field) == ("invalid_path", "datastore.uri")


def test_credentials_in_a_uri_are_refused_without_repeating_them() -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_storage("s3://AKID:topsecretvalue@bucket/x")
    assert caught.value.code == "invalid_storage_uri"
    assert "topsecretvalue" not in str(caught.value)


def test_s3_without_the_extra_is_a_clear_400(monkeypatch: pytest.MonkeyPatch) -> None:
    # As if s3fs were not installed: importing it fails (monkeypatch restores both entries).
    monkeypatch.setitem(sys.modules, "s3fs", None)
    monkeypatch.delitem(sys.modules, "shipyard.storage.s3")
    with pytest.raises(InvalidInputError) as caught:
        open_storage("s3://bucket/x", field="storage.uri")
    assert (caught.value.code, caught.value.field) == ("unsupported_storage", "storage.uri")
    assert "shipyard[s3]" in caught.value.detail
    assert isinstance(open_storage("/srv"), LocalStorage), "local storage needs no extra"


@pytest.mark.parametrize(
    ("base", "prefix", "joined"),
    [
        ("/srv/data", "ws/1", "/srv/data/ws/1"),
        ("/srv/data/", "./ws//1/", "/srv/data/ws/1"),
        ("file:///srv/my%20data", "ws 1", "file:///srv/my%20data/ws%201"),
        ("s3://bucket", "ws/1", "s3://bucket/ws/1"),
        ("s3://bucket/base/", "ws/1", "s3://bucket/base/ws/1"),
        ("s3://bucket/base", "a#b?c d", "s3://bucket/base/a%23b%3Fc%20d"),
        ("s3://bucket/base", "", "s3://bucket/base"),
    ],
)
def test_join_uri(base: str, prefix: str, joined: str) -> None:
    assert join_uri(base, prefix) == joined


def test_join_uri_roots_the_storage_at_the_prefix(tmp_path: Path) -> None:
    base = (tmp_path / "my data").as_uri()
    write_all(open_storage(join_uri(base, "ws/one")), "f.txt", [b"1"])
    assert open_storage(base).stat("ws/one/f.txt").size == 1
    for prefix in ("a#b c", "50%", "été"):
        s3 = open_storage(join_uri("s3://bucket/base", prefix))
        assert isinstance(s3, S3Storage)
        assert s3.prefix == f"base/{prefix}"


def test_join_uri_refuses_a_prefix_leaving_the_base() -> None:
    for prefix in ("../other", "/abs", "%2e%2e/x"):
        with pytest.raises(InvalidInputError) as caught:
            join_uri("s3://bucket/base", prefix)
        assert (caught.value.code, caught.value.field) == ("invalid_path", "storage.prefix")


def test_s3_options_keep_secrets_out_of_repr_and_messages() -> None:
    options = S3Options(
        endpoint_url="http://user:pw-in-url@s3.internal:9000",
        access_key_id="AKID",
        secret_access_key="very-secret",
        session_token="session-secret",
    )
    assert "very-secret" not in repr(options)
    assert "session-secret" not in repr(options)
    assert options.endpoint_name == "http://s3.internal:9000"
    assert S3Options().endpoint_name == "AWS S3"
    with pytest.raises(ValueError, match="part_size"):
        S3Options(part_size=1024)
