"""supporter.import_digest: a digest of the CSV record an import last stored in the row, so that
a re-import passes an unchanged record by without validating it again (PostgreSQL)

A trigger forgets the digest (sets it NULL) when anything else changes the row's data: an edit,
an unsubscribe, a transaction import, a rollback. The row then goes through validation again at
the next import. SQLite gets the column only: its imports do not use it.

Revision ID: 4c7d1e9a2b63
Revises: 1e22b24966d2
Create Date: 2026-11-30 19:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "4c7d1e9a2b63"
down_revision = "1e22b24966d2"
branch_labels = None
depends_on = None

# the supporter fields an import writes, as they were at this revision
FIELDS = (
    "email",
    "first_name",
    "last_name",
    "address1",
    "city",
    "state",
    "zip",
    "country",
    "phone",
    "opted_in",
    "donation_total",
)


def upgrade():
    with op.batch_alter_table("supporter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("import_digest", sa.BigInteger(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        new = ", ".join(f"NEW.{name}" for name in FIELDS)
        old = ", ".join(f"OLD.{name}" for name in FIELDS)
        op.execute(
            "CREATE OR REPLACE FUNCTION supporter_forget_import_digest() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN NEW.import_digest := NULL; RETURN NEW; END $$"
        )
        # only for an UPDATE that sets one of the fields (a touch of last_run_id alone costs
        # nothing), and WHEN is checked without calling the function: an import's own writes,
        # which set the digest or leave the data as it was, cost one comparison a row
        op.execute(
            f"CREATE TRIGGER supporter_forget_import_digest BEFORE UPDATE OF {', '.join(FIELDS)} "
            "ON supporter FOR EACH ROW "
            "WHEN (OLD.import_digest IS NOT NULL "
            "AND NEW.import_digest IS NOT DISTINCT FROM OLD.import_digest "
            f"AND ROW({new}) IS DISTINCT FROM ROW({old})) "
            "EXECUTE FUNCTION supporter_forget_import_digest()"
        )


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER supporter_forget_import_digest ON supporter")
        op.execute("DROP FUNCTION supporter_forget_import_digest()")
    with op.batch_alter_table("supporter", schema=None) as batch_op:
        batch_op.drop_column("import_digest")
