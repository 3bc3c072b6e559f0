"""Reading uploaded CSV files safely: encoding checks, delimiter detection and a preview."""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import attrgetter

ENCODINGS = {"utf-8": "utf-8-sig", "latin-1": "latin-1"}  # utf-8-sig accepts a BOM or none
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_BINARY_MAGIC = (b"PK\x03\x04", b"%PDF", b"\xd0\xcf\x11\xe0", b"\x89PNG", b"GIF8", b"\xff\xd8\xff")

csv.field_size_limit(1024 * 1024)


class CsvProblem(ValueError):
    """An uploaded file that cannot be imported, with a message for the person who sent it."""


@dataclass
class CsvInfo:
    """What the mapping step needs to know about an uploaded file."""

    delimiter: str
    header: list[str]
    preview: list[list[str]] = field(default_factory=list)
    rows: int = 0  # data records (not the header)

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES[self.delimiter]


def inspect_csv(path: str, encoding: str, preview_rows: int = 5) -> CsvInfo:
    """Check an uploaded file end to end and return its header, first rows and record count."""
    if os.path.getsize(path) == 0:
        raise CsvProblem("The file is empty.")
    with open(path, "rb") as raw:
        head = raw.read(65536)
    if head.startswith(_BINARY_MAGIC) or b"\x00" in head:
        raise CsvProblem(
            "This file is not a CSV file (it looks like a spreadsheet, PDF or image). "
            "Save it as CSV (comma, semicolon or tab separated) and upload it again."
        )
    check_encoding(path, encoding)
    with open_text(path, encoding) as text:
        first_line = text.readline()
    delimiter = detect_delimiter(first_line)
    records = iter_records(path, encoding, delimiter)
    header_record = next(records, None)
    if header_record is None:
        raise CsvProblem("The file is empty.")
    header = [name.strip() for name in header_record[1]]
    preview = []
    rows = 0
    for _line, values in records:
        rows += 1
        if rows <= preview_rows:
            preview.append(values)
    if not preview:
        raise CsvProblem("The file has a header row but no data rows.")
    return CsvInfo(delimiter=delimiter, header=header, preview=preview, rows=rows)


def check_encoding(path: str, encoding: str) -> None:
    """Decode the whole file in chunks; refuse it with the line of the first bad byte."""
    codec = ENCODINGS.get(encoding)
    if codec is None:
        raise CsvProblem(f"Unknown encoding {encoding!r}.")
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    lines_before = 0
    with open(path, "rb") as raw:
        while chunk := raw.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines_before + chunk[: max(exc.start, 0)].count(b"\n") + 1
                bad = chunk[exc.start : exc.start + 1].hex().upper() if exc.start >= 0 else "?"
                raise CsvProblem(
                    f"The file is not valid UTF-8 (line {line} has the byte 0x{bad}). "
                    "If it was saved from Excel, choose Latin-1 as the encoding and upload it again."
                ) from None
            lines_before += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise CsvProblem("The file is not valid UTF-8 (it ends in the middle of a character).") from None


def detect_delimiter(header_line: str) -> str:
    """The delimiter (comma, semicolon or tab) used most in the header line, outside quotes."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def open_text(path: str, encoding: str):
    """Open an uploaded file as text for the csv module (streaming, universal newlines off)."""
    return open(path, encoding=ENCODINGS[encoding], newline="")


def iter_records(path: str, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line number, values) per non-blank record, streaming the file."""
    for batch in iter_record_batches(path, encoding, delimiter, 10_000):
        yield from batch


@dataclass
class RecordBatch:
    """Records read together, each with the number of the line it starts on."""

    lines: Sequence[int]
    records: list[list[str]]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[tuple[int, list[str]]]:
        return zip(self.lines, self.records, strict=True)


def iter_record_batches(path: str, encoding: str, delimiter: str, size: int, skip: int = 0
                        ) -> Iterator[RecordBatch]:
    """Yield the non-blank records after the first `skip` in batches of up to `size`, streaming
    the file. The records and the line number after each come from C-level loops; only a batch
    holding a record over several lines numbers its records one by one."""
    with open_text(path, encoding) as text:
        reader = csv.reader(text, delimiter=delimiter)
        numbered = zip(reader, map(attrgetter("line_num"), repeat(reader)), strict=False)
        line_end = 0
        while skip > 0 and (record := next(numbered, None)) is not None:
            values, line_end = record
            skip -= not _blank(values)
        while chunk := list(islice(numbered, size)):
            batch = RecordBatch(range(line_end + 1, line_end + len(chunk) + 1),
                                [values for values, _ in chunk])
            if chunk[-1][1] - line_end != len(chunk):  # some record is over several lines
                batch.lines = [line_end + 1, *(end + 1 for _, end in chunk[:-1])]
            line_end = chunk[-1][1]
            del chunk  # before the next chunk is read: its memory is reused
            if min(map(len, batch.records)) <= 1 and any(map(_blank, batch.records)):
                kept = [(line, values) for line, values in batch if not _blank(values)]
                batch = RecordBatch([line for line, _ in kept], [values for _, values in kept])
            if batch.records:
                yield batch
                del batch


def _blank(values: list[str]) -> bool:
    return not values or (len(values) == 1 and not values[0].strip())


def neutralise(cell: str) -> str:
    """Make a cell safe to open in a spreadsheet (no formula injection)."""
    if cell and cell[0] in "=+-@\t\r":
        return "'" + cell
    return cell
