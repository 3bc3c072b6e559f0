"""System notifications (plain emails to owners and notification addresses)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from flask import current_app

from webapp.mailing.transport import Outgoing, TransportError, connection_for
from webapp.storage import current_storage


def notify(to: str, subject: str, body: str) -> bool:
    """Send one notification through the configured transport; False if it could not be sent."""
    if not to:
        return False
    message = EmailMessage()
    message["From"] = current_app.config["NOTIFY_FROM"]
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="conveyor.local")
    message.set_content(body)
    config = current_app.config
    connection = connection_for(config["SMTP_URL"], config["OUTBOX_DIR"], current_storage())
    try:
        connection.open()
        result = connection.send(Outgoing.from_email(message))
    except TransportError:
        current_app.logger.exception("notification to %s not sent", to)
        return False
    finally:
        connection.close()
    return result.outcome.value == "sent"
