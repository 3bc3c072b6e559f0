"""Supporter Delete: keyed hashes of deleted emails, and recipients found by supporter

Revision ID: b3d5f7a9c1e2
Revises: a7c4e2f91b38
Create Date: 2026-11-30 10:45:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'b3d5f7a9c1e2'
down_revision = 'a7c4e2f91b38'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'erased_email',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('email_hash', sa.String(length=64), nullable=False),
        sa.Column('deleted_at', sa.DateTime(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_erased_email')),
        sa.UniqueConstraint('email_hash', name=op.f('uq_erased_email_email_hash')),
    )
    with op.batch_alter_table('recipient', schema=None) as batch_op:
        batch_op.create_index('ix_recipient_supporter_id', ['supporter_id'], unique=False)


def downgrade():
    with op.batch_alter_table('recipient', schema=None) as batch_op:
        batch_op.drop_index('ix_recipient_supporter_id')
    op.drop_table('erased_email')
