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


def upgrade() -> None:
    op.create_table('br_budget_alerts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('budget_id', sa.String(length=320), nullable=False),
    sa.Column('window_start', sa.Double(), nullable=False),
    sa.Column('threshold', sa.Double(), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('budget_id', 'window_start', 'threshold')
    )
    op.create_index(op.f('ix_br_budget_alerts_created_at'), 'br_budget_alerts', ['created_at'], unique=False)
    op.create_table('br_budgets',
    sa.Column('id', sa.String(length=320), nullable=False),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('br_checkpoints',
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
    op.create_table('br_clusters',
    sa.Column('arm', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.Double(), nullable=False),
    sa.Column('tasks', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('codebooks', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('arm', 'key')
    )
    op.create_table('br_events',
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
    op.create_index(op.f('ix_br_events_arm'), 'br_events', ['arm'], unique=False)
    op.create_index(op.f('ix_br_events_created_at'), 'br_events', ['created_at'], unique=False)
    op.create_index(op.f('ix_br_events_model_key'), 'br_events', ['model_key'], unique=False)
    op.create_index(op.f('ix_br_events_status'), 'br_events', ['status'], unique=False)
    op.create_index(op.f('ix_br_events_task_hash'), 'br_events', ['task_hash'], unique=False)
    op.create_index(op.f('ix_br_events_tenant'), 'br_events', ['tenant'], unique=False)
    op.create_table('br_prices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('updated_at', sa.Double(), nullable=False),
    sa.Column('provider', sa.String(length=100), nullable=False),
    sa.Column('model', sa.String(length=200), nullable=False),
    sa.Column('input_price_per_1m', sa.Float(), nullable=True),
    sa.Column('output_price_per_1m', sa.Float(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('br_spend',
    sa.Column('scope', sa.String(length=320), nullable=False),
    sa.Column('bucket', sa.Integer(), nullable=False),
    sa.Column('reserved_usd', sa.Double(), nullable=False),
    sa.Column('spent_usd', sa.Double(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'bucket')
    )
    op.create_table('br_rewards',
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
