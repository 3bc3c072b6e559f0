"""A receipt run's output: a ZIP of the PDFs of every receipt the run issued (a retried run's
too: they are read back by run id) with an index.csv, and optionally each receipt emailed to
its donor exactly once.

Exactly once, as campaign sends do it (webapp/mailing/transport.py): the message goes to the
server up to its final dot, the receipt's emailed_at is committed (only if still empty), then
the dot is written. A crash before the commit leaves a message the server discards, and the
retry sends it; after it, the receipt counts as emailed and is never sent again."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any

from sqlalchemy import select, update

from webapp.csvfiles import neutralise
from webapp.extensions import db
from webapp.mailing.transport import Connection, Outcome, Outgoing, TransportError, connection_for
from webapp.models.base import utcnow
from webapp.models.money import Receipt
from webapp.money.issuing import letterhead, printed
from webapp.money.pdf import Letterhead, ReceiptText, money, renderer

INDEX_COLUMNS = ("Number", "Supporter email", "Name", "Amount", "Currency", "Gift date", "File")


def pdf_name(number: int) -> str:
    """A receipt's file name in the ZIP and as a download."""
    return f"receipt-{number}.pdf"


def receipt_message(receipt: ReceiptText, email: str, head: Letterhead, sender: str, pdf: bytes) -> Outgoing:
    """The email that sends a receipt to its donor: a plain-text receipt with the PDF attached."""
    message = EmailMessage()
    name, address = parseaddr(sender)
    message["From"] = formataddr((head.organisation_name or name, address))
    message["To"] = email
    message["Subject"] = f"Your tax receipt {receipt.number} from {head.organisation_name}".strip()
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="conveyor.local")
    gifts = "\n".join(
        f"  {g.received_on.isoformat()}  {money(g.eligible, receipt.currency)}" for g in receipt.gifts
    )
    lines = [
        f"Dear {receipt.donor_name},",
        "",
        f"Thank you for your support. Your tax receipt number {receipt.number} is attached as a PDF.",
        "",
        f"Receipt number: {receipt.number}",
        f"Date issued: {receipt.issued_on.isoformat()}",
        f"Gifts:\n{gifts}",
        f"Eligible amount: {money(receipt.amount, receipt.currency)}",
    ]
    if receipt.replaces_number:
        lines.append(f"Replaces receipt {receipt.replaces_number}")
    lines += ["", head.wording, "", head.signatory, head.organisation_name]
    if head.charity_number:
        lines.append(f"Charity registration number: {head.charity_number}")
    message.set_content("\n".join(lines).strip() + "\n")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=pdf_name(receipt.number))
    return Outgoing.from_email(message)


class Emailer:
    """Sends receipts through the configured transport, each at most once."""

    def __init__(self, config: Any, storage: Any) -> None:
        self.sender = config["NOTIFY_FROM"]
        self.connection: Connection = connection_for(config["SMTP_URL"], config["OUTBOX_DIR"], storage)
        self.opened = False
        self.db = db.engine.connect()  # its own connection: the claim commits by itself

    def send(self, receipt_id: int, message: Outgoing) -> str:
        """Send one receipt's message: "sent", or the transport's reason it was not."""
        if not self.opened:
            self.connection.open()
            self.opened = True
        table = Receipt.__table__
        claimed = []

        def record_sent() -> None:
            result = self.db.execute(
                update(table)
                .where(table.c.id == receipt_id, table.c.emailed_at.is_(None))
                .values(emailed_at=utcnow())
            )
            self.db.commit()
            claimed.append(result.rowcount)
            if not result.rowcount:
                raise TransportError("the receipt was emailed meanwhile by another run")

        result = self.connection.send(message, record_sent)
        if result.outcome is Outcome.SENT:
            return "sent"
        if claimed and claimed[0]:  # not delivered after all: it may be sent again
            self.db.execute(update(table).where(table.c.id == receipt_id).values(emailed_at=None))
            self.db.commit()
        return result.detail or result.outcome.value

    def close(self) -> None:
        self.connection.close()
        self.db.close()


def write_zip(
    path: str,
    run_id: int,
    *,
    email: Emailer | None,
    batch_size: int,
    tz_name: str,
    progress: Callable[[int, int, int], None],
) -> tuple[int, int, int]:
    """Write the ZIP of the receipts run `run_id` issued (by number) and email the ones not yet
    emailed; `progress(done, emailed, not_sent)` after each batch. Returns (receipts, emailed,
    not sent)."""
    head = letterhead()
    render = renderer()
    done = emailed = not_sent = 0
    last = 0
    index = io.StringIO()
    writer = csv.writer(index)
    writer.writerow(INDEX_COLUMNS)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        while batch := list(
            db.session.execute(
                select(Receipt)
                .where(Receipt.run_id == run_id, Receipt.number > last)
                .order_by(Receipt.number)
                .limit(batch_size)
            ).scalars()
        ):
            batch_emailed = batch_not_sent = 0
            for receipt in batch:
                text = printed(receipt, tz_name)
                pdf = render.render(text, head)
                name = pdf_name(receipt.number)
                # PDFs are compressed already: stored as they are
                archive.writestr(zipfile.ZipInfo(name, date_time=receipt.issued_at.timetuple()[:6]), pdf)
                gift_dates = " ".join(sorted({g.received_on.isoformat() for g in text.gifts}))
                writer.writerow(
                    [
                        receipt.number,
                        neutralise(receipt.donor_email or ""),
                        neutralise(receipt.donor_name),
                        f"{receipt.amount:.2f}",
                        receipt.currency,
                        gift_dates,
                        name,
                    ]
                )
                if email is not None and receipt.emailed_at is None and receipt.status == "issued":
                    if not receipt.donor_email:
                        batch_not_sent += 1
                        continue
                    message = receipt_message(text, receipt.donor_email, head, email.sender, pdf)
                    outcome = email.send(receipt.id, message)
                    if outcome == "sent":
                        batch_emailed += 1
                    else:
                        batch_not_sent += 1
            last = batch[-1].number
            done += len(batch)
            emailed += batch_emailed
            not_sent += batch_not_sent
            for receipt in batch:  # flat memory: the written receipts leave the session
                db.session.expunge(receipt)
            progress(done, batch_emailed, batch_not_sent)
        archive.writestr("index.csv", "\ufeff" + index.getvalue())
    return done, emailed, not_sent
