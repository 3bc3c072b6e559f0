"""supporter: room on each page for its rows' next versions (PostgreSQL)

An import rewrites every supporter it matches, changed or not (last_run_id), and PostgreSQL
writes a new version of the row for it. With room on the row's own page that is a HOT update:
no new entry in the email and id indexes. A full page sends it elsewhere, with an entry in
both indexes, and after one full re-import the table is twice its size anyway, half of it dead
versions. fillfactor 50 keeps that room from the start: re-importing 1M unchanged rows ran at
0.75-0.8x the pace of their first import instead of 0.5x, the first import ~10% slower
(bench/import_bench.py --postgres and the same importer without RQ, 2 cores, 2026-11-30).
It applies to the pages written from now on. SQLite has no such setting: nothing changes there.

Revision ID: f3b9d2a71c60
Revises: e8a1c3f5b702
Create Date: 2026-11-30 08:20:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = 'f3b9d2a71c60'
down_revision = 'e8a1c3f5b702'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE supporter SET (fillfactor = 50)')


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER TABLE supporter RESET (fillfactor)')
