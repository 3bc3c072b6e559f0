"""Reading uploaded CSV files in batches: line numbers, blank lines, resuming."""

import pytest

from webapp.csvfiles import iter_record_batches, iter_records

TEXT = ('email,note\r\n'
        'a@example.org,one\r\n'
        '\r\n'                                    # blank line 3
        'b@example.org,"two\r\nlines"\r\n'        # lines 4-5
        'c@example.org,"three\nmore\nlines"\n'    # lines 6-8
        '   \n'                                   # blank line 9
        'd@example.org,four\n'                    # line 10
        'e@example.org,five\n')                   # line 11
EXPECTED = [(1, ["email", "note"]), (2, ["a@example.org", "one"]),
            (4, ["b@example.org", "two\r\nlines"]), (6, ["c@example.org", "three\nmore\nlines"]),
            (10, ["d@example.org", "four"]), (11, ["e@example.org", "five"])]


@pytest.fixture
def path(tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes(TEXT.encode())
    return str(path)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 100])
def test_batches_number_records_by_their_first_line_and_leave_out_blank_lines(path, size):
    # a batch is `size` records read; blank lines among them make it shorter
    batches = list(iter_record_batches(path, "utf-8", ",", size))
    assert all(0 < len(batch) <= size for batch in batches)
    assert [record for batch in batches for record in batch] == EXPECTED
    assert list(iter_records(path, "utf-8", ",")) == EXPECTED


@pytest.mark.parametrize("skip", [1, 2, 3, 5, 6, 9])
def test_skip_leaves_out_that_many_records_not_lines(path, skip):
    batches = list(iter_record_batches(path, "utf-8", ",", 2, skip=skip))
    assert [record for batch in batches for record in batch] == EXPECTED[skip:]
    assert all(0 < len(batch) <= 2 for batch in batches)
