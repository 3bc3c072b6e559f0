"""campaign launch run, a run's origin, the job queue's outage

Revision ID: 5b1e0c7a9d21
Revises: 394cc3ad5b8f
Create Date: 2026-11-30 02:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5b1e0c7a9d21'
down_revision = '394cc3ad5b8f'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.add_column(sa.Column('launch_run_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_campaign_launch_run', 'run', ['launch_run_id'], ['id'],
                                    ondelete='SET NULL')
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.add_column(sa.Column('origin_run_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_run_origin_run', 'run', ['origin_run_id'], ['id'],
                                    ondelete='SET NULL')
    with op.batch_alter_table('account_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('queue_down_since', sa.DateTime(), nullable=True))
    # a campaign launched before this revision: its latest run is its launch
    op.execute("UPDATE campaign SET launch_run_id = (SELECT max(run.id) FROM run "
               "WHERE run.job_id = campaign.job_id) WHERE status != 'draft'")


def downgrade():
    with op.batch_alter_table('account_settings', schema=None) as batch_op:
        batch_op.drop_column('queue_down_since')
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.drop_constraint('fk_run_origin_run', type_='foreignkey')
        batch_op.drop_column('origin_run_id')
    with op.batch_alter_table('campaign', schema=None) as batch_op:
        batch_op.drop_constraint('fk_campaign_launch_run', type_='foreignkey')
        batch_op.drop_column('launch_run_id')
