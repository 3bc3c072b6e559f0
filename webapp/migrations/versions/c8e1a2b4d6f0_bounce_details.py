"""Email Bounces: each bounce's type, reason and time, one row per bounce

Revision ID: c8e1a2b4d6f0
Revises: b3d5f7a9c1e2
Create Date: 2026-11-30 10:45:00

Bounces recorded before this revision kept only the recipient's bounced_at: each becomes one
bounce at that time with no reason, hard when its address is on the suppression list as a hard
bounce, soft otherwise.
"""
import sqlalchemy as sa
from alembic import op

revision = 'c8e1a2b4d6f0'
down_revision = 'b3d5f7a9c1e2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'bounce',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('recipient_id', sa.Integer(), nullable=False),
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('hard', 'soft', name='bouncekind', native_enum=False, length=20), nullable=False),
        sa.Column('reason', sa.String(length=500), nullable=False),
        sa.Column('bounced_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ['recipient_id'], ['recipient.id'], name=op.f('fk_bounce_recipient_id_recipient'), ondelete='CASCADE'
        ),
        sa.ForeignKeyConstraint(['run_id'], ['run.id'], name=op.f('fk_bounce_run_id_run'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bounce')),
    )
    with op.batch_alter_table('bounce', schema=None) as batch_op:
        batch_op.create_index('ix_bounce_run_id', ['run_id', 'id'], unique=False)
        batch_op.create_index('ix_bounce_bounced_at', ['bounced_at', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bounce_recipient_id'), ['recipient_id'], unique=False)
    op.execute(
        "INSERT INTO bounce (recipient_id, run_id, kind, reason, bounced_at) "
        "SELECT r.id, r.run_id, CASE WHEN EXISTS (SELECT 1 FROM suppression s "
        "WHERE s.email = r.email AND s.reason = 'hard_bounce') THEN 'hard' ELSE 'soft' END, '', r.bounced_at "
        "FROM recipient r WHERE r.bounced_at IS NOT NULL ORDER BY r.id"
    )


def downgrade():
    with op.batch_alter_table('bounce', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bounce_recipient_id'))
        batch_op.drop_index('ix_bounce_bounced_at')
        batch_op.drop_index('ix_bounce_run_id')
    op.drop_table('bounce')
