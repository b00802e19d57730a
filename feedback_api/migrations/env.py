"""Alembic's environment for the service's tables (API keys, experiments): run by
:func:`feedback_api.tables.migrate_service` (which hands over the connection) or by the
``alembic`` command with ``-x url=...``."""

from bandit_router.core._schema import run_env
from feedback_api.tables import SERVICE

run_env(SERVICE)
