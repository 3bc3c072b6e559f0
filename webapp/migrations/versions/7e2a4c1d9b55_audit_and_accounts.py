"""audit entries for every action; account sessions; audit retention

Revision ID: 7e2a4c1d9b55
Revises: c4f19a2e7b30
Create Date: 2026-11-30 03:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '7e2a4c1d9b55'
down_revision = 'c4f19a2e7b30'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('object_type', sa.String(length=30), nullable=True))
        batch_op.add_column(sa.Column('object_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('object_label', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('ip', sa.String(length=64), server_default='', nullable=False))
        batch_op.alter_column('actor_id', existing_type=sa.Integer(), nullable=True)
        batch_op.alter_column('owner_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_index('ix_audit_entry_actor_id', ['actor_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_entry_action_id', ['action', 'id'], unique=False)
        batch_op.create_index('ix_audit_entry_object', ['object_type', 'object_id'], unique=False)
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('password_changed_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('account_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('audit_retention_days', sa.Integer(), server_default='365', nullable=False))


def downgrade():
    with op.batch_alter_table('account_settings', schema=None) as batch_op:
        batch_op.drop_column('audit_retention_days')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('password_changed_at')
        batch_op.drop_column('session_version')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_entry_object')
        batch_op.drop_index('ix_audit_entry_action_id')
        batch_op.drop_index('ix_audit_entry_actor_id')
        batch_op.alter_column('owner_id', existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column('actor_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('ip')
        batch_op.drop_column('object_label')
        batch_op.drop_column('object_id')
        batch_op.drop_column('object_type')
