"""Reading uploaded CSV files safely: byte and encoding checks, delimiter detection, a preview,
and records in batches with their line numbers. A file is refused with a sentence naming the
line (CsvProblem), never with a reader's error."""

from __future__ import annotations

import codecs
import csv
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice

ENCODINGS = {"utf-8": "utf-8-sig", "latin-1": "latin-1"}  # utf-8-sig accepts a BOM or none
DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
_BINARY_MAGIC = (b"PK\x03\x04", b"%PDF", b"\xd0\xcf\x11\xe0", b"\x89PNG", b"GIF8", b"\xff\xd8\xff")
MAX_COLUMNS = 1_000
FIELD_LIMIT = 1024 * 1024  # characters in one field (a quoted one may run over several lines)
LINE_LIMIT = 1024 * 1024  # bytes in one line
_CHUNK = LINE_LIMIT  # bytes scanned at a time: a line that starts and ends in one is short enough
_SHOWN_CHARS = 200  # of a header name or preview cell, as the mapping page shows it
_END = "\x00end\x00"  # read after the last line: a record of its own, unless a quoted field is
# still open and takes it in (check_bytes refuses a file that holds a NUL itself)

csv.field_size_limit(FIELD_LIMIT)


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
        head = raw.read(16)
    if head.startswith(_BINARY_MAGIC):
        raise CsvProblem(
            "This file is not a CSV file (it looks like a spreadsheet, PDF or image). "
            "Save it as CSV (comma, semicolon or tab separated) and upload it again."
        )
    check_bytes(path, encoding)
    with open_text(path, encoding) as text:
        first_line = text.readline()  # at most LINE_LIMIT bytes: check_bytes saw to that
    delimiter = detect_delimiter(first_line)
    records = iter_records(path, encoding, delimiter)
    header_record = next(records, None)
    if header_record is None:
        raise CsvProblem("The file is empty.")
    check_columns(len(header_record[1]))
    header = [_shown(name.strip()) for name in header_record[1]]
    preview = []
    rows = 0
    for _line, values in records:
        rows += 1
        if rows <= preview_rows:
            preview.append(list(map(_shown, values[: len(header)])))
    if not preview:
        raise CsvProblem("The file has a header row but no data rows.")
    return CsvInfo(delimiter=delimiter, header=header, preview=preview, rows=rows)


def utf8_text(path: str, chunk: int = 1024 * 1024) -> bool:
    """Whether the file holds letters beyond ASCII and reads as UTF-8 throughout: chosen as
    Latin-1, such a file would store "JosÃ©" for "José" (Latin-1 reads any byte, so nothing
    else would say so). Read a chunk at a time; a Latin-1 file stops at its first accent."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    seen = False
    with open(path, "rb") as raw:
        while block := raw.read(chunk):
            if not seen and block.isascii():
                continue  # (an ASCII chunk leaves the decoder as it was: nothing to carry over)
            try:
                decoder.decode(block, final=False)  # a letter cut at the chunk's end is carried
            except UnicodeDecodeError:
                return False
            seen = True
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return seen


def _shown(text: str) -> str:
    """A header name or cell as the mapping page shows it: cut short when it is long."""
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 1] + "…"


def check_columns(count: int) -> None:
    """Refuse a file with more columns than an import can map."""
    if count > MAX_COLUMNS:
        raise CsvProblem(f"The file has {count:,} columns; at most {MAX_COLUMNS:,} are supported.")


def check_bytes(path: str, encoding: str) -> None:
    """Scan the whole file a chunk at a time (C-level searches, flat memory); refuse it, naming
    the line, for a NUL byte, a line over LINE_LIMIT bytes, or a byte its encoding lacks. Lines
    are counted only to name one (the file is read again up to it)."""
    codec = ENCODINGS.get(encoding)
    if codec is None:
        raise CsvProblem(f"Unknown encoding {encoding!r}.")
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    offset = line_start = 0  # in the file: where the chunk starts, and the line it starts in
    with open(path, "rb") as raw:
        while chunk := raw.read(_CHUNK):
            nul = chunk.find(b"\x00")
            if nul >= 0:
                raise CsvProblem(
                    f"Line {_line_at(path, offset + nul):,} holds a NUL byte (0x00), which a "
                    "CSV file never has: the file may be damaged, or saved as UTF-16. Save it "
                    "as CSV (UTF-8 or Latin-1) and upload it again."
                )
            first = min((at for at in (chunk.find(b"\n"), chunk.find(b"\r")) if at >= 0), default=len(chunk))
            if offset + first - line_start > LINE_LIMIT:
                raise CsvProblem(
                    f"Line {_line_at(path, line_start):,} is longer than "
                    f"{LINE_LIMIT // 1024**2} MB, the most one line may hold. Check that the "
                    "file is a CSV file with one supporter a line."
                )
            if codec != "latin-1" and not (chunk.isascii() and not decoder.getstate()[0]):
                try:  # (Latin-1 has every byte; ASCII is UTF-8 when no character is cut)
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    at = offset + len(chunk) - len(exc.object) + exc.start  # after a BOM too
                    raise CsvProblem(
                        f"The file is not valid UTF-8 (line {_line_at(path, at):,} has the byte "
                        f"0x{exc.object[exc.start : exc.start + 1].hex().upper()}). If it was "
                        "saved from Excel, choose Latin-1 as the encoding and upload it again."
                    ) from None
            if first < len(chunk):
                line_start = offset + max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise CsvProblem("The file is not valid UTF-8 (it ends in the middle of a character).") from None


def _line_at(path: str, position: int) -> int:
    """The number of the line holding the byte at `position` (lines end in \\n, \\r\\n or \\r,
    as the csv reader counts them)."""
    line, after_cr, done = 1, False, 0
    with open(path, "rb") as raw:
        while done < position and (chunk := raw.read(min(_CHUNK, position - done))):
            line += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
            line -= after_cr and chunk.startswith(b"\n")  # the end of a \r\n cut in two
            after_cr = chunk.endswith(b"\r")
            done += len(chunk)
    return line


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


def iter_record_batches(
    path: str, encoding: str, delimiter: str, size: int, skip: int = 0
) -> Iterator[RecordBatch]:
    """Yield the non-blank records after the first `skip` in batches of up to `size`, streaming
    the file. The records come from C-level loops, and the lines they were on from the reader's
    count of lines: only a batch holding a record over several lines numbers its records one by
    one (_starts). A field over FIELD_LIMIT or a quote never closed raises CsvProblem with its
    line."""
    try:
        with open_text(path, encoding) as text:
            reader = csv.reader(chain(text, (_END,)), delimiter=delimiter)
            line_end = 0  # the lines read so far
            while skip > 0 and (values := next(reader, None)) is not None:
                if values and values[-1].endswith(_END) and _end_of_file(values, line_end + 1):
                    return
                line_end = reader.line_num
                skip -= not _blank(values)
            while records := list(islice(reader, size)):
                lines_read = reader.line_num - line_end
                last = records[-1]
                if last and last[-1].endswith(_END):
                    _end_of_file(last, _starts(records, line_end + 1)[-1])
                    records.pop()  # (_END's own line)
                    lines_read -= 1
                    if not records:
                        return
                batch = RecordBatch(range(line_end + 1, line_end + len(records) + 1), records)
                if lines_read != len(records):  # some record is over several lines
                    batch.lines = _starts(records, line_end + 1)
                line_end += lines_read
                del records, last  # before the next batch is read: their memory is reused
                if min(map(len, batch.records)) <= 1 and any(map(_blank, batch.records)):
                    kept = [(line, values) for line, values in batch if not _blank(values)]
                    batch = RecordBatch([line for line, _ in kept], [values for _, values in kept])
                if batch.records:
                    yield batch
                    del batch
    except csv.Error as exc:
        raise _located(path, encoding, delimiter, exc) from None


def _line_breaks(values: list[str]) -> int:
    """The line breaks inside a record's fields (\n, \r\n or \r, as the reader counts lines)."""
    return sum(value.count("\n") + value.count("\r") - value.count("\r\n") for value in values)


def _starts(records: list[list[str]], first: int) -> list[int]:
    """The line each record starts on, the first on line `first`: a record takes a line, and
    one more for each line break inside its fields."""
    starts = []
    for values in records:
        starts.append(first)
        first += 1 + _line_breaks(values)
    return starts


def _end_of_file(values: list[str], start: int) -> bool:
    """True for the record _END makes after the last line; a record that took _END into its
    last field (starting on line `start`) has a quote open at the end of the file: refused."""
    if values == [_END]:
        return True
    opened = start + _line_breaks(values[:-1])
    raise CsvProblem(
        f'The quote (") that opens a field on line {opened:,} is never closed, '
        "so the rest of the file would be that one field. Close the quote, or "
        "remove it, and upload the file again."
    )


def _located(path: str, encoding: str, delimiter: str, error: csv.Error) -> CsvProblem:
    """The problem the csv reader stopped at, with its lines (the file is read again up to it)."""
    start = 1  # of the record being read
    with open_text(path, encoding) as text:
        reader = csv.reader(text, delimiter=delimiter)
        try:
            for _values in reader:
                start = reader.line_num + 1
        except csv.Error:
            pass
        end = reader.line_num
    if "field larger than field limit" not in str(error):
        return CsvProblem(f"Line {end:,} cannot be read as CSV ({error}).")
    if end > start:
        return CsvProblem(
            f"The record that starts on line {start:,} has a field of more than "
            f"{FIELD_LIMIT:,} characters (it runs on to line {end:,}): is a closing quote "
            '(") missing?'
        )
    return CsvProblem(
        f"Line {start:,} has a field of more than {FIELD_LIMIT:,} characters, the most one field may hold."
    )


def _blank(values: list[str]) -> bool:
    return not values or (len(values) == 1 and not values[0].strip())


def neutralise(cell: str) -> str:
    """Make a cell safe to open in a spreadsheet (no formula injection)."""
    if cell and cell[0] in "=+-@\t\r":
        return "'" + cell
    return cell
