"""An index on when rewards were received: health alerts read the last 10 minutes, hour and
week of rewards on every dashboard refresh.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_br_rewards_received_at", "br_rewards", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_br_rewards_received_at", table_name="br_rewards")
