"""The service's tables as bandit-router 0.1.0 made them: API keys and experiments.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def baseline_metadata() -> sa.MetaData:
    """The tables of this revision, frozen here (the models may change later): a database
    made before migrations gets those it lacks, then is stamped at this revision."""
    metadata = sa.MetaData()
    sa.Table('br_api_keys', metadata,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('revoked_at', sa.Double(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_br_api_keys_key_hash', metadata.tables['br_api_keys'].c['key_hash'], unique=True)
    sa.Table('br_experiments', metadata,
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('arms', sa.JSON(), nullable=False),
    sa.Column('shares', sa.JSON(), nullable=False),
    sa.Column('promoted', sa.String(length=64), nullable=True),
    sa.Column('stopped', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    return metadata


def upgrade() -> None:
    baseline_metadata().create_all(op.get_bind())


def downgrade() -> None:
    op.drop_table('br_experiments')
    op.drop_index(op.f('ix_br_api_keys_key_hash'), table_name='br_api_keys')
    op.drop_table('br_api_keys')
