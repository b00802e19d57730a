"""The router: :class:`~bandit_router.Router` puts the core (decide, learn, remember, log) and
spend (budgets, deployments, prices) together behind ``select()`` and ``reward()``.
"""
