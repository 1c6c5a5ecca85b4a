"""Parsing the paths data assets and models point at, and asset references."""

from __future__ import annotations

import pytest

from shipyard.domain.asset_uris import (
    AssetRef,
    DatastorePath,
    JobOutputPath,
    LocalPath,
    RunPath,
    WebUrl,
    datastore_uri,
    parse_asset_path,
    parse_asset_ref,
)
from shipyard.domain.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        (
            "azureml://datastores/workspaceblobstore/paths/a/b.csv",
            DatastorePath("workspaceblobstore", "a/b.csv"),
        ),
        ("shipyard://datastores/lake/paths/x/", DatastorePath("lake", "x/")),
        ("azureml://datastores/lake/paths", DatastorePath("lake", "")),
        (
            "azureml://subscriptions/s/resourcegroups/rg/workspaces/other/datastores/d/paths/p",
            DatastorePath("d", "p", workspace="other"),
        ),
        (
            "azureml://jobs/run1/outputs/artifacts/paths/model/",
            JobOutputPath("run1", "artifacts", "model/"),
        ),
        ("azureml://jobs/run1/outputs/out", JobOutputPath("run1", "out", "")),
        ("runs:/abc/model", RunPath("abc", "model")),
        ("https://example.com/a.csv", WebUrl("https://example.com/a.csv")),
        ("./data/train.csv", LocalPath("./data/train.csv")),
        ("C:\\data\\x", LocalPath("C:\\data\\x")),
        ("file:///srv/data/x", LocalPath("/srv/data/x")),
    ],
)
def test_paths_are_told_apart(text: str, parsed: object) -> None:
    assert parse_asset_path(text) == parsed


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("wasbs://container@account.blob.core.windows.net/x", "unsupported_path"),
        ("s3://bucket/key", "unsupported_path"),
        ("azureml:churn:1", "invalid_path"),
        ("azureml://elsewhere/x", "invalid_path"),
        ("runs:abc", "invalid_path"),
        ("runs://abc/x", "invalid_path"),
        ("https://", "invalid_path"),
        ("x" * 5000, "invalid_path"),
    ],
)
def test_unsupported_paths_are_refused_naming_the_field(text: str, code: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_asset_path(text, field="spec.path")
    assert (caught.value.code, caught.value.field) == (code, "spec.path")


def test_references_name_a_version_or_a_label() -> None:
    assert parse_asset_ref("azureml:churn:3", field="f") == AssetRef("churn", version="3")
    assert parse_asset_ref("shipyard:churn@latest", field="f") == AssetRef("churn", label="latest")
    assert parse_asset_ref("azureml:churn", field="f") == AssetRef("churn")
    for bad in ("churn:3", "azureml://datastores/x/paths/y", "azureml:a:b:c", "azureml:"):
        with pytest.raises(InvalidInputError):
            parse_asset_ref(bad, field="f")


def test_datastore_uris_are_spelt_like_azure() -> None:
    assert datastore_uri("ds", "a/b") == "azureml://datastores/ds/paths/a/b"
    assert datastore_uri("ds", "") == "azureml://datastores/ds/paths"
