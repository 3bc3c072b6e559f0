"""Email Bounces: each bounce's type, reason and time (placeholder, filled by its job type)

Revision ID: c8e1a2b4d6f0
Revises: b3d5f7a9c1e2
Create Date: 2026-11-30 10:45:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = 'c8e1a2b4d6f0'
down_revision = 'b3d5f7a9c1e2'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
