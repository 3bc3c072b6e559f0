"""Mail transports: the local outbox (embedded default) or an SMTP relay set by one URL.

A campaign send is two-phase: the message goes to the server up to, but not including, the final
dot; the caller records the recipient as sent; then the dot is written. A crash before the record
leaves an incomplete message the server discards (sent again on retry); after it, the server has
the message. So no supporter is sent the same campaign twice.
"""

from __future__ import annotations

import email.policy
import enum
import os
import re
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from webapp.storage import LocalStorage, Storage

_LEADING_DOT = re.compile(rb"(?m)^\.")
# headers folded only past RFC 5322's 998 characters: Python's folding at 78 drops the space
# between two encoded words ("Ünïcode Fjörd" arrived as "ÜnïcodeFjörd")
_POLICY = email.policy.SMTP.clone(max_line_length=998)


class Outcome(enum.Enum):
    """What happened to one message."""

    SENT = "sent"
    RETRY = "retry"  # a temporary failure: nothing was delivered, try again later
    FAILED = "failed"  # refused for good (5xx)


@dataclass
class Result:
    outcome: Outcome
    detail: str = ""


def _reply_text(reply: bytes | str) -> str:
    """A server reply as text (smtplib keeps it as bytes; its stubs also allow str)."""
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


class TransportError(Exception):
    """The transport cannot be used at all (bad URL, login refused, server unreachable)."""


@dataclass(frozen=True)
class SmtpSettings:
    """What CONVEYOR_SMTP_URL says: smtp://user:pass@host:port?starttls=1, smtps://... for SSL."""

    host: str
    port: int
    username: str | None
    password: str | None
    ssl: bool
    starttls: bool
    timeout: float

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise TransportError(f"not an SMTP URL: {url!r} (use smtp://host:port or smtps://...)")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        secure = parts.scheme == "smtps"
        return cls(
            host=parts.hostname,
            port=parts.port or (465 if secure else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ssl=secure,
            starttls=query.get("starttls", "").lower() in ("1", "true", "yes"),
            timeout=float(query.get("timeout", "30")),
        )


class SmtpConnection:
    """One reusable SMTP connection."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.client: smtplib.SMTP | None = None

    def open(self) -> None:
        s = self.settings
        client: smtplib.SMTP
        try:
            if s.ssl:
                client = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            # the data and its final dot go out as separate writes: without this, Nagle's
            # algorithm holds the dot back until the server acknowledges (about 40 ms each)
            assert client.sock is not None  # the constructor connected it (or raised)
            client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client.ehlo()
            if s.starttls:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if s.username:
                client.login(s.username, s.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(
                f"the SMTP server refused the login: {exc.smtp_code} {_reply_text(exc.smtp_error)}"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(f"cannot connect to the SMTP server {s.host}:{s.port}: {exc}") from None
        self.client = client

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.quit()
            except (OSError, smtplib.SMTPException):
                self.client.close()
            self.client = None

    def send(self, message: Outgoing, record_sent: Callable[[], None] | None = None) -> Result:
        """Send one message; `record_sent` runs after the data and before the final dot."""
        if self.client is None:
            self.open()
        client = self.client
        assert client is not None  # open() connected it or raised TransportError
        sender, rcpt = message.sender, message.recipient
        committed = False
        try:
            code, reply = client.mail(sender)
            if code != 250:
                return self._refused(client, code, reply)
            code, reply = client.rcpt(rcpt)
            if code not in (250, 251):
                return self._refused(client, code, reply)
            client.putcmd("data")
            code, reply = client.getreply()
            if code != 354:
                return self._refused(client, code, reply)
            data = _LEADING_DOT.sub(b"..", message.data)
            if not data.endswith(b"\r\n"):
                data += b"\r\n"
            client.send(data)
            if record_sent is not None:
                record_sent()
            committed = True
            client.send(b".\r\n")
            code, reply = client.getreply()
        except (OSError, smtplib.SMTPServerDisconnected) as exc:
            self.client = None
            if committed:
                # the server has the whole message; only its answer was lost
                return Result(Outcome.SENT, f"sent, but the server's answer was lost ({exc})")
            return Result(Outcome.RETRY, f"connection lost: {exc}")
        if code == 250:
            return Result(Outcome.SENT)
        return Result(
            Outcome.RETRY if 400 <= code < 500 else Outcome.FAILED, f"{code} {reply.decode(errors='replace')}"
        )

    def _refused(self, client: smtplib.SMTP, code: int, reply: bytes) -> Result:
        try:
            client.rset()
        except (OSError, smtplib.SMTPException):
            self.client = None
        text = f"{code} {reply.decode(errors='replace')}"
        return Result(Outcome.RETRY if 400 <= code < 500 or code == -1 else Outcome.FAILED, text)


class OutboxConnection:
    """Writes each message as one .eml file into the outbox (the embedded default): written in
    full to `folder` on this machine first, then moved into `storage` (outbox/<name>) once the
    recipient is recorded as sent. Without a storage, `folder` is the outbox itself."""

    def __init__(self, folder: str, storage: Storage | None = None) -> None:
        self.folder = folder
        self.storage = storage or LocalStorage({"outbox": folder})

    def open(self) -> None:
        os.makedirs(self.folder, exist_ok=True)

    def close(self) -> None:
        pass

    def send(self, message: Outgoing, record_sent: Callable[[], None] | None = None) -> Result:
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
        partial = os.path.join(self.folder, f"{name}.part")
        # the owner's only, whatever the umask: a message holds a person's address and its links
        with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
            out.write(message.data)
        if record_sent is not None:
            try:
                record_sent()
            except BaseException:
                os.remove(partial)
                raise
        self.storage.store(f"outbox/{name}", partial)
        return Result(Outcome.SENT)


Connection = SmtpConnection | OutboxConnection


@dataclass
class Outgoing:
    """A message ready for the wire: envelope sender and recipient, and its bytes (CRLF)."""

    sender: str
    recipient: str
    data: bytes

    @classmethod
    def from_email(cls, message: EmailMessage) -> Outgoing:
        """An EmailMessage (notifications) as wire bytes."""
        return cls(
            sender=parseaddr(str(message["From"]))[1],
            recipient=parseaddr(str(message["To"]))[1],
            data=message.as_bytes(policy=_POLICY),
        )

    def as_email(self) -> EmailMessage:
        """The message parsed back (previews, tests)."""
        return BytesParser(policy=email.policy.default).parsebytes(self.data)


def connection_for(smtp_url: str | None, outbox_dir: str, storage: Storage | None = None) -> Connection:
    """A new, not yet opened connection for the configured transport: the SMTP relay, else the
    outbox in `storage` (the app's, so every machine's messages are in one outbox), written
    through this machine's `outbox_dir`."""
    if smtp_url:
        return SmtpConnection(SmtpSettings.from_url(smtp_url))
    return OutboxConnection(outbox_dir, storage)
