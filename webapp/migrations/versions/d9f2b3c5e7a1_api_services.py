"""No schema change: Import/Export Service and the API need no tables of their own (a marker in
the chain, kept so that a database already at this revision still upgrades)

Revision ID: d9f2b3c5e7a1
Revises: c8e1a2b4d6f0
Create Date: 2026-11-30 10:45:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = 'd9f2b3c5e7a1'
down_revision = 'c8e1a2b4d6f0'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
