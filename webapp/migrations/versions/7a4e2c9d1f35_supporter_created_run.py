"""supporter.created_run_id: the run that added the supporter, kept by the first write of another
run (an insert leaves it empty: last_run_id says it until then), so that an ordinary user's
Supporter Delete reaches only the supporters their own imports added (it went by the last
import, which any user's import of the same email became)

Supporters stored before this revision keep their last import as the one that added them (the
best known): the column starts empty.

Revision ID: 7a4e2c9d1f35
Revises: 4c7d1e9a2b63
Create Date: 2026-12-01 01:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "7a4e2c9d1f35"
down_revision = "4c7d1e9a2b63"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("supporter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_run_id", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("supporter", schema=None) as batch_op:
        batch_op.drop_column("created_run_id")
