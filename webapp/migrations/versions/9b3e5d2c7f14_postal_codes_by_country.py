"""postal codes by country: supporter.country, a wider supporter.zip, the account's default country

Revision ID: 9b3e5d2c7f14
Revises: 2e9f325a4015
Create Date: 2026-11-30 05:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '9b3e5d2c7f14'
down_revision = '2e9f325a4015'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('supporter', schema=None) as batch_op:
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.alter_column('zip', existing_type=sa.String(length=10), type_=sa.String(length=20),
                              existing_nullable=True)
    with op.batch_alter_table('account_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('default_country', sa.String(length=2), server_default='US',
                                      nullable=False))


def downgrade():
    # a postal code longer than 10 characters (free text) is cut to fit the old column
    op.execute("UPDATE supporter SET zip = substr(zip, 1, 10) WHERE length(zip) > 10")
    with op.batch_alter_table('account_settings', schema=None) as batch_op:
        batch_op.drop_column('default_country')
    with op.batch_alter_table('supporter', schema=None) as batch_op:
        batch_op.alter_column('zip', existing_type=sa.String(length=20), type_=sa.String(length=10),
                              existing_nullable=True)
        batch_op.drop_column('country')
