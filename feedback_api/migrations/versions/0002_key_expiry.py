"""API keys expire and rotate: ``expires_at`` (NULL: never), and ``tenant``, the id of the
first key of a rotation chain, which owns the events, spend and event names of every key in
the chain (NULL: the key's own id, as for every key made before this revision).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("br_api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.Double(), nullable=True))
        batch.add_column(sa.Column("tenant", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("br_api_keys") as batch:
        batch.drop_column("tenant")
        batch.drop_column("expires_at")
