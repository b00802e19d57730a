"""Alembic's environment for the library's tables: run by :func:`bandit_router.core._schema.migrate`
(which hands over the connection) or by the ``alembic`` command with ``-x url=...``."""

from bandit_router.core._schema import LIBRARY, run_env

run_env(LIBRARY)
