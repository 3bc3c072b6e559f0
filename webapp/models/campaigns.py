"""Email campaigns, saved audience filters, the suppression list and per-run recipients."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import Model
from webapp.models.base import utcnow


def _enum(cls: type[enum.Enum]) -> Enum:
    return Enum(cls, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])


class CampaignStatus(enum.StrEnum):
    """Where a campaign is: editable draft, waiting for its launch time, launched, or stopped
    part-way (some were sent; the rest can be sent after a confirmation)."""

    DRAFT = "draft"
    SCHEDULED = "scheduled"
    LAUNCHED = "launched"
    STOPPED = "stopped"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class SavedFilter(Model):
    """A named audience rule: supporters matching every condition."""

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    rule: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    owner = relationship("User")


class Campaign(Model):
    """An email: sender, subject, bodies with merge fields, audience, notification address."""

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("job.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    from_address: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(300))
    html_body: Mapped[str] = mapped_column(Text, default="")
    text_body: Mapped[str] = mapped_column(Text, default="")
    audience: Mapped[str] = mapped_column(String(20), default="opted_in")  # or "filter"
    filter_id: Mapped[int | None] = mapped_column(ForeignKey("saved_filter.id", ondelete="SET NULL"))
    notify_email: Mapped[str] = mapped_column(String(255), default="")
    launch_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[CampaignStatus] = mapped_column(_enum(CampaignStatus), default=CampaignStatus.DRAFT)
    # the run of its own launch (or of its "send to the remaining"): the only run its launch
    # time may fire; sends started by a group after success are other runs of its job
    launch_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("run.id", ondelete="SET NULL", name="fk_campaign_launch_run")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner = relationship("User")
    job = relationship("Job")
    saved_filter = relationship("SavedFilter")
    launch_run = relationship("Run", foreign_keys=[launch_run_id])


class Suppression(Model):
    """An address never to email again (hard bounce, unsubscribe)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    reason: Mapped[str] = mapped_column(String(40))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecipientStatus(enum.StrEnum):
    """A recipient of one run: not yet sent, sent (accepted by the server), or failed."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Recipient(Model):
    """One supporter in a run's extracted audience (a snapshot), and what happened to them."""

    __table_args__ = (
        UniqueConstraint("run_id", "supporter_id", name="uq_recipient_run_supporter"),
        Index("ix_recipient_run_status", "run_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    supporter_id: Mapped[int] = mapped_column()
    email: Mapped[str] = mapped_column(String(255))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[RecipientStatus] = mapped_column(_enum(RecipientStatus), default=RecipientStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    sent_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(String(500))
    opened_at: Mapped[datetime | None] = mapped_column()
    clicked_at: Mapped[datetime | None] = mapped_column()
    bounced_at: Mapped[datetime | None] = mapped_column()
    unsubscribed_at: Mapped[datetime | None] = mapped_column()


class BounceKind(enum.StrEnum):
    """A bounce as the mail server reported it: hard (the address does not work; it is
    suppressed) or soft (full mailbox, server down: it may work later)."""

    HARD = "hard"
    SOFT = "soft"


BOUNCE_REASON_MAX = 500  # characters of the server's reason kept (the endpoint refuses more)


class Bounce(Model):
    """One bounce the bounce endpoint received for a recipient of a send: its type, the server's
    reason and when. A recipient may bounce more than once (soft, then hard); the same report
    sent again is kept once (mailing.events.record_bounce). It carries no email of its own: the
    recipient's is read through it, and goes with the recipient."""

    __table_args__ = (
        Index("ix_bounce_run_id", "run_id", "id"),  # a send's bounces, in order
        Index("ix_bounce_bounced_at", "bounced_at", "id"),  # a date range's bounces, in order
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipient.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    kind: Mapped[BounceKind] = mapped_column(_enum(BounceKind))
    reason: Mapped[str] = mapped_column(String(BOUNCE_REASON_MAX), default="")
    bounced_at: Mapped[datetime] = mapped_column(default=utcnow)

    recipient = relationship("Recipient")
