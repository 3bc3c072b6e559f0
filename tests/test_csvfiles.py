"""Reading uploaded CSV files: batches with line numbers, blank lines, resuming, and every kind
of malformed file refused with a sentence that names its line."""

import time

import pytest

from tests.conftest import no_database
from webapp.csvfiles import LINE_LIMIT, CsvProblem, check_bytes, iter_record_batches, iter_records

pytestmark = no_database

TEXT = (
    "email,note\r\n"
    "a@example.org,one\r\n"
    "\r\n"  # blank line 3
    'b@example.org,"two\r\nlines"\r\n'  # lines 4-5
    'c@example.org,"three\nmore\nlines"\n'  # lines 6-8
    "   \n"  # blank line 9
    "d@example.org,four\n"  # line 10
    "e@example.org,five\n"
)  # line 11
EXPECTED = [
    (1, ["email", "note"]),
    (2, ["a@example.org", "one"]),
    (4, ["b@example.org", "two\r\nlines"]),
    (6, ["c@example.org", "three\nmore\nlines"]),
    (10, ["d@example.org", "four"]),
    (11, ["e@example.org", "five"]),
]


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


@pytest.mark.parametrize("size", [1, 2, 5])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_lines_are_counted_alike_for_every_kind_of_line_break_inside_and_between_records(
    tmp_path, size, newline
):
    # a batch of one-line records is numbered from the reader's count alone; one holding a
    # record over several lines counts each break inside a field: \n, \r\n or a lone \r
    rows = [
        "email,note",
        "a@example.org,one",
        'b@example.org,"x\ry"',
        "",
        'c@example.org,"p\r\nq\nr"',
        "d@example.org,z",
    ]
    path = tmp_path / "breaks.csv"
    path.write_bytes(newline.join(rows).encode() + newline.encode())
    numbered = [
        (line, values[0])
        for batch in iter_record_batches(str(path), "utf-8", ",", size, skip=1)
        for line, values in batch
    ]
    assert numbered == [
        (2, "a@example.org"),
        (3, "b@example.org"),
        (6, "c@example.org"),
        (9, "d@example.org"),
    ]


@pytest.mark.parametrize("skip", [1, 2, 3, 5, 6, 9])
def test_skip_leaves_out_that_many_records_not_lines(path, skip):
    batches = list(iter_record_batches(path, "utf-8", ",", 2, skip=skip))
    assert [record for batch in batches for record in batch] == EXPECTED[skip:]
    assert all(0 < len(batch) <= 2 for batch in batches)


def problem(action) -> str:
    with pytest.raises(CsvProblem) as refused:
        action()
    return str(refused.value)


def write(tmp_path, data: bytes) -> str:
    path = tmp_path / "upload.csv"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_a_nul_byte_past_the_first_64_kb_is_refused_with_its_line(tmp_path, newline):
    rows = newline.join([b"email,first_name"] + [b"ann@example.org,Ann"] * 5000)
    path = write(tmp_path, rows + newline + b"bob@example.org,B\x00b" + newline)
    assert problem(lambda: check_bytes(path, "utf-8")).startswith("Line 5,002 holds a NUL byte (0x00)")


@pytest.mark.parametrize("at", [0, 100, (1 << 20) - 3, 1 << 20, 3 << 20])
def test_a_line_over_the_limit_is_refused_with_its_number_wherever_the_chunks_cut_it(tmp_path, at):
    # `at` bytes of short lines first, so the long line 's start falls anywhere in a chunk
    short = b"a@b.org,x\r\n" * (at // 11)
    lines = short.count(b"\n")
    path = write(tmp_path, short + b"c@d.org," + b"y" * LINE_LIMIT + b"\r\nok@e.org,z\r\n")
    assert problem(lambda: check_bytes(path, "utf-8")).startswith(f"Line {lines + 1:,} is longer than 1 MB")


def test_lines_up_to_the_limit_pass_and_so_does_a_whole_file_of_short_lines(tmp_path):
    line = b"a" * (LINE_LIMIT - 2) + b"\r\n"
    path = write(tmp_path, line * 3 + b"a" * LINE_LIMIT)
    check_bytes(path, "latin-1")


def test_a_bad_utf8_byte_is_named_with_its_line_after_a_bom_and_many_ascii_chunks(tmp_path):
    path = write(tmp_path, "\ufeffemail\n".encode() + b"a@b.org\n" * 300_000 + b"caf\xe9\n")
    assert problem(lambda: check_bytes(path, "utf-8")).startswith(
        "The file is not valid UTF-8 (line 300,002 has the byte 0xE9)"
    )
    check_bytes(path, "latin-1")


def test_a_utf8_character_cut_by_a_chunk_boundary_is_still_valid(tmp_path):
    lines = b"x" * 99 + b"\n"
    before = lines * ((1 << 20) // 100) + b"y" * ((1 << 20) % 100 - 1)  # é's 2 bytes: 1 MB - 1
    path = write(tmp_path, before + "é\n".encode() * 10)
    check_bytes(path, "utf-8")
    with open(path, "ab") as more:
        more.write(b"\xc3")  # cut off at the end
    assert problem(lambda: check_bytes(path, "utf-8")) == (
        "The file is not valid UTF-8 (it ends in the middle of a character)."
    )


def test_scanning_a_million_row_file_takes_well_under_a_second(tmp_path):
    path = write(
        tmp_path,
        b"email,first_name,city\r\n" + b"someone.somewhere@example.org,Someone,Somewhere\r\n" * 1_000_000,
    )
    started = time.perf_counter()
    check_bytes(path, "utf-8")
    assert time.perf_counter() - started < 2  # about 0.05 s: C-level searches per 1 MB chunk


@pytest.mark.parametrize(
    "text,line",
    [
        ('email,note\na@b.org,"never closed\nmore\n', 2),
        ('email,note\na@b.org,x\nb@c.org,"two\nlines",x,"opens here\nand on', 4),
        ('email,note\r\na@b.org,x\r\nb@c.org,"', 3),
    ],
)
def test_a_quote_never_closed_is_refused_with_the_line_it_opens_on(tmp_path, text, line):
    path = write(tmp_path, text.encode())
    message = problem(lambda: list(iter_record_batches(path, "utf-8", ",", 2)))
    assert message.startswith(f'The quote (") that opens a field on line {line} is never closed')
    for skip in (1, 5):  # resuming reads it too
        assert problem(lambda s=skip: list(iter_record_batches(path, "utf-8", ",", 2, skip=s))) == message


def test_a_quote_never_closed_in_a_large_file_is_refused_at_the_field_limit(tmp_path):
    text = 'email,note\na@b.org,x\nb@c.org,"opens\n' + ("y" * 999 + "\n") * 1100
    path = write(tmp_path, text.encode())
    assert problem(lambda: list(iter_records(path, "utf-8", ","))) == (
        "The record that starts on line 3 has a field of more than 1,048,576 characters "
        '(it runs on to line 1,052): is a closing quote (") missing?'
    )


@pytest.mark.parametrize(
    "text",
    [
        'email,note\na@b.org,"closed\nat the end"',
        "email,note\na@b.org,last line without a newline",
        "email,note\na@b.org,x\n\n\n",
    ],
)
def test_a_file_that_ends_cleanly_yields_every_record_and_nothing_more(tmp_path, text):
    path = write(tmp_path, text.encode())
    records = list(iter_records(path, "utf-8", ","))
    assert [line for line, _ in records] == [1, 2]
    assert all("\x00" not in value for _, values in records for value in values)
