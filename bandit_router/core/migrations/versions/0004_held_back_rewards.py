"""Rewards held back from learning: stored, settled and reported, not learned, because their
tenant was past ``RouterConfig.learn_rate_per_tenant_per_min``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("br_rewards") as batch:
        batch.add_column(sa.Column("held_back", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("br_rewards") as batch:
        batch.drop_column("held_back")
