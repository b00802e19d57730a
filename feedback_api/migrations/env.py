"""Alembic's environment for the service's tables (API keys, experiments): run by
:func:`feedback_api.tables.migrate_service` (which hands over the connection) or by the
``alembic`` command with ``-x url=...``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from feedback_api.tables import SERVICE

config = context.config
target_metadata = SERVICE.metadata()


def _ours(obj: object, name: str | None, type_: str, reflected: bool,
          compare_to: object | None) -> bool:
    """Autogenerate compares the service's tables only: the library's share the database
    but are not the service's to drop."""
    return not (type_ == "table" and reflected and compare_to is None)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      version_table=SERVICE.version_table, render_as_batch=True,
                      compare_type=True, include_object=_ours)
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # the alembic command line: alembic -x url=sqlite:///bandit_router.db upgrade head
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url")
    if not url:
        raise SystemExit("give the database: alembic -x url=<SQLAlchemy URL> ...")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
