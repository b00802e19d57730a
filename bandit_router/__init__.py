"""bandit-router: route each LLM request to the model that answers it best for its cost,
learning online from feedback.

>>> from bandit_router import Router, Constraints   # doctest: +SKIP
>>> router = Router()                                # SQLite file, bundled catalog, MiniLM
>>> d = router.select("Translate 'Hello' to French", constraints=Constraints(max_cost_usd=1e-4))
>>> router.reward(d.event_id, quality=0.92, cost_usd=0.00004, latency_s=0.8)
"""

# The names below are imported on first use (PEP 562), so that ``import bandit_router.client``
# (httpx and the shared types) does not load Vowpal Wabbit, FAISS, SQLAlchemy or torch.
import importlib as _importlib
import typing as _typing

if _typing.TYPE_CHECKING:
    from ._budgets import Budget, BudgetAlert, BudgetStatus
    from ._catalog import Catalog, ModelSpec
    from ._config import EXPLORATIONS, Exploration, PolicyConfig, RouterConfig, implied_exploration
    from ._constraints import Constraints, RoutingConstraints
    from ._deployment import Deployment, DeploymentStatus, LoadBalancingConfig
    from ._embedding import (
        BatchingEmbedder,
        CachedEmbedder,
        Embedder,
        HashEmbedder,
        SentenceTransformerEmbedder,
    )
    from ._errors import (
        AuthenticationError,
        BanditRouterError,
        BudgetExceededError,
        CatalogError,
        DuplicateEventError,
        DuplicateRewardError,
        InvalidConstraintsError,
        InvalidInputError,
        InvalidRewardError,
        InvalidTaskError,
        NoEligibleModelError,
        PayloadTooLargeError,
        PermissionDeniedError,
        RewardWindowClosedError,
        ServiceError,
        UnknownEventError,
        UnknownModelError,
    )
    from ._logged import LoggedDecision, load_logged_decisions
    from ._objective import Objective
    from ._prices import (
        LiteLLMPrice,
        PriceFileWatcher,
        PriceImport,
        read_litellm_prices,
    )
    from ._router import DEFAULT_DATABASE_URL, ERROR_KINDS, Router
    from ._types import Alternative, Decision, EventRecord, RewardReceipt
    from .reports import CostReport, CostRow, cost_report

    SmartRouter = Router

#: where each public name lives
_LAZY: dict[str, str] = {
    "Alternative": "._types",
    "AuthenticationError": "._errors",
    "BanditRouterError": "._errors",
    "BatchingEmbedder": "._embedding",
    "Budget": "._budgets",
    "BudgetAlert": "._budgets",
    "BudgetExceededError": "._errors",
    "BudgetStatus": "._budgets",
    "CachedEmbedder": "._embedding",
    "Catalog": "._catalog",
    "CatalogError": "._errors",
    "Constraints": "._constraints",
    "CostReport": ".reports",
    "CostRow": ".reports",
    "DEFAULT_DATABASE_URL": "._router",
    "Decision": "._types",
    "Deployment": "._deployment",
    "DeploymentStatus": "._deployment",
    "DuplicateEventError": "._errors",
    "DuplicateRewardError": "._errors",
    "ERROR_KINDS": "._router",
    "EXPLORATIONS": "._config",
    "Embedder": "._embedding",
    "EventRecord": "._types",
    "Exploration": "._config",
    "HashEmbedder": "._embedding",
    "InvalidConstraintsError": "._errors",
    "InvalidInputError": "._errors",
    "InvalidRewardError": "._errors",
    "InvalidTaskError": "._errors",
    "LiteLLMPrice": "._prices",
    "LoadBalancingConfig": "._deployment",
    "LoggedDecision": "._logged",
    "ModelSpec": "._catalog",
    "NoEligibleModelError": "._errors",
    "Objective": "._objective",
    "PayloadTooLargeError": "._errors",
    "PermissionDeniedError": "._errors",
    "PolicyConfig": "._config",
    "PriceFileWatcher": "._prices",
    "PriceImport": "._prices",
    "RewardReceipt": "._types",
    "RewardWindowClosedError": "._errors",
    "Router": "._router",
    "RouterConfig": "._config",
    "RoutingConstraints": "._constraints",
    "SentenceTransformerEmbedder": "._embedding",
    "ServiceError": "._errors",
    "UnknownEventError": "._errors",
    "UnknownModelError": "._errors",
    "cost_report": ".reports",
    "implied_exploration": "._config",
    "load_logged_decisions": "._logged",
    "read_litellm_prices": "._prices",
}
#: the original design's names
_ALIASES = {"SmartRouter": "Router"}

__version__ = "0.1.0"


__all__ = [
    "DEFAULT_DATABASE_URL",
    "ERROR_KINDS",
    "EXPLORATIONS",
    "Alternative",
    "AuthenticationError",
    "BanditRouterError",
    "BatchingEmbedder",
    "Budget",
    "BudgetAlert",
    "BudgetExceededError",
    "BudgetStatus",
    "CachedEmbedder",
    "Catalog",
    "CatalogError",
    "Constraints",
    "CostReport",
    "CostRow",
    "Decision",
    "Deployment",
    "DeploymentStatus",
    "DuplicateEventError",
    "DuplicateRewardError",
    "Embedder",
    "EventRecord",
    "Exploration",
    "HashEmbedder",
    "InvalidConstraintsError",
    "InvalidInputError",
    "InvalidRewardError",
    "InvalidTaskError",
    "LiteLLMPrice",
    "LoadBalancingConfig",
    "LoggedDecision",
    "ModelSpec",
    "NoEligibleModelError",
    "Objective",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PolicyConfig",
    "PriceFileWatcher",
    "PriceImport",
    "RewardReceipt",
    "RewardWindowClosedError",
    "Router",
    "RouterConfig",
    "RoutingConstraints",
    "SentenceTransformerEmbedder",
    "ServiceError",
    "SmartRouter",
    "UnknownEventError",
    "UnknownModelError",
    "__version__",
    "cost_report",
    "implied_exploration",
    "load_logged_decisions",
    "read_litellm_prices",
]


def __getattr__(name: str) -> _typing.Any:
    target = _ALIASES.get(name, name)
    module = _LAZY.get(target)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), target)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
