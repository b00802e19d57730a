"""The core: deciding and learning, with no knowledge of spend, the router or evaluation.

The shared types (errors, decisions, constraints, the catalog, the settings, deployments),
the objective (the reward formula), the feature schema and scoring, the embedding, the task
memory (FAISS), the learner and its policies (Vowpal Wabbit), and the event store
(SQLAlchemy, with Alembic migrations). Nothing here imports :mod:`bandit_router.spend`,
:mod:`bandit_router.router` or :mod:`bandit_router.eval`; ``tests/test_layers.py`` checks it.
The public names are re-exported by :mod:`bandit_router`.
"""
