"""The local outbox as the Outbox page lists and searches it: the .eml files of the storage's
outbox area, newest first by name, each known by its headers alone (To, Subject, Date).

Headers are read with a bounded read (up to the first blank line, at most HEADER_LIMIT bytes)
and kept by file (where it is, modification time, size, as the listing gives them): a search
reads every message once, and its next pages, or the next search, read none again. What it
buys: a search of 5,000 messages reads each file the first time only (see
tests/test_outbox_search.py)."""

from __future__ import annotations

import email.policy
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from typing import IO

from webapp.paging import NumberedPage, offset
from webapp.rules.clock import local_midnight_utc
from webapp.storage import Entry, Storage

HEADER_LIMIT = 64 * 1024  # bytes of a message read for its headers, at most
_CHUNK = 8192
_KEPT_LIMIT = 100_000  # headers kept, at most (the outbox is swept by retention anyway)


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox message as the list shows it."""

    name: str  # the .eml file's name (its link)
    to: str
    subject: str
    sent_at: datetime  # naive UTC: its Date header, else the file's modification time


@dataclass(frozen=True)
class OutboxSearch:
    """What to look for (each part optional): recipient and subject contain the text, case
    ignored; sent from the start of `start` to the end of `end`, in the account time zone."""

    recipient: str = ""
    subject: str = ""
    start: date | None = None
    end: date | None = None

    def __bool__(self) -> bool:
        return bool(self.recipient or self.subject or self.start or self.end)


_KEPT: dict[str, tuple[tuple[float, int], OutboxEntry]] = {}  # by where: ((modified, size), entry)


def messages(storage: Storage) -> list[Entry]:
    """The .eml files of the outbox, newest first (names start with the time written)."""
    found = (entry for entry in storage.entries("outbox") if entry.name.endswith(".eml"))
    return sorted(found, key=lambda entry: entry.name, reverse=True)


def _head(raw: IO[bytes]) -> bytes:
    """The header block of a message: up to its first blank line, HEADER_LIMIT at most."""
    head = b""
    while len(head) < HEADER_LIMIT:
        chunk = raw.read(_CHUNK)
        if not chunk:
            break
        head += chunk
        ends = [at + len(blank) for blank in (b"\n\n", b"\r\n\r\n") if (at := head.find(blank)) >= 0]
        if ends:
            return head[: min(ends)]
    return head[:HEADER_LIMIT]


def _header(headers: EmailMessage, name: str) -> str:
    """A header as text ('' when missing or unreadable)."""
    try:
        value = headers.get(name)
        return "" if value is None else str(value)
    except (ValueError, TypeError, IndexError):  # a malformed header the policy cannot parse
        return ""


def _sent_at(raw_date: str, modified: float) -> datetime:
    """A Date header as naive UTC; the file's modification time when it is missing or malformed."""
    try:
        moment = parsedate_to_datetime(raw_date) if raw_date else None
    except (ValueError, TypeError, IndexError):
        moment = None
    if moment is None:
        moment = datetime.fromtimestamp(modified, UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def read_entry(storage: Storage, message: Entry) -> OutboxEntry | None:
    """The entry of one listed message, from the kept headers while its file is unchanged; None
    if the file has gone (deleted by the retention sweep meanwhile)."""
    where = storage.where(message.key)
    stamp = (message.modified, message.size)
    kept = _KEPT.get(where)
    if kept is not None and kept[0] == stamp:
        return kept[1]
    try:
        with storage.open(message.key) as raw:
            head = _head(raw)
    except FileNotFoundError:
        return None
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    entry = OutboxEntry(
        name=message.name,
        to=_header(headers, "To"),
        subject=_header(headers, "Subject"),
        sent_at=_sent_at(_header(headers, "Date"), message.modified),
    )
    if len(_KEPT) >= _KEPT_LIMIT:
        del _KEPT[next(iter(_KEPT))]  # the oldest entry goes
    _KEPT[where] = (stamp, entry)
    return entry


def read_entries(storage: Storage, listed: Iterable[Entry]) -> list[OutboxEntry]:
    """The entries of the `listed` messages (those whose file still exists), in their order."""
    return [entry for message in listed if (entry := read_entry(storage, message)) is not None]


def search(storage: Storage, listed: list[Entry], query: OutboxSearch, tz_name: str) -> list[OutboxEntry]:
    """The entries of the `listed` messages that match `query`, in their order."""
    recipient, subject = query.recipient.casefold(), query.subject.casefold()
    since = local_midnight_utc(query.start.isoformat(), tz_name) if query.start else None
    until = local_midnight_utc((query.end + timedelta(days=1)).isoformat(), tz_name) if query.end else None
    return [
        entry
        for entry in read_entries(storage, listed)
        if recipient in entry.to.casefold()
        and subject in entry.subject.casefold()
        and (since is None or entry.sent_at >= since)
        and (until is None or entry.sent_at < until)
    ]


def forget_gone(storage: Storage, listed: list[Entry]) -> None:
    """Drop the kept headers of this outbox's files that are no longer listed (swept away)."""
    if len(_KEPT) <= len(listed):
        return
    present = {storage.where(message.key) for message in listed}
    prefix = storage.where("outbox") + "/"
    for where in [w for w in _KEPT if w.startswith(prefix) and w not in present]:
        _KEPT.pop(where, None)


def outbox_page(
    storage: Storage, query: OutboxSearch, number: int, per_page: int, tz_name: str
) -> NumberedPage[OutboxEntry]:
    """Page `number` of the outbox, or of the messages matching `query`: without a search only
    the page's own messages are read; a search reads every message's (kept) headers."""
    listed = messages(storage)
    forget_gone(storage, listed)
    start = offset(number, per_page)
    if not query:
        return NumberedPage(
            read_entries(storage, listed[start : start + per_page]), number, per_page, len(listed)
        )
    found = search(storage, listed, query, tz_name)
    return NumberedPage(found[start : start + per_page], number, per_page, len(found))
