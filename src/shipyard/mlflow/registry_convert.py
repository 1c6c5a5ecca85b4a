"""Shipyard's models, versions and logged models as MLflow entities, and MLflow's spellings
(string versions, enum statuses) as Shipyard's values."""

from __future__ import annotations

from shipyard.domain.errors import InvalidInputError
from shipyard.mlflow import registry_schemas as r
from shipyard.mlflow.convert import logged_model_artifact_uri, ms
from shipyard.schemas.models import LoggedModelRead, ModelRead, ModelVersionRead

# LoggedModelStatus: names and numbers, as protobuf's JSON allows both.
_TO_STATUS: dict[str | int, str] = {
    "LOGGED_MODEL_PENDING": "PENDING",
    "LOGGED_MODEL_READY": "READY",
    "LOGGED_MODEL_UPLOAD_FAILED": "FAILED",
    1: "PENDING",
    2: "READY",
    3: "FAILED",
}
_FROM_STATUS = {"PENDING": "LOGGED_MODEL_PENDING", "READY": "LOGGED_MODEL_READY"}


def version_number(value: str | int, field: str = "version") -> int:
    """MLflow sends versions as strings ("3")."""
    text = str(value).strip()
    if not text.isdigit() or not 0 < int(text) < 2**31:
        raise InvalidInputError(
            f"version must be a positive whole number, not {text[:40]!r}",
            code="invalid_version",
            field=field,
        )
    return int(text)


def logged_model_status(value: str | int) -> str:
    key: str | int = value.upper() if isinstance(value, str) else value
    if isinstance(key, str) and key.isdigit():
        key = int(key)
    status = _TO_STATUS.get(key)
    if status is None:
        raise InvalidInputError(
            f"status must be LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED, not {value!r}",
            code="invalid_status",
            field="status",
        )
    return status


def _tags(tags: dict[str, str]) -> list[r.Tag]:
    return [r.Tag(key=k, value=v) for k, v in sorted(tags.items())]


def model_version(version: ModelVersionRead) -> r.ModelVersion:
    return r.ModelVersion(
        name=version.name,
        version=str(version.version),
        creation_timestamp=ms(version.created_at),
        last_updated_timestamp=ms(version.updated_at),
        user_id=version.created_by or "",
        current_stage=version.stage,
        description=version.description,
        source=version.source,
        run_id=version.run_id,
        status=version.status,
        status_message=version.status_message,
        tags=_tags(version.tags),
        aliases=version.aliases,
        model_id=version.logged_model_id,
    )


def registered_model(model: ModelRead) -> r.RegisteredModel:
    return r.RegisteredModel(
        name=model.name,
        creation_timestamp=ms(model.created_at),
        last_updated_timestamp=ms(model.updated_at),
        user_id=model.created_by or "",
        description=model.description,
        latest_versions=[model_version(v) for v in model.latest_versions],
        tags=_tags(model.tags),
        aliases=[r.Alias(alias=a, version=str(v)) for a, v in sorted(model.aliases.items())],
    )


def logged_model(model: LoggedModelRead) -> r.LoggedModel:
    return r.LoggedModel(
        info=r.LoggedModelInfo(
            model_id=model.id,
            experiment_id=model.experiment_id,
            name=model.name,
            creation_timestamp_ms=ms(model.created_at),
            last_updated_timestamp_ms=ms(model.updated_at),
            artifact_uri=logged_model_artifact_uri(model.id),
            status=_FROM_STATUS.get(model.status, "LOGGED_MODEL_UPLOAD_FAILED"),
            model_type=model.model_type,
            source_run_id=model.source_run_id,
            status_message=model.status_message,
            tags=_tags(model.tags),
        ),
        data=r.LoggedModelData(params=_tags(model.params)),
    )
