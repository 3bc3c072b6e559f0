"""The local outbox as the Outbox page lists and searches it: the .eml files of the outbox
folder, newest first by name, each known by its headers alone (To, Subject, Date).

Headers are read with a bounded read (up to the first blank line, at most HEADER_LIMIT bytes)
and kept by file (path, modification time, size): a search reads every message once, and its
next pages, or the next search, read none again. What it buys: a search of 5,000 messages reads
each file the first time only (see tests/test_outbox_search.py)."""

from __future__ import annotations

import email.policy
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime

from webapp.paging import NumberedPage, offset
from webapp.rules.clock import local_midnight_utc

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


_KEPT: dict[str, tuple[tuple[int, int], OutboxEntry]] = {}  # by path: ((mtime_ns, size), entry)


def message_names(folder: str) -> list[str]:
    """The .eml files of the outbox folder, newest first (names start with the time written)."""
    return sorted((name for name in os.listdir(folder) if name.endswith(".eml")), reverse=True)


def _head(path: str) -> bytes:
    """The header block of a message file: up to its first blank line, HEADER_LIMIT at most."""
    head = b""
    with open(path, "rb") as raw:
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


def _sent_at(raw_date: str, mtime_ns: int) -> datetime:
    """A Date header as naive UTC; the file's modification time when it is missing or malformed."""
    try:
        moment = parsedate_to_datetime(raw_date) if raw_date else None
    except (ValueError, TypeError, IndexError):
        moment = None
    if moment is None:
        moment = datetime.fromtimestamp(mtime_ns / 1e9, UTC)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def read_entry(folder: str, name: str) -> OutboxEntry | None:
    """The entry of one message, from the kept headers while its file is unchanged; None if the
    file has gone (deleted by the retention sweep meanwhile)."""
    path = os.path.join(folder, name)
    try:
        stat = os.stat(path)
        stamp = (stat.st_mtime_ns, stat.st_size)
        kept = _KEPT.get(path)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        head = _head(path)
    except FileNotFoundError:
        return None
    headers = BytesHeaderParser(policy=email.policy.default).parsebytes(head)
    entry = OutboxEntry(
        name=name,
        to=_header(headers, "To"),
        subject=_header(headers, "Subject"),
        sent_at=_sent_at(_header(headers, "Date"), stat.st_mtime_ns),
    )
    if len(_KEPT) >= _KEPT_LIMIT:
        del _KEPT[next(iter(_KEPT))]  # the oldest entry goes
    _KEPT[path] = (stamp, entry)
    return entry


def read_entries(folder: str, names: Iterable[str]) -> list[OutboxEntry]:
    """The entries of `names` (those whose file still exists), in their order."""
    return [entry for name in names if (entry := read_entry(folder, name)) is not None]


def search(folder: str, names: list[str], query: OutboxSearch, tz_name: str) -> list[OutboxEntry]:
    """The entries of `names` that match `query`, in their order."""
    recipient, subject = query.recipient.casefold(), query.subject.casefold()
    since = local_midnight_utc(query.start.isoformat(), tz_name) if query.start else None
    until = local_midnight_utc((query.end + timedelta(days=1)).isoformat(), tz_name) if query.end else None
    return [
        entry
        for entry in read_entries(folder, names)
        if recipient in entry.to.casefold()
        and subject in entry.subject.casefold()
        and (since is None or entry.sent_at >= since)
        and (until is None or entry.sent_at < until)
    ]


def forget_gone(folder: str, names: list[str]) -> None:
    """Drop the kept headers of this folder's files that are no longer listed (swept away)."""
    if len(_KEPT) <= len(names):
        return
    listed = {os.path.join(folder, name) for name in names}
    prefix = os.path.join(folder, "")
    for path in [p for p in _KEPT if p.startswith(prefix) and p not in listed]:
        _KEPT.pop(path, None)


def outbox_page(
    folder: str, query: OutboxSearch, number: int, per_page: int, tz_name: str
) -> NumberedPage[OutboxEntry]:
    """Page `number` of the outbox, or of the messages matching `query`: without a search only
    the page's own messages are read; a search reads every message's (kept) headers."""
    names = message_names(folder)
    forget_gone(folder, names)
    start = offset(number, per_page)
    if not query:
        return NumberedPage(
            read_entries(folder, names[start : start + per_page]), number, per_page, len(names)
        )
    found = search(folder, names, query, tz_name)
    return NumberedPage(found[start : start + per_page], number, per_page, len(found))
