"""The model list (OpenAI's format, any key) and live price updates (admin)."""

from __future__ import annotations

from fastapi import APIRouter, Path

from bandit_router import CatalogError, UnknownModelError

from ..deps import AdminKey, ClientKey, ExperimentsDep, RouterDep
from ..schemas import ErrorOut, ListedModelOut, ModelListOut, ModelOut, PricingIn
from .gateway import AUTO, PREFIX

router = APIRouter(prefix="/v1/models", tags=["catalog"])

_ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
           422: {"model": ErrorOut}}


@router.get("", response_model=ModelListOut, responses=_ERRORS)  # type: ignore[arg-type]
def list_models(_: ClientKey, lib: RouterDep, experiments: ExperimentsDep) -> ModelListOut:
    """OpenAI's model list (what the OpenAI SDKs' ``models.list()`` reads): the router
    itself (``bandit-router/auto``, the gateway's routed model), each experiment
    (``bandit-router/<name>``) and, while it runs, each of its arms
    (``bandit-router/<name>/<arm>``), then
    every catalog model by ``provider/model``, with its entry and current prices under
    ``catalog``."""
    routed = [AUTO[0]]
    for name in experiments.names():
        experiment = experiments.get(name)[0]
        live = experiment.arms if experiment.promoted is None else ()  # else one arm serves
        routed += [f"{PREFIX}/{name}", *(f"{PREFIX}/{name}/{arm}" for arm in live)]
    return ModelListOut(data=[
        *(ListedModelOut(id=model, owned_by="bandit-router") for model in routed),
        *(ListedModelOut(id=spec.key, owned_by=spec.provider,
                         catalog=ModelOut(**spec.to_dict())) for spec in lib.catalog)])


@router.put("/{model:path}/pricing", response_model=ModelOut,
            responses=_ERRORS)  # type: ignore[arg-type]
def update_pricing(body: PricingIn, _: AdminKey, lib: RouterDep,
                   model: str = Path(..., min_length=1, max_length=300)) -> ModelOut:
    """Change a model's prices; stored, and in effect from the next decision. Name the model
    ``name`` or ``provider/name``."""
    if "/" in model and body.provider is None:
        provider, name = model.split("/", 1)
    else:
        name = model
        matches = [s for s in lib.catalog if s.model == name
                   and (body.provider is None or s.provider == body.provider)]
        if not matches:
            raise UnknownModelError(f"model {model!r} is not in the catalog")
        if len(matches) > 1:
            raise CatalogError(f"model {name!r} is served by several providers; "
                               "set 'provider' or use provider/model")
        provider = matches[0].provider
    change = body.model_dump(exclude_none=True, exclude={"provider"})
    lib.update_pricing(provider, {name: change})
    return ModelOut(**lib.catalog.find(provider, name).to_dict())
