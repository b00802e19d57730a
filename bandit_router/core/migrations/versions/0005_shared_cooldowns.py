"""Deployment cooldowns shared by every process on the database: one replica that cools a
deployment down stops the others calling it too.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "br_cooldowns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment_id", sa.String(length=200), nullable=False),
        sa.Column("cooldown_until", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_br_cooldowns_deployment_id", "br_cooldowns", ["deployment_id"])
    op.create_index("ix_br_cooldowns_cooldown_until", "br_cooldowns", ["cooldown_until"])


def downgrade() -> None:
    op.drop_index("ix_br_cooldowns_cooldown_until", table_name="br_cooldowns")
    op.drop_index("ix_br_cooldowns_deployment_id", table_name="br_cooldowns")
    op.drop_table("br_cooldowns")
