"""a group's steps in their own table (group, position, job), out of the group job's params

Revision ID: 2e9f325a4015
Revises: 7e2a4c1d9b55
Create Date: 2026-11-30 03:50:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '2e9f325a4015'
down_revision = '7e2a4c1d9b55'
branch_labels = None
depends_on = None

job = sa.table('job', sa.column('id', sa.Integer()), sa.column('job_type', sa.String()),
               sa.column('params', sa.JSON()))
group_step = sa.table('group_step', sa.column('group_id', sa.Integer()),
                      sa.column('position', sa.Integer()), sa.column('job_id', sa.Integer()))


def upgrade():
    op.create_table('group_step',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['job.id'], name=op.f('fk_group_step_group_id_job'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], name=op.f('fk_group_step_job_id_job'),
                            ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_group_step')),
    sa.UniqueConstraint('group_id', 'position', name=op.f('uq_group_step_group_id'))
    )
    with op.batch_alter_table('group_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_group_step_job_id'), ['job_id'], unique=False)

    # every group's params["steps"] become rows (ids of jobs that no longer exist are left out)
    conn = op.get_bind()
    existing = set(conn.execute(sa.select(job.c.id)).scalars())
    groups = conn.execute(sa.select(job.c.id, job.c.params)
                          .where(job.c.job_type == 'job_group')).all()
    for group_id, params in groups:
        params = dict(params or {})
        steps = [s for s in params.pop('steps', None) or [] if isinstance(s, int) and s in existing]
        if steps:
            conn.execute(group_step.insert(), [
                {'group_id': group_id, 'position': n, 'job_id': s}
                for n, s in enumerate(steps, start=1)])
        conn.execute(job.update().where(job.c.id == group_id).values(params=params))


def downgrade():
    conn = op.get_bind()
    rows = conn.execute(sa.select(group_step.c.group_id, group_step.c.job_id)
                        .order_by(group_step.c.group_id, group_step.c.position)).all()
    steps = {}
    for group_id, job_id in rows:
        steps.setdefault(group_id, []).append(job_id)
    groups = conn.execute(sa.select(job.c.id, job.c.params)
                          .where(job.c.job_type == 'job_group')).all()
    for group_id, params in groups:
        params = {**(params or {}), 'steps': steps.get(group_id, [])}
        conn.execute(job.update().where(job.c.id == group_id).values(params=params))

    with op.batch_alter_table('group_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_group_step_job_id'))

    op.drop_table('group_step')
