"""An import's writes on PostgreSQL: each slice of validated records is streamed with COPY into a
temporary staging table, then upserted into supporter from it by one statement.

What it buys: one round trip per statement instead of one per row (psycopg's executemany);
bench/import_bench.py --postgres measures it against a plain COPY of the same rows.

The statement keeps the rules of Importer.upsert: a new email is inserted, a stored one updated
when a value changes (an empty cell keeps what is stored) and otherwise only touched
(last_run_id), an email stored earlier by this same run is reported back so that the importer
logs it, and another import storing one of these emails meanwhile is never a unique-key failure:
that row is merged on a second pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from webapp.models.people import Supporter

STAGE = "conveyor_import_stage"
PASSES = 5  # statements per slice at most: a second one only when another import raced us


@dataclass
class Written:
    """What one slice's upsert did."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    again: list[tuple[int, str]] = field(default_factory=list)  # (line, email) stored earlier by this run


class StagedUpsert:
    """COPY a slice into the staging table, then one INSERT … ON CONFLICT / UPDATE from it."""

    def __init__(self, names: list[str], run_id: int, *, default_opted_in: bool) -> None:
        self.run_id = run_id
        table = Supporter.__table__
        dialect = postgresql.dialect()
        stage_columns = ["line integer", "email text"] + [
            f"{name} {table.c[name].type.compile(dialect=dialect)}" for name in names
        ]
        # ON COMMIT DROP: the table lives as long as the batch's transaction, whichever pooled
        # connection the next batch gets; created in this transaction, TRUNCATE empties it in place
        self.prepare_sql = (
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} ({', '.join(stage_columns)}) ON COMMIT DROP; "
            f"TRUNCATE {STAGE}"
        )
        self.copy_sql = f"COPY {STAGE} (line, email{''.join(', ' + name for name in names)}) FROM STDIN"

        insert_columns = ["email", *names, "last_run_id", "created_at", "updated_at"]
        values = ["s.email", *(f"s.{name}" for name in names), "%(run)s", "%(now)s", "%(now)s"]
        if default_opted_in:
            insert_columns.append("opted_in")
            values.append("false")
        merged = [f"COALESCE(s.{name}, o.{name})" for name in names]
        # as Importer.merge decides: the merged values against the stored ones
        changed = (
            f"ROW({', '.join(merged)}) IS DISTINCT FROM ROW({', '.join('o.' + name for name in names)})"
            if names
            else "false"
        )
        sets = [f"{name} = {value}" for name, value in zip(names, merged, strict=True)]
        sets += [
            "last_run_id = %(run)s",
            f"updated_at = CASE WHEN {changed} THEN %(now)s ELSE o.updated_at END",
        ]

        def insert(where: str, returning: str) -> str:
            return (
                f"INSERT INTO supporter ({', '.join(insert_columns)}) "
                f"SELECT {', '.join(values)} FROM {STAGE} s {where} ORDER BY s.line "
                f"ON CONFLICT (email) DO NOTHING RETURNING {returning}"
            )

        def update(where: str) -> str:
            # o is the row as the statement found it (its values decide changed and again); the
            # row is updated by its ctid: a row another transaction changed meanwhile is left out
            # (its new version has another ctid) and merged again by the next pass
            return (
                f"UPDATE supporter t SET {', '.join(sets)} "
                f"FROM {STAGE} s JOIN supporter o ON o.email = s.email WHERE t.ctid = o.ctid {where} "
                f"RETURNING s.line, s.email, {changed} AS changed, "
                "o.last_run_id IS NOT DISTINCT FROM %(run)s AS again"
            )

        counts = (
            "SELECT (SELECT count(*) FROM inserted), count(*) FILTER (WHERE changed), "
            "count(*) FILTER (WHERE NOT changed), "
            "array_agg(line ORDER BY line) FILTER (WHERE again), "
            "array_agg(email ORDER BY line) FILTER (WHERE again) FROM updated"
        )
        # one statement, two orders: the sub-statements of a WITH see the table as it was
        # before the statement, so neither touches a row the other wrote, and whichever comes
        # second only looks at the records the first did not store. A slice of mostly new
        # emails inserts first (no lookup for them), one of mostly stored emails updates first
        # (no attempted insert for them)
        # a record with an empty cell for a column that cannot be empty (opted_in) is an update,
        # or else a failure as on SQLite: it waits for the update, never meets a stored row's
        # key as an insert first (PostgreSQL refuses the empty value before it sees the key)
        complete = " AND ".join(f"s.{name} IS NOT NULL" for name in names if not table.c[name].nullable)
        self.insert_first_sql = (
            f"WITH inserted AS ({insert(f'WHERE {complete}' if complete else '', 'email')}), "
            f"updated AS ({update('AND NOT EXISTS (SELECT FROM inserted i WHERE i.email = s.email)')}) "
            f"{counts}"
        )
        self.update_first_sql = (
            f"WITH updated AS ({update('')}), "
            f"inserted AS ({insert('WHERE NOT EXISTS (SELECT FROM updated u WHERE u.line = s.line)', '1')}) "
            f"{counts}"
        )
        # the records the passes before left out: those another import stored (or changed)
        # after this statement's snapshot; every row this run wrote already has its id
        self.again_sql = (
            f"WITH updated AS ({update('AND o.last_run_id IS DISTINCT FROM %(run)s')}), "
            f"inserted AS ({insert('WHERE NOT EXISTS (SELECT FROM updated u WHERE u.line = s.line)', '1')}) "
            f"{counts}"
        )
        self.insert_first = True

    def write(
        self, connection: Any, lines: list[int], emails: list[str], columns: list[list[Any]], now: datetime
    ) -> Written:
        """Upsert one slice (unique emails) through `connection` (psycopg's, in the session's
        open transaction); return what it did. A database error is raised as SQLAlchemy raises
        it (the runner words its kind)."""
        params = {"run": self.run_id, "now": now}
        written = Written()
        try:
            with connection.cursor() as cursor:
                cursor.execute(self.prepare_sql)
                with cursor.copy(self.copy_sql) as copy:
                    for row in zip(lines, emails, *columns, strict=True):
                        copy.write_row(row)
                statement = self.insert_first_sql if self.insert_first else self.update_first_sql
                for _ in range(PASSES):
                    cursor.execute(statement, params)
                    created, updated, unchanged, again_lines, again_emails = cursor.fetchone()
                    written.created += created
                    written.updated += updated
                    written.unchanged += unchanged
                    written.again += zip(again_lines or (), again_emails or (), strict=True)
                    if written.created + written.updated + written.unchanged == len(emails):
                        break
                    statement = self.again_sql
                else:
                    span = f"{lines[0]}–{lines[-1]}"
                    raise RuntimeError(f"supporters kept changing while lines {span} were imported")
        except psycopg.Error as error:
            raise DBAPIError.instance(None, params, error, psycopg.Error) from error
        self.insert_first = written.created * 2 >= len(emails)
        return written
