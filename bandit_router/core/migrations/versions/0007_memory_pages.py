"""A compact memory's codes in sealed pages: a restart with a million remembered tasks files
them instead of reading every task's embedding back from the event log.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "br_memory_pages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("arm", sa.String(length=64), nullable=False),
        sa.Column("code_key", sa.String(length=64), nullable=False),
        sa.Column("first_seq", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_br_memory_pages_arm", "br_memory_pages", ["arm"])


def downgrade() -> None:
    op.drop_index("ix_br_memory_pages_arm", table_name="br_memory_pages")
    op.drop_table("br_memory_pages")
