"""The schema of bandit-router 0.1.0: what ``create_all`` made, with the columns schema 2
added to ``br_events`` (tenant, reserved_usd, deployment). A database made before migrations
existed is brought here (those columns added) and stamped, then upgraded like any other.

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
    sa.Table('br_budget_alerts', metadata,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('budget_id', sa.String(length=320), nullable=False),
    sa.Column('window_start', sa.Double(), nullable=False),
    sa.Column('threshold', sa.Double(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('budget_id', 'window_start', 'threshold')
    )
    sa.Index('ix_br_budget_alerts_created_at', metadata.tables['br_budget_alerts'].c['created_at'], unique=False)
    sa.Table('br_budgets', metadata,
    sa.Column('id', sa.String(length=320), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    sa.Table('br_checkpoints', metadata,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('arm', sa.String(length=64), nullable=False),
    sa.Column('reward_seq', sa.Integer(), nullable=False),
    sa.Column('learned', sa.Integer(), nullable=False),
    sa.Column('config_hash', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('policy', sa.LargeBinary(), nullable=False),
    sa.Column('memory', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    sa.Table('br_clusters', metadata,
    sa.Column('arm', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('tasks', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('codebooks', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('arm', 'key')
    )
    sa.Table('br_events', metadata,
    sa.Column('id', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('task_hash', sa.String(length=64), nullable=False),
    sa.Column('task_text', sa.Text(), nullable=True),
    sa.Column('embedder', sa.String(length=200), nullable=False),
    sa.Column('embedding', sa.LargeBinary(), nullable=False),
    sa.Column('context', sa.JSON(), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('chosen', sa.Integer(), nullable=False),
    sa.Column('model_key', sa.String(length=300), nullable=False),
    sa.Column('probability', sa.Float(), nullable=False),
    sa.Column('pmf', sa.JSON(), nullable=False),
    sa.Column('cost_weight', sa.Float(), nullable=False),
    sa.Column('latency_weight', sa.Float(), nullable=False),
    sa.Column('input_tokens', sa.Integer(), nullable=False),
    sa.Column('reference_key', sa.String(length=300), nullable=False),
    sa.Column('reference_cost_usd', sa.Float(), nullable=False),
    sa.Column('constraints', sa.JSON(), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('arm', sa.String(length=64), nullable=False),
    sa.Column('tenant', sa.String(length=128), nullable=True),
    sa.Column('reserved_usd', sa.Double(), nullable=True),
    sa.Column('deployment', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    sa.Index('ix_br_events_arm', metadata.tables['br_events'].c['arm'], unique=False)
    sa.Index('ix_br_events_created_at', metadata.tables['br_events'].c['created_at'], unique=False)
    sa.Index('ix_br_events_model_key', metadata.tables['br_events'].c['model_key'], unique=False)
    sa.Index('ix_br_events_status', metadata.tables['br_events'].c['status'], unique=False)
    sa.Index('ix_br_events_task_hash', metadata.tables['br_events'].c['task_hash'], unique=False)
    sa.Index('ix_br_events_tenant', metadata.tables['br_events'].c['tenant'], unique=False)
    sa.Table('br_prices', metadata,
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('input_price_per_1m', sa.Float(), nullable=True),
    sa.Column('output_price_per_1m', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    sa.Table('br_spend', metadata,
    sa.Column('scope', sa.String(length=320), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('reserved_usd', sa.Double(), nullable=False),
    sa.Column('spent_usd', sa.Double(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'bucket')
    )
    sa.Table('br_rewards', metadata,
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=False),
    sa.Column('received_at', sa.Double(), nullable=False),
    sa.Column('quality', sa.Float(), nullable=False),
    sa.Column('cost_usd', sa.Float(), nullable=False),
    sa.Column('latency_s', sa.Float(), nullable=True),
    sa.Column('output_tokens', sa.Integer(), nullable=True),
    sa.Column('error', sa.String(length=64), nullable=True),
    sa.Column('reward', sa.Float(), nullable=False),
    sa.Column('is_default', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['event_id'], ['br_events.id'], ),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('event_id')
    )
    return metadata


def upgrade() -> None:
    baseline_metadata().create_all(op.get_bind())


def downgrade() -> None:
    op.drop_table('br_rewards')
    op.drop_table('br_spend')
    op.drop_table('br_prices')
    op.drop_index(op.f('ix_br_events_tenant'), table_name='br_events')
    op.drop_index(op.f('ix_br_events_task_hash'), table_name='br_events')
    op.drop_index(op.f('ix_br_events_status'), table_name='br_events')
    op.drop_index(op.f('ix_br_events_model_key'), table_name='br_events')
    op.drop_index(op.f('ix_br_events_created_at'), table_name='br_events')
    op.drop_index(op.f('ix_br_events_arm'), table_name='br_events')
    op.drop_table('br_events')
    op.drop_table('br_clusters')
    op.drop_table('br_checkpoints')
    op.drop_table('br_budgets')
    op.drop_index(op.f('ix_br_budget_alerts_created_at'), table_name='br_budget_alerts')
    op.drop_table('br_budget_alerts')
