"""MLflow 3's logged-model methods, and ``runs/outputs`` which links a run to its models.

``mlflow.<flavor>.log_model`` creates a logged model (PENDING), records it as an output of
the active run, uploads the files to the model's ``artifact_uri`` through the artifact proxy,
then finalizes it READY (or FAILED). ``register_model`` later finds it by name among the
run's experiment's logged models and registers ``models:/<model id>``.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query

from shipyard.api.authz import GuardedRoute, require
from shipyard.api.deps import Services, get_services
from shipyard.domain import actions
from shipyard.domain.errors import InvalidInputError
from shipyard.domain.principals import Principal
from shipyard.mlflow import convert as tracking_convert
from shipyard.mlflow import registry_convert as convert
from shipyard.mlflow import registry_schemas as r
from shipyard.mlflow.lookup import default_experiment, experiment_by_id
from shipyard.mlflow.paths import API_PREFIX
from shipyard.mlflow.schemas import Empty, body_of
from shipyard.schemas.models import NO_NUL, LoggedModelCreate
from shipyard.services.logged_models import Order

router = APIRouter(prefix=API_PREFIX + "/logged-models", route_class=GuardedRoute, tags=["mlflow"])
outputs = APIRouter(prefix=API_PREFIX + "/runs", route_class=GuardedRoute, tags=["mlflow"])

_MODEL_ID = Path(min_length=1, max_length=64, pattern=NO_NUL)


@router.post("")
def create_logged_model(
    workspace: str,
    body: r.CreateLoggedModel,
    principal: Principal = require(actions.MODELS_WRITE),
    services: Services = Depends(get_services),
) -> r.LoggedModelResponse:
    experiment = experiment_by_id(services, workspace, body.experiment_id)
    made = services.logged_models.create(
        principal,
        workspace,
        body_of(
            LoggedModelCreate,
            experiment_id=experiment.id,
            name=body.name or None,
            model_type=body.model_type or None,
            source_run_id=body.source_run_id or None,
            params={p.key: p.value for p in body.params},
            tags={t.key: t.value for t in body.tags},
        ),
    )
    return r.LoggedModelResponse(model=convert.logged_model(made))


@router.post("/search", dependencies=[require(actions.MODELS_READ)])
def search_logged_models(
    workspace: str, body: r.SearchLoggedModels, services: Services = Depends(get_services)
) -> r.SearchLoggedModelsResponse:
    if body.datasets or any(o.dataset_name for o in body.order_by):
        raise InvalidInputError(
            "logged models cannot be searched by dataset here: their metrics are kept with "
            "their runs",
            code="invalid_filter",
            field="datasets",
        )
    experiment_ids = [
        default_experiment(services, workspace).id
        if e == tracking_convert.DEFAULT_EXPERIMENT_ID
        else e
        for e in body.experiment_ids
    ]
    page = services.logged_models.search(
        workspace,
        experiment_ids=experiment_ids,
        filter=body.filter,
        order_by=[Order(o.field_name, o.ascending) for o in body.order_by],
        max_results=body.max_results,
        page_token=body.page_token,
    )
    return r.SearchLoggedModelsResponse(
        models=[convert.logged_model(m) for m in page.items],
        next_page_token=page.next_page_token,
    )


@router.get("/{model_id}", dependencies=[require(actions.MODELS_READ)])
def get_logged_model(
    workspace: str,
    model_id: str = _MODEL_ID,
    allow_deleted: bool = Query(False),
    services: Services = Depends(get_services),
) -> r.LoggedModelResponse:
    found = services.logged_models.get(workspace, model_id, include_deleted=allow_deleted)
    return r.LoggedModelResponse(model=convert.logged_model(found))


@router.patch("/{model_id}", dependencies=[require(actions.MODELS_WRITE)])
def finalize_logged_model(
    workspace: str,
    body: r.FinalizeLoggedModel,
    model_id: str = _MODEL_ID,
    services: Services = Depends(get_services),
) -> r.LoggedModelResponse:
    status = convert.logged_model_status(body.status)
    changed = services.logged_models.finalize(workspace, model_id, status)
    return r.LoggedModelResponse(model=convert.logged_model(changed))


@router.delete("/{model_id}", dependencies=[require(actions.MODELS_DELETE)])
def delete_logged_model(
    workspace: str, model_id: str = _MODEL_ID, services: Services = Depends(get_services)
) -> Empty:
    services.logged_models.delete(workspace, model_id)
    return Empty()


@router.patch("/{model_id}/tags", dependencies=[require(actions.MODELS_WRITE)])
def set_logged_model_tags(
    workspace: str,
    body: r.SetLoggedModelTags,
    model_id: str = _MODEL_ID,
    services: Services = Depends(get_services),
) -> r.LoggedModelResponse:
    changed = services.logged_models.set_tags(
        workspace, model_id, {t.key: t.value for t in body.tags}
    )
    return r.LoggedModelResponse(model=convert.logged_model(changed))


@router.delete("/{model_id}/tags/{tag_key:path}", dependencies=[require(actions.MODELS_WRITE)])
def delete_logged_model_tag(
    workspace: str,
    tag_key: str,
    model_id: str = _MODEL_ID,
    services: Services = Depends(get_services),
) -> Empty:
    services.logged_models.delete_tag(workspace, model_id, tag_key)
    return Empty()


@router.post("/{model_id}/params", dependencies=[require(actions.MODELS_WRITE)])
def log_logged_model_params(
    workspace: str,
    body: r.LogLoggedModelParams,
    model_id: str = _MODEL_ID,
    services: Services = Depends(get_services),
) -> Empty:
    services.logged_models.log_params(workspace, model_id, {p.key: p.value for p in body.params})
    return Empty()


@outputs.post("/outputs", dependencies=[require(actions.JOBS_WRITE)])
def log_outputs(
    workspace: str, body: r.LogOutputs, services: Services = Depends(get_services)
) -> Empty:
    services.logged_models.record_output(workspace, body.run_id, [m.model_id for m in body.models])
    return Empty()
