"""planned runs take no number: run.number is NULL until a schedule's occurrence fires

Revision ID: e8a1c3f5b702
Revises: 9b3e5d2c7f14
Create Date: 2026-11-30 09:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'e8a1c3f5b702'
down_revision = '9b3e5d2c7f14'
branch_labels = None
depends_on = None

PLANNED = "run.state = 'scheduled' AND run.trigger = 'schedule' AND run.planned_for IS NOT NULL"


def upgrade():
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.alter_column('number', existing_type=sa.Integer(), nullable=True)
    # a planned occurrence that holds the job's latest number gives it back (it never ran)
    op.execute("UPDATE job SET last_run_number = last_run_number - 1 WHERE EXISTS (SELECT 1 FROM run "
               f"WHERE run.job_id = job.id AND run.number = job.last_run_number AND {PLANNED})")
    op.execute(f"UPDATE run SET number = NULL WHERE {PLANNED}")


def downgrade():
    # every run needs a number again: a planned one takes its job's next
    bind = op.get_bind()
    unnumbered = bind.execute(sa.text("SELECT id, job_id FROM run WHERE number IS NULL ORDER BY id")).all()
    for run_id, job_id in unnumbered:
        if job_id is None:
            number = bind.execute(sa.text("SELECT coalesce(max(number), 0) + 1 FROM run")).scalar_one()
        else:
            bind.execute(sa.text("UPDATE job SET last_run_number = last_run_number + 1 WHERE id = :id"),
                         {"id": job_id})
            number = bind.execute(sa.text("SELECT last_run_number FROM job WHERE id = :id"),
                                  {"id": job_id}).scalar_one()
        bind.execute(sa.text("UPDATE run SET number = :number WHERE id = :id"), {"number": number, "id": run_id})
    with op.batch_alter_table('run', schema=None) as batch_op:
        batch_op.alter_column('number', existing_type=sa.Integer(), nullable=False)
