"""The parts of the PostgreSQL import writer that need no database: the filter of emails met
before, and a batch's slices joined into one write (webapp/jobtypes/pg_copy.py)."""

from __future__ import annotations

from datetime import datetime

from webapp.jobtypes.pg_copy import SeenEmails, Staged, StagedUpsert


def test_an_email_met_in_an_earlier_slice_is_always_reported():
    seen = SeenEmails(resumed=False)
    first = [f"p{i}@example.org" for i in range(5_000)]
    assert len(seen.add(first)) < 50  # only hash collisions of distinct emails, rarely
    later = [f"q{i}@example.org" for i in range(5_000)] + first[::100]
    maybe = seen.add(later)
    assert set(first[::100]) <= set(maybe)
    assert seen.add([]) == []
    assert seen.add(["p1@example.org"]) == ["p1@example.org"]


def test_a_resumed_import_may_meet_every_email_again():
    emails = ["a@example.org", "b@example.org"]
    assert SeenEmails(resumed=True).add(emails) == emails


def _staged(upsert: StagedUpsert, lines: list[int], emails: list[str], moment: datetime) -> Staged:
    return upsert.stage(lines, emails, [[email[:1].upper() for email in emails]], moment)


def test_slices_are_joined_in_email_order_unless_an_email_is_in_two():
    upsert = StagedUpsert(["city"], 7, default_opted_in=True, plain_inserts=True, digests=False)
    early, late = datetime(2026, 1, 1), datetime(2026, 1, 2)
    one = _staged(upsert, [2, 3], ["zed@example.org", "amy@example.org"], early)
    two = _staged(upsert, [4, 5], ["bob@example.org", "cy@example.org"], late)
    assert one.records == ["amy@example.org\tA", "zed@example.org\tZ"]

    joined = Staged.joined([one, two])
    assert joined is not None
    assert joined.text() == "amy@example.org\tA\nbob@example.org\tB\ncy@example.org\tC\nzed@example.org\tZ\n"
    assert joined.lines == [2, 3, 4, 5]  # file order, for the log
    assert joined.emails == ["zed@example.org", "amy@example.org", "bob@example.org", "cy@example.org"]
    assert joined.now == late

    again = _staged(upsert, [6], ["amy@example.org"], late)
    assert Staged.joined([one, again]) is None  # written one after the other instead
