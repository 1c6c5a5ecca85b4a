"""Datastore bodies, shaped like Azure ML's datastore YAML.

Credentials travel in exactly two bodies: ``DatastoreCredentials`` inside a create or update
(in), and ``DatastoreSecretsRead`` (out, only from the route that lists a datastore's
secrets). ``DatastoreRead`` says how a datastore signs in (``credentials.kind``) and which
key-vault secret holds the keys, never the keys themselves.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from shipyard.schemas.common import RequestBody, ResponseBody

# Azure's datastore names are letters, digits and '_'; '-' is allowed too. They appear in
# URIs (azureml://datastores/<name>/paths/...) and in the name of the key-vault secret that
# holds a datastore's keys, which must fit the vault's 127 characters.
DATASTORE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
DATASTORE_TYPES = ("local", "s3")
# Azure ML datastore types, and what each is, for the message that refuses them.
AZURE_TYPES = {
    "azure_blob": "an Azure Blob Storage container",
    "azure_data_lake_gen2": "an Azure Data Lake Storage Gen2 file system",
    "azure_data_lake_gen1": "an Azure Data Lake Storage Gen1 store",
    "azure_file": "an Azure file share",
    "one_lake": "a Microsoft OneLake artifact",
}

CredentialsKind = Literal["secret", "anonymous", "identity", "none"]
# No NUL in anything stored: PostgreSQL's text cannot hold one.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Field(max_length=8192, pattern=NO_NUL)]
Tags = dict[
    Annotated[str, Field(min_length=1, max_length=256, pattern=NO_NUL)],
    Annotated[str, Field(max_length=4096, pattern=NO_NUL)],
]


class DatastoreCredentials(RequestBody):
    """How an S3 datastore signs in; give exactly one of: ``access_key_id`` with
    ``secret_access_key`` (stored in the workspace's key vault), ``secret_name`` (a key-vault
    secret holding ``{"access_key_id": ..., "secret_access_key": ...}``), or
    ``anonymous: true`` (unsigned requests, for public buckets)."""

    access_key_id: str | None = Field(default=None, min_length=1, max_length=128)
    secret_access_key: SecretStr | None = Field(default=None, min_length=1, max_length=1024)
    secret_name: str | None = Field(default=None, min_length=1, max_length=127)
    anonymous: bool = False


class DatastoreCreate(RequestBody):
    """``type: local`` takes ``path``; ``type: s3`` takes ``bucket`` and optionally
    ``prefix``, ``endpoint_url``, ``region`` and ``credentials`` (left out: the server's own
    credentials, where an administrator allows that)."""

    name: str = Field(min_length=1, max_length=256)
    type: str = Field(max_length=64)
    description: Text | None = None
    tags: Tags = Field(default_factory=dict, max_length=100)
    read_only: bool = False
    path: str | None = Field(default=None, max_length=4096, description="local: the folder")
    bucket: str | None = Field(default=None, max_length=256, description="s3: the bucket")
    prefix: str | None = Field(default=None, max_length=1024, description="s3: a key prefix")
    endpoint_url: str | None = Field(default=None, max_length=2048, description="s3: default AWS")
    region: str | None = Field(default=None, max_length=64)
    credentials: DatastoreCredentials | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value in AZURE_TYPES:
            raise ValueError(
                f"{value!r} is {AZURE_TYPES[value]}, which this server cannot reach; Shipyard "
                "datastores are type 's3' (an S3-compatible bucket) or 'local' (a folder on the "
                "server). docs/datastores.md shows how Azure datastore fields map"
            )
        if value not in DATASTORE_TYPES:
            raise ValueError(f"the type must be 'local' or 's3', not {value[:64]!r}")
        return value


class DatastoreUpdate(RequestBody):
    """Only the fields sent change; ``tags`` replaces the whole map; ``credentials`` replaces
    the credentials (``null``: the server's own). Where a datastore points cannot change:
    delete it and create it again."""

    description: Text | None = None
    tags: Tags | None = Field(default=None, max_length=100)
    read_only: bool | None = None
    credentials: DatastoreCredentials | None = None


class CredentialsRead(ResponseBody):
    """How a datastore signs in, never with what: ``secret`` (keys in the key-vault secret
    ``secret_name``; ``managed`` when the datastore made that secret and deletes it with
    itself), ``anonymous``, ``identity`` (the server's own credentials) or ``none`` (a local
    folder)."""

    kind: CredentialsKind
    secret_name: str | None = None
    managed: bool = False


class DatastoreRead(ResponseBody):
    name: str
    type: Literal["local", "s3"]
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    read_only: bool = False
    is_default: bool = False
    uri: str = Field(description="Where it points: a folder path or s3://bucket/prefix.")
    path: str | None = None
    bucket: str | None = None
    prefix: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    credentials: CredentialsRead
    created_by: str | None = None
    created_at: datetime
    updated_by: str | None = None
    updated_at: datetime


class DatastoreSecretsRead(ResponseBody):
    """A datastore's keys (only from ``POST .../list-secrets``); null where it has none."""

    name: str
    kind: CredentialsKind
    access_key_id: str | None = None
    secret_access_key: str | None = None
