"""What online and batch deployments check and pin the same way: the model, the scoring
script's path, and the endpoint the body names (the secrets their variables name are
checked as a job's are: services/secret_references.py).

Both kinds of deployment take Azure's ``model`` (a registered reference or an inline
``{path, type}``), ``code_configuration.scoring_script`` and ``environment_variables`` with
``${{secrets.<name>}}``; one place decides what is valid, so the two cannot drift apart.
"""

from __future__ import annotations

import posixpath
from typing import Any

from shipyard.domain.asset_uris import parse_asset_ref
from shipyard.domain.errors import InvalidInputError, ShipyardError
from shipyard.schemas.endpoints import InlineModel
from shipyard.schemas.jobs import DataInput
from shipyard.services.job_inputs import ASSET_SCHEMES, IoResolver
from shipyard.services.model_assets import ModelAssetService


def pin_model(
    models: ModelAssetService,
    io: IoResolver,
    workspace: str,
    model: str | InlineModel,
    *,
    with_location: bool,
) -> dict[str, Any]:
    """``{asset, type, uri}`` of the deployment's model: a reference pinned to its version
    (``@latest`` read now), or an inline path resolved as a job's model input is.
    ``with_location``: also where a reference's files are (the online runtime fetches them;
    a batch job takes the reference as its input)."""
    if isinstance(model, str):
        if not model.lower().startswith(ASSET_SCHEMES):
            raise InvalidInputError(
                "model must be a reference (azureml:<name>:<version>, azureml:<name>@latest) "
                "or a mapping {path, type}",
                code="invalid_reference",
                field="model",
            )
        ref = parse_asset_ref(model, field="model")
        if ref.label not in (None, "latest"):
            raise InvalidInputError(
                f"the only label is 'latest', not {ref.label!r}",
                code="invalid_reference",
                field="model",
            )
        try:
            found = models.get(workspace, ref.name, ref.version or "latest")
            uri = (
                models.location(workspace, ref.name, str(found.version)).uri
                if with_location
                else None
            )
        except ShipyardError as exc:
            exc.field = "model"  # the model services name their own fields
            raise
        return {"asset": f"{ref.name}:{found.version}", "type": found.type, "uri": uri}
    given = DataInput(type=model.type, path=model.path, mode="download")
    try:
        resolved = io.inputs(workspace, {"model": given})["model"]
    except ShipyardError as exc:
        exc.field = "model.path"
        raise
    model_type = model.type
    if resolved.get("asset"):
        name, _, version = str(resolved["asset"]).partition(":")
        model_type = models.get(workspace, name, version).type
    return {"asset": resolved.get("asset"), "type": model_type, "uri": resolved["uri"]}


def scoring_script_path(path: str) -> str:
    """The scoring script's path in the code snapshot: relative, inside it."""
    normal = posixpath.normpath(path.replace("\\", "/"))
    if path.startswith("/") or normal == ".." or normal.startswith("../") or normal == ".":
        raise InvalidInputError(
            "scoring_script is a file inside the code folder, relative to it",
            code="invalid_path",
            field="code_configuration.scoring_script",
        )
    return normal


def same_endpoint(given: str | None, endpoint: str) -> None:
    """A body's ``endpoint_name``, when given, is the one in the path."""
    if given is not None and given != endpoint:
        raise InvalidInputError(
            f"the body names endpoint {given!r}, the path {endpoint!r}",
            code="name_mismatch",
            field="endpoint_name",
        )
