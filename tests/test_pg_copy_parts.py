"""The parts of the PostgreSQL import writer that need no database: the digests of records as
read, and a batch's slices joined into one write (webapp/jobtypes/pg_copy.py)."""

from __future__ import annotations

from datetime import datetime

from webapp.jobtypes.pg_copy import RecordDigests, Staged, StagedUpsert


def test_record_digests_tell_records_apart_and_fit_a_bigint():
    digests = RecordDigests(b"seed")
    records = [
        ["ann@example.org", "Ann", "Boston"],
        ["bob@example.org", "Bob", ""],
        ["ann@example.org", "Ann", "Boston"],
    ]
    texts, checkable = digests.of(records)
    assert checkable and texts[0] == texts[2] != texts[1]
    assert all(0 <= int(text) < 2**63 for text in texts)  # (supporter.import_digest is signed)
    assert RecordDigests(b"another mapping").of(records)[0][0] != texts[0]
    assert digests.of([["ann@example.org", "Ann", "Boston", ""]])[0][0] != texts[0]  # another width


def test_a_record_is_checkable_only_when_its_text_holds_one_list_of_fields():
    digests = RecordDigests(b"seed")
    # these two join alike: neither may be passed by on a stored digest
    split_one, split_two = [["a@example.org", "x\x1fy", "z"]], [["a@example.org", "x", "y\x1fz"]]
    assert digests.of(split_one)[0] == digests.of(split_two)[0]
    assert digests.of(split_one)[1] is False and digests.of(split_two)[1] is False
    assert digests.of([["a@example.org", "x"], ["b@example.org"]])[1] is False  # two widths


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


def test_a_joined_write_looks_up_all_its_emails_when_one_slice_does():
    upsert = StagedUpsert(["city"], 7, default_opted_in=True, plain_inserts=True, digests=False)
    moment = datetime(2026, 1, 1)
    listed = upsert.stage([2], ["amy@example.org"], [["A"]], moment, ["amy@example.org"])
    none = upsert.stage([3], ["bob@example.org"], [["B"]], moment, [])
    every = upsert.stage([4], ["cy@example.org"], [["C"]], moment, None)
    assert Staged.joined([listed, none]).maybe_again == ["amy@example.org"]
    assert Staged.joined([listed, none, every]).maybe_again is None
