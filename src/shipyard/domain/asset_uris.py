"""The paths a data asset or a model may point at, and references to assets, parsed.

Azure ML's spellings, with ``shipyard`` accepted wherever ``azureml`` is:

- ``azureml://datastores/<ds>/paths/<p>``: a file or folder in a datastore of the workspace
  (the long form ``azureml://subscriptions/<s>/resourcegroups/<rg>/workspaces/<ws>/datastores/
  <ds>/paths/<p>`` names the workspace too);
- ``azureml://jobs/<job>/outputs/<output>/paths/<p>``: a job's output;
- ``runs:/<run id>/<p>``: an MLflow run's artifacts;
- ``http(s)://...``: a reference to a file on the web, which the server never fetches;
- anything without a scheme: a path on the client's machine, which the SDK uploads.

``azureml:<name>:<version>`` and ``azureml:<name>@<label>`` name a registered asset.
Parsing only splits the text: the parts are cleaned and resolved by the services (paths go
through the storage layer's ``clean_relative``, names are looked up in the workspace).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from shipyard.domain.errors import InvalidInputError

SCHEMES = ("azureml", "shipyard")
MAX_URI = 4096

# ``<scheme>:`` at the start (a Windows drive letter "C:" is one letter: not a scheme).
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")
_DATASTORE = re.compile(r"^datastores/([^/]+)/paths(?:/(.*))?$", re.DOTALL)
_LONG_DATASTORE = re.compile(
    r"^subscriptions/[^/]+/resourcegroups/[^/]+/workspaces/([^/]+)/datastores/([^/]+)"
    r"/paths(?:/(.*))?$",
    re.DOTALL | re.IGNORECASE,
)
_JOB_OUTPUT = re.compile(r"^jobs/([^/]+)/outputs/([^/]+)(?:/paths(?:/(.*))?)?$", re.DOTALL)
_REF = re.compile(r"^(?P<name>[^:@/]+)(?::(?P<version>[^:@/]+)|@(?P<label>[^:@/]+))?$")


@dataclass(frozen=True)
class DatastorePath:
    datastore: str
    path: str
    workspace: str | None = None  # the long form names it


@dataclass(frozen=True)
class JobOutputPath:
    job: str
    output: str
    path: str


@dataclass(frozen=True)
class RunPath:
    run_id: str
    path: str


@dataclass(frozen=True)
class WebUrl:
    url: str


@dataclass(frozen=True)
class LocalPath:
    path: str


AssetPath = DatastorePath | JobOutputPath | RunPath | WebUrl | LocalPath


@dataclass(frozen=True)
class AssetRef:
    """``azureml:<name>:<version>`` or ``azureml:<name>@<label>``."""

    name: str
    version: str | None = None
    label: str | None = None


def datastore_uri(datastore: str, path: str) -> str:
    """The short ``azureml://`` URI of a path in a datastore (Azure's spelling, so YAML and
    tools written for Azure ML read it)."""
    base = f"azureml://datastores/{datastore}/paths"
    return f"{base}/{path}" if path else base


def parse_asset_path(text: str, *, field: str = "path") -> AssetPath:
    """What kind of place ``text`` names; an unsupported scheme is an InvalidInputError."""
    if len(text) > MAX_URI:
        raise _invalid(text, f"is longer than {MAX_URI} characters", field)
    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else ""
    if not scheme:
        return LocalPath(text)
    if scheme in ("http", "https"):
        if not text.lower().startswith(f"{scheme}://") or len(text) <= len(scheme) + 3:
            raise _invalid(text, "is not a complete URL", field)
        return WebUrl(text)
    if scheme == "runs":
        rest = text[len("runs:") :]
        if not rest.startswith("/") or rest.startswith("//"):
            raise _invalid(text, "must look like runs:/<run id>/<path>", field)
        run_id, _, path = rest[1:].partition("/")
        if not run_id:
            raise _invalid(text, "names no run", field)
        return RunPath(run_id, path)
    if scheme in SCHEMES:
        return _parse_azureml(text, text[len(scheme) + 1 :], field)
    if scheme == "file":
        return LocalPath(unquote(text[len("file:") :].removeprefix("//")))
    raise _invalid(
        text,
        f"uses the {scheme}: scheme, which this server does not read; use a datastore URI "
        "(azureml://datastores/<name>/paths/<path>), an http(s) URL or a local path",
        field,
        code="unsupported_path",
    )


def _parse_azureml(text: str, rest: str, field: str) -> AssetPath:
    if not rest.startswith("//"):
        raise _invalid(text, "is an asset reference (azureml:<name>:<version>), not a path", field)
    body = rest[2:]
    if found := _DATASTORE.match(body):
        return DatastorePath(unquote(found.group(1)), found.group(2) or "")
    if found := _LONG_DATASTORE.match(body):
        return DatastorePath(
            unquote(found.group(2)), found.group(3) or "", workspace=unquote(found.group(1))
        )
    if found := _JOB_OUTPUT.match(body):
        return JobOutputPath(unquote(found.group(1)), unquote(found.group(2)), found.group(3) or "")
    raise _invalid(
        text,
        "must look like azureml://datastores/<name>/paths/<path> or "
        "azureml://jobs/<job>/outputs/<output>/paths/<path>",
        field,
    )


def parse_asset_ref(text: str, *, field: str) -> AssetRef:
    """``azureml:<name>:<version>``, ``azureml:<name>@<label>`` (or ``shipyard:``)."""
    scheme, colon, rest = text.partition(":")
    found = _REF.match(rest) if colon and scheme.lower() in SCHEMES else None
    if found is None:
        raise _invalid(
            text,
            "must look like azureml:<name>:<version> or azureml:<name>@latest",
            field,
            code="invalid_reference",
        )
    return AssetRef(found.group("name"), found.group("version"), found.group("label"))


def _invalid(text: str, why: str, field: str, *, code: str = "invalid_path") -> InvalidInputError:
    shown = text if len(text) <= 200 else text[:197] + "..."
    return InvalidInputError(f"{shown!r} {why}", code=code, field=field)
