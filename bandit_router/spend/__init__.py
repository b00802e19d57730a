"""Spend: budgets and pacing, the spend guard that reserves and settles them, load balancing
across deployments, and live prices. Built on :mod:`bandit_router.core` only.
"""
