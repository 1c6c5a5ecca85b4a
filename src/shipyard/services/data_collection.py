"""``data_collector`` of an online deployment: which scoring requests and responses the
gateway copies to a datastore, checked and completed when the deployment is created or
updated (docs/endpoints.md, "Collecting requests and responses").

Azure's shape::

    data_collector:
      sampling_rate: 0.5          # 0 < rate <= 1, default 1.0
      rolling_rate: Hour          # Minute, Hour (default), Day, Month, Year
      collections:
        request: {enabled: 'True', data: {name: churn-requests, path: azureml://..., version: 1}}
        response: {enabled: true}

Only ``request`` and ``response`` are collected here: Azure's custom collections
(``model_inputs``, ``model_outputs``) are filled by Azure's Python collector inside the
scoring script, which Shipyard does not ship, so naming one is a 400 rather than a folder that
stays empty. ``enabled`` takes booleans and the 'True'/'False' strings Azure writes. A
collection without ``data.path`` goes to the workspace's default datastore, under
``modelDataCollector/<endpoint>/<deployment>/<collection>``; a path must be in a datastore of
this workspace that may be written to.

What is stored in the deployment's spec (``CollectorSpec.as_json``) holds the enabled
collections only, each with its path resolved to a full datastore URI; no enabled collection
is no collection at all (the default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from shipyard.domain import actions
from shipyard.domain.actions import workspace_scope
from shipyard.domain.asset_uris import DatastorePath, parse_asset_path
from shipyard.domain.content import UPLOADS_FOLDER
from shipyard.domain.errors import InvalidInputError, NotFoundError
from shipyard.domain.principals import Principal
from shipyard.schemas.data import DATA_NAME, DATA_VERSION, LATEST
from shipyard.services.authz import Authorizer
from shipyard.services.datastore_uris import DatastoreResolver
from shipyard.services.workspace_rows import live_workspace
from shipyard.services.workspaces import DEFAULT_DATASTORE
from shipyard.store import datastores as datastore_store
from shipyard.store.database import Database
from shipyard.store.workspaces import WorkspaceRow

FIELD = "data_collector"
COLLECTIONS = ("request", "response")
ROLLING_RATES = ("Minute", "Hour", "Day", "Month", "Year")
DEFAULT_ROLLING_RATE = "Hour"
#: Azure's folder for collected data in the default datastore.
DEFAULT_FOLDER = "modelDataCollector"
# Azure's keys of the block; request_logging (which headers to keep) is accepted and not
# used: no header is collected, so no key or token can end up in a datastore.
_KEYS = {"sampling_rate", "rolling_rate", "collections", "request_logging"}
_DATA_KEYS = {"name", "path", "version"}
_NAME = re.compile(DATA_NAME)
_VERSION = re.compile(DATA_VERSION)


@dataclass(frozen=True)
class Collection:
    """One enabled collection: ``request`` or ``response``, the folder it is written to (a
    datastore URI) and the data asset that points at that folder, if one is wanted."""

    name: str
    path: str
    data_name: str | None = None
    data_version: str | None = None


@dataclass(frozen=True)
class CollectorSpec:
    sampling_rate: float
    rolling_rate: str
    collections: tuple[Collection, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "sampling_rate": self.sampling_rate,
            "rolling_rate": self.rolling_rate,
            "collections": {
                c.name: {"path": c.path, "data_name": c.data_name, "data_version": c.data_version}
                for c in self.collections
            },
        }

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> CollectorSpec:
        return cls(
            float(stored["sampling_rate"]),
            str(stored["rolling_rate"]),
            tuple(
                Collection(name, c["path"], c.get("data_name"), c.get("data_version"))
                for name, c in sorted(stored["collections"].items())
            ),
        )


@dataclass(frozen=True)
class _Given:
    """A collection as the YAML gives it (path not resolved yet)."""

    name: str
    path: str | None
    data_name: str | None
    data_version: str | None


def check_data_collector(
    db: Database,
    resolver: DatastoreResolver,
    authorizer: Authorizer,
    principal: Principal,
    *,
    workspace: str,
    endpoint: str,
    deployment: str,
    raw: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """What goes into the deployment's spec (None: nothing is collected); every mistake is
    a 400 naming its field under ``data_collector``. Registering a data asset needs the
    caller's ``workspaces/data/write``."""
    if raw is None:
        return None
    rate, rolling, given = _parse(raw)
    if not given:
        return None
    if any(g.data_name for g in given):
        authorizer.authorize(principal, actions.DATA_WRITE, workspace_scope(workspace))
    with db.read() as session:
        ws = live_workspace(session, workspace)
        default = datastore_store.default_name(session, ws.id) or DEFAULT_DATASTORE
        collections = tuple(
            _resolve(session, resolver, ws, g, default, f"{endpoint}/{deployment}") for g in given
        )
    _check_assets(collections)
    return CollectorSpec(rate, rolling, collections).as_json()


def _parse(raw: dict[str, Any]) -> tuple[float, str, list[_Given]]:
    _no_unknown(raw, _KEYS, FIELD)
    rate = _sampling_rate(raw.get("sampling_rate"))
    rolling = _rolling_rate(raw.get("rolling_rate"))
    collections = raw.get("collections")
    if collections is None:
        return rate, rolling, []
    if not isinstance(collections, dict):
        raise _invalid("is a mapping of collection names to settings", f"{FIELD}.collections")
    given: list[_Given] = []
    for name, settings in collections.items():
        field = f"{FIELD}.collections.{str(name)[:64]}"
        if name not in COLLECTIONS:
            raise InvalidInputError(
                f"collection {str(name)[:64]!r} is not collected here: only request and "
                "response are (the gateway's copies of what a deployment was sent and "
                "answered); custom collections need Azure's collector inside the scoring script",
                code="unsupported_collection",
                field=field,
            )
        found = _collection(name, settings, field)
        if found is not None:
            given.append(found)
    return rate, rolling, given


def _sampling_rate(value: Any) -> float:
    field = f"{FIELD}.sampling_rate"
    if value is None:
        return 1.0
    try:
        rate = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        rate = None
    if rate is None or not 0 < rate <= 1:
        raise InvalidInputError(
            f"sampling_rate is the share of requests collected: a number above 0 and at "
            f"most 1 (got {str(value)[:32]!r})",
            code="invalid_sampling_rate",
            field=field,
        )
    return rate


def _rolling_rate(value: Any) -> str:
    if value is None:
        return DEFAULT_ROLLING_RATE
    found = next((r for r in ROLLING_RATES if str(value).lower() == r.lower()), None)
    if found is None:
        raise InvalidInputError(
            f"rolling_rate is one of {', '.join(ROLLING_RATES)} (got {str(value)[:32]!r})",
            code="invalid_rolling_rate",
            field=f"{FIELD}.rolling_rate",
        )
    return found


def _collection(name: str, settings: Any, field: str) -> _Given | None:
    if settings is None:
        return None
    if not isinstance(settings, dict):
        raise _invalid("is a mapping with enabled and data", field)
    _no_unknown(settings, {"enabled", "data"}, field)
    if not _enabled(settings.get("enabled"), f"{field}.enabled"):
        return None
    data = settings.get("data")
    if data is None:
        return _Given(name, None, None, None)
    if not isinstance(data, dict):
        raise _invalid("is a mapping with name, path and version", f"{field}.data")
    _no_unknown(data, _DATA_KEYS, f"{field}.data")
    path = _text(data.get("path"), f"{field}.data.path")
    data_name = _text(data.get("name"), f"{field}.data.name")
    version = _text(data.get("version"), f"{field}.data.version")
    if data_name is not None and not _NAME.fullmatch(data_name):
        raise _invalid(
            "is a data asset name: letters, digits, '.', '_' and '-', starting with a letter "
            "or digit",
            f"{field}.data.name",
        )
    if version is not None:
        if data_name is None:
            raise _invalid(
                "needs data.name (the asset it is a version of)", f"{field}.data.version"
            )
        if not _VERSION.fullmatch(version) or version.lower() == LATEST:
            raise _invalid("is not a valid data asset version", f"{field}.data.version")
    return _Given(name, path, data_name, version)


def _enabled(value: Any, field: str) -> bool:
    # Azure's own YAML writes 'True' and 'False' as strings.
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise _invalid(f"is true or false (got {str(value)[:32]!r})", field)


def _resolve(
    session: Session,
    resolver: DatastoreResolver,
    ws: WorkspaceRow,
    given: _Given,
    default: str,
    deployment_folder: str,
) -> Collection:
    """The collection's folder as a full datastore URI, in a datastore that may be written."""
    field = f"{FIELD}.collections.{given.name}.data.path"
    if given.path is None:
        datastore, path = default, f"{DEFAULT_FOLDER}/{deployment_folder}/{given.name}"
    else:
        parsed = parse_asset_path(given.path, field=field)
        if not isinstance(parsed, DatastorePath) or parsed.workspace not in (None, ws.name):
            raise _invalid(
                "is a folder in one of this workspace's datastores: "
                "azureml://datastores/<name>/paths/<folder>",
                field,
            )
        datastore, path = parsed.datastore, parsed.path
    try:
        location = resolver.resolve(session, ws, datastore, path, field=field)
    except NotFoundError as exc:  # a mistake in the YAML: 400, as every field here
        raise InvalidInputError(exc.detail, code=exc.code, field=field) from exc
    if location.read_only:
        raise InvalidInputError(
            f"datastore {datastore!r} is read-only; collected data needs one that may be written",
            code="datastore_read_only",
            field=field,
        )
    if location.path.split("/")[0] == UPLOADS_FOLDER:
        # Uploads are content-addressed and verified: nothing may add files among them.
        raise _invalid(f"is inside {UPLOADS_FOLDER}/, which holds uploads only", field)
    return Collection(given.name, location.uri, given.data_name, given.data_version)


def _check_assets(collections: tuple[Collection, ...]) -> None:
    """One data asset version is one folder: two collections cannot share it."""
    if len(collections) == 2:
        first, second = collections
        same = first.data_name is not None and first.data_name == second.data_name
        if same and first.data_version == second.data_version and first.path != second.path:
            raise _invalid(
                "names the same data asset version as the request collection, for another "
                "folder; give each its own name or version",
                f"{FIELD}.collections.{second.name}.data.name",
            )


def _text(value: Any, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid("is a string", field)
    text = str(value).strip()
    if not text or len(text) > 4096 or "\x00" in text:
        raise _invalid("is a non-empty string of at most 4096 characters", field)
    return text


def _no_unknown(given: dict[str, Any], known: set[str], field: str) -> None:
    unknown = sorted(str(k)[:64] for k in given if k not in known)
    if unknown:
        raise InvalidInputError(
            f"unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}",
            code="unknown_field",
            field=f"{field}.{unknown[0]}",
        )


def _invalid(why: str, field: str) -> InvalidInputError:
    return InvalidInputError(f"{field} {why}", code="invalid_field", field=field)
