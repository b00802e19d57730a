"""Checkpoints carry a manifest of what they were written with (checkpoint format 2), so a
router says which setting differs when it cannot use one; format 1's rows keep NULL and are
still judged by their hash.

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
    with op.batch_alter_table("br_checkpoints") as batch:
        batch.add_column(sa.Column("manifest", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("br_checkpoints") as batch:
        batch.drop_column("manifest")
