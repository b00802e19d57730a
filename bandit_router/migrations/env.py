"""Alembic's environment for the library's tables: run by :func:`bandit_router._schema.migrate`
(which hands over the connection) or by the ``alembic`` command with ``-x url=...``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from bandit_router._schema import LIBRARY

config = context.config
target_metadata = LIBRARY.metadata()


def _ours(obj: object, name: str | None, type_: str, reflected: bool,
          compare_to: object | None) -> bool:
    """Autogenerate compares the library's tables only: the service's (API keys,
    experiments) share the database but are not the library's to drop."""
    return not (type_ == "table" and reflected and compare_to is None)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      version_table=LIBRARY.version_table, render_as_batch=True,
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
