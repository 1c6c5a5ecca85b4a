"""Where a model version's files are: the client's ``source`` resolved inside its workspace.

Every location is a path in the workspace's own storage, spelt ``mlflow-artifacts:/<path>``
(the MLflow client reads such a URI through the workspace's artifact proxy, whose paths are the
storage's). A run's artifacts are under ``runs/<run id>/artifacts`` and a logged model's under
``models/<model id>/artifacts``. So:

- ``runs:/<run id>/<path>`` → ``mlflow-artifacts:/runs/<run id>/artifacts/<path>``, when the
  run is this workspace's;
- ``models:/<logged model id>`` → that logged model's location, when it is this workspace's;
- ``models:/<name>/<version>`` or ``models:/<name>@<alias>`` → that registered version's
  location (a copy shares its files);
- ``mlflow-artifacts:/<path>`` stays, once the path is cleaned (no traversal) and any run or
  logged model it names is this workspace's.

Anything else (``file:``, ``s3:``, ``http(s):``, absolute paths, another workspace's ids) is
refused: the server never reads a location it does not own, and never reads model files.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from shipyard.domain.errors import InvalidInputError
from shipyard.storage.paths import clean_relative
from shipyard.store.logged_models import get_logged_model
from shipyard.store.models import ModelAliasRow, ModelVersionRow, get_model, get_version
from shipyard.store.tracking import get_job

ARTIFACTS_SCHEME = "mlflow-artifacts:"
_RUNS = "runs:/"
_MODELS = "models:/"
_MAX_ID = 64


def run_artifact_location(run_id: str) -> str:
    return f"{ARTIFACTS_SCHEME}/runs/{run_id}/artifacts"


def logged_model_location(model_id: str) -> str:
    return f"{ARTIFACTS_SCHEME}/models/{model_id}/artifacts"


@dataclass(frozen=True)
class Resolved:
    storage_location: str
    run_id: str | None = None  # the run the source names, if any
    logged_model_id: str | None = None
    # The run that logged the model the source names: the version's run unless one is given.
    source_run_id: str | None = None


def resolve(session: Session, workspace_id: str, source: str) -> Resolved:
    if source.startswith(_RUNS):
        return _from_run(session, workspace_id, source[len(_RUNS) :])
    if source.startswith(_MODELS):
        return _from_model(session, workspace_id, source[len(_MODELS) :], source)
    if source.startswith(ARTIFACTS_SCHEME):
        return _from_storage(session, workspace_id, source[len(ARTIFACTS_SCHEME) :], source)
    raise _refused(
        source,
        "a model's files must be in this workspace: use runs:/<run id>/<path>, "
        "models:/<logged model id> or mlflow-artifacts:/<path>",
    )


def _from_model(session: Session, workspace_id: str, rest: str, source: str) -> Resolved:
    """``models:/<logged model id>``, or another registered version of this workspace
    (``models:/<name>/<version>`` or ``models:/<name>@<alias>``, as ``copy_model_version``
    sends), whose files and lineage the new version shares."""
    rest = rest.rstrip("/")
    name, slash, version = rest.partition("/")
    name, at, alias = name.partition("@") if not slash else (name, "", "")
    if not slash and not at:
        source_run = require_logged_model(session, workspace_id, rest, field="source")
        return Resolved(logged_model_location(rest), logged_model_id=rest, source_run_id=source_run)
    model = get_model(session, workspace_id, name) if name else None
    found = None
    if model is not None and slash and version.isdigit() and len(version) < 10:
        found = get_version(session, model.id, int(version))
    elif model is not None and at:
        alias_row = session.get(ModelAliasRow, (model.id, alias))
        found = session.get(ModelVersionRow, alias_row.version_id) if alias_row else None
    if found is None:
        raise _refused(source, "no such registered model version in this workspace")
    return Resolved(found.storage_location, found.run_id, found.logged_model_id)


def _from_run(session: Session, workspace_id: str, rest: str) -> Resolved:
    run_id, _, path = rest.partition("/")
    require_run(session, workspace_id, run_id, field="source")
    clean = clean_relative(path, field="source")
    location = run_artifact_location(run_id) + (f"/{clean}" if clean else "")
    return Resolved(location, run_id=run_id)


def _from_storage(session: Session, workspace_id: str, rest: str, source: str) -> Resolved:
    if not rest.startswith("/") or rest.startswith("//"):
        # mlflow-artifacts://host/... names another server's store.
        raise _refused(source, "use mlflow-artifacts:/<path> within this workspace")
    clean = clean_relative(rest[1:], field="source")
    if not clean:
        raise _refused(source, "the path names the workspace's whole storage")
    parts = clean.split("/")
    location = f"{ARTIFACTS_SCHEME}/{clean}"
    if parts[0] == "runs" and len(parts) > 1:
        return Resolved(
            location, run_id=require_run(session, workspace_id, parts[1], field="source")
        )
    if parts[0] == "models" and len(parts) > 1:
        source_run = require_logged_model(session, workspace_id, parts[1], field="source")
        return Resolved(location, logged_model_id=parts[1], source_run_id=source_run)
    return Resolved(location)


def require_run(session: Session, workspace_id: str, run_id: str, *, field: str) -> str:
    if not run_id or len(run_id) > _MAX_ID or get_job(session, workspace_id, run_id) is None:
        raise InvalidInputError(
            f"run {run_id[:_MAX_ID]!r} does not exist in this workspace",
            code=f"invalid_{field}",
            field=field,
        )
    return run_id


def require_logged_model(
    session: Session, workspace_id: str, model_id: str, *, field: str
) -> str | None:
    """Check the logged model is this workspace's (and not deleted); its source run."""
    row = None
    if model_id and len(model_id) <= _MAX_ID:
        row = get_logged_model(session, workspace_id, model_id)
    if row is None or row.lifecycle_stage != "active":
        raise InvalidInputError(
            f"logged model {model_id[:_MAX_ID]!r} does not exist in this workspace",
            code=f"invalid_{field}",
            field=field,
        )
    return row.source_run_id


def _refused(source: str, why: str) -> InvalidInputError:
    shown = source if len(source) <= 200 else source[:197] + "..."
    return InvalidInputError(
        f"source {shown!r} is refused: {why}", code="invalid_source", field="source"
    )
