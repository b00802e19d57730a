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
    from .core._catalog import Catalog, ModelSpec
    from .core._config import (
        EXPLORATIONS,
        Exploration,
        PolicyConfig,
        RouterConfig,
        implied_exploration,
    )
    from .core._constraints import Constraints, RoutingConstraints
    from .core._deployment import Deployment, DeploymentStatus, LoadBalancingConfig
    from .core._embedding import (
        BatchingEmbedder,
        CachedEmbedder,
        Embedder,
        HashEmbedder,
        SentenceTransformerEmbedder,
        TimedEmbedder,
    )
    from .core._errors import (
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
    from .core._leader import LearnerLock
    from .core._logged import LoggedDecision, load_logged_decisions
    from .core._objective import Objective
    from .core._onnx import DEFAULT_EMBEDDER, EMBEDDERS, OnnxEmbedder, make_embedder
    from .core._types import Alternative, Decision, EventRecord, RewardReceipt
    from .eval.alerts import HealthAlert, fixed_model_alerts, health_alerts
    from .eval.reports import CostReport, CostRow, cost_report
    from .router._router import DEFAULT_DATABASE_URL, ERROR_KINDS, Router
    from .spend._budgets import Budget, BudgetAlert, BudgetStatus
    from .spend._prices import (
        LiteLLMPrice,
        PriceFileWatcher,
        PriceImport,
        read_litellm_prices,
    )

    SmartRouter = Router

#: where each public name lives
_LAZY: dict[str, str] = {
    "Alternative": ".core._types",
    "AuthenticationError": ".core._errors",
    "BanditRouterError": ".core._errors",
    "BatchingEmbedder": ".core._embedding",
    "Budget": ".spend._budgets",
    "BudgetAlert": ".spend._budgets",
    "BudgetExceededError": ".core._errors",
    "BudgetStatus": ".spend._budgets",
    "CachedEmbedder": ".core._embedding",
    "Catalog": ".core._catalog",
    "CatalogError": ".core._errors",
    "Constraints": ".core._constraints",
    "CostReport": ".eval.reports",
    "HealthAlert": ".eval.alerts",
    "health_alerts": ".eval.alerts",
    "fixed_model_alerts": ".eval.alerts",
    "CostRow": ".eval.reports",
    "DEFAULT_DATABASE_URL": ".router._router",
    "Decision": ".core._types",
    "Deployment": ".core._deployment",
    "DeploymentStatus": ".core._deployment",
    "DuplicateEventError": ".core._errors",
    "DuplicateRewardError": ".core._errors",
    "ERROR_KINDS": ".router._router",
    "DEFAULT_EMBEDDER": ".core._onnx",
    "EMBEDDERS": ".core._onnx",
    "EXPLORATIONS": ".core._config",
    "Embedder": ".core._embedding",
    "EventRecord": ".core._types",
    "Exploration": ".core._config",
    "HashEmbedder": ".core._embedding",
    "InvalidConstraintsError": ".core._errors",
    "InvalidInputError": ".core._errors",
    "InvalidRewardError": ".core._errors",
    "InvalidTaskError": ".core._errors",
    "LearnerLock": ".core._leader",
    "LiteLLMPrice": ".spend._prices",
    "LoadBalancingConfig": ".core._deployment",
    "LoggedDecision": ".core._logged",
    "ModelSpec": ".core._catalog",
    "NoEligibleModelError": ".core._errors",
    "Objective": ".core._objective",
    "OnnxEmbedder": ".core._onnx",
    "PayloadTooLargeError": ".core._errors",
    "PermissionDeniedError": ".core._errors",
    "PolicyConfig": ".core._config",
    "PriceFileWatcher": ".spend._prices",
    "PriceImport": ".spend._prices",
    "RewardReceipt": ".core._types",
    "RewardWindowClosedError": ".core._errors",
    "Router": ".router._router",
    "RouterConfig": ".core._config",
    "RoutingConstraints": ".core._constraints",
    "SentenceTransformerEmbedder": ".core._embedding",
    "ServiceError": ".core._errors",
    "TimedEmbedder": ".core._embedding",
    "UnknownEventError": ".core._errors",
    "UnknownModelError": ".core._errors",
    "cost_report": ".eval.reports",
    "implied_exploration": ".core._config",
    "make_embedder": ".core._onnx",
    "load_logged_decisions": ".core._logged",
    "read_litellm_prices": ".spend._prices",
}
#: the original design's names
_ALIASES = {"SmartRouter": "Router"}

__version__ = "0.1.0"


__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_EMBEDDER",
    "EMBEDDERS",
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
    "HealthAlert",
    "InvalidConstraintsError",
    "InvalidInputError",
    "InvalidRewardError",
    "InvalidTaskError",
    "LearnerLock",
    "LiteLLMPrice",
    "LoadBalancingConfig",
    "LoggedDecision",
    "ModelSpec",
    "NoEligibleModelError",
    "Objective",
    "OnnxEmbedder",
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
    "TimedEmbedder",
    "UnknownEventError",
    "UnknownModelError",
    "__version__",
    "cost_report",
    "fixed_model_alerts",
    "health_alerts",
    "implied_exploration",
    "load_logged_decisions",
    "make_embedder",
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
