"""Supporter Delete: keyed hashes of deleted emails (placeholder, filled by its job type)

Revision ID: b3d5f7a9c1e2
Revises: a7c4e2f91b38
Create Date: 2026-11-30 10:45:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = 'b3d5f7a9c1e2'
down_revision = 'a7c4e2f91b38'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
