"""bandit-router: route each LLM request to the model that answers it best for its cost,
learning online from feedback.

>>> from bandit_router import Router, Constraints   # doctest: +SKIP
>>> router = Router()                                # SQLite file, bundled catalog, MiniLM
>>> d = router.select("Translate 'Hello' to French", constraints=Constraints(max_cost_usd=1e-4))
>>> router.reward(d.event_id, quality=0.92, cost_usd=0.00004, latency_s=0.8)
"""

from ._budgets import Budget, BudgetAlert, BudgetStatus
from ._catalog import Catalog, ModelSpec
from ._config import EXPLORATIONS, Exploration, PolicyConfig, RouterConfig, implied_exploration
from ._constraints import Constraints, RoutingConstraints
from ._deployments import Deployment, DeploymentStatus, LoadBalancingConfig
from ._embedding import (
    BatchingEmbedder,
    CachedEmbedder,
    Embedder,
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
from ._prices import (
    LiteLLMPrice,
    PriceFileWatcher,
    PriceImport,
    read_litellm_prices,
)
from ._router import DEFAULT_DATABASE_URL, ERROR_KINDS, Router
from ._types import Alternative, Decision, EventRecord, RewardReceipt
from .reports import CostReport, CostRow, cost_report

__version__ = "0.1.0"

#: :class:`Router` under the original design's name
SmartRouter = Router

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
    "InvalidConstraintsError",
    "InvalidInputError",
    "InvalidRewardError",
    "InvalidTaskError",
    "LiteLLMPrice",
    "LoadBalancingConfig",
    "LoggedDecision",
    "ModelSpec",
    "NoEligibleModelError",
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
