"""Email Campaign: extract the audience into a recipient snapshot, then send it over SMTP in
batches on parallel connections, recording each recipient as it is sent."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flask import current_app, url_for
from sqlalchemy import Engine, and_, func, insert, select, update

from webapp.errors import JobError
from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.mailing import tracking
from webapp.mailing.audience import AudienceError, audience
from webapp.mailing.notifications import notify
from webapp.mailing.render import MERGE_FIELDS, CompiledCampaign, Links
from webapp.mailing.transport import Connection, Outcome, Outgoing, connection_for
from webapp.models.base import utcnow
from webapp.models.campaigns import Campaign, CampaignStatus, Recipient, RecipientStatus
from webapp.models.people import Supporter
from webapp.rules.clock import format_local
from webapp.rules.states import RunState

if TYPE_CHECKING:
    from webapp.engine.context import RunContext
    from webapp.models.runs import Run

EXTRACT_BATCH = 5000
MAX_ATTEMPTS = 5


class EmailCampaign(JobType):
    """Send a campaign to its audience; then collect opens, clicks, bounces and unsubscribes."""

    key = "email_campaign"
    label = "Email Campaign"
    description = "Send an email campaign to an audience of supporters."
    noun_past = "sent"
    final_state = RunState.COLLECTING
    can_pause = True
    lane = "email"
    runs_on_request = False  # only its Launch (with the confirmation) or a group starts it
    noun = "messages"
    sends_email = True
    new_endpoint, new_label = "campaigns.new", "New campaign"
    can_be_step = False  # a group launches it after success instead
    count_labels = {"checked": "Audience", "skipped": "Suppressed", "created": "Sent", "rejected": "Refused"}

    def stop_question(self, run: Run) -> str:
        if run.state is RunState.INITIALIZING:
            return (
                f"Cancel the launch of “{run.job_name}” while its audience is extracted? "
                "Nobody has been contacted yet."
            )
        return (
            f"Stop “{run.job_name}”? {run.percent}% of {run.progress_total or 0:,} have "
            "already been sent and cannot be recalled; the rest will not be sent."
        )

    def draft_of(self, run: Run) -> tuple[str, str, str] | None:
        campaign = _campaign_of(run) if run.state is RunState.CANCELLED else None
        if campaign is None or campaign.status is not CampaignStatus.DRAFT:
            return None
        return (
            "Edit campaign",
            url_for("campaigns.edit", campaign_id=campaign.id),
            "The campaign is back in draft.",
        )

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        return [("Campaign", f"#{params.get('campaign_id')}")]

    def run(self, ctx: RunContext) -> None:
        campaign = db.session.get(Campaign, ctx.params["campaign_id"])
        if campaign is None:
            raise JobError("the campaign was deleted")
        compiled = CompiledCampaign(
            from_address=campaign.from_address,
            subject=campaign.subject,
            html_body=campaign.html_body,
            text_body=campaign.text_body,
        )
        if campaign.status is CampaignStatus.SCHEDULED and is_launch(ctx.run, campaign):
            campaign.status = CampaignStatus.LAUNCHED  # its launch time came
        if not ctx.run.request_id:
            self._extract(ctx, campaign)
        _Sender(ctx, compiled).run()
        days = ctx.config["COLLECT_DAYS"]
        ctx.run.collect_until = utcnow() + timedelta(days=days)

    def _extract(self, ctx: RunContext, campaign: Campaign) -> None:
        """Initializing: copy the audience into this run's recipient list (a snapshot)."""
        point = ctx.checkpoint
        not_sent_by = point.get("not_sent_by", [])  # a "send to the remaining"
        try:
            conditions, suppressed = audience(campaign, not_sent_by=not_sent_by)
        except AudienceError as exc:
            raise AudienceError(f"the audience rule is invalid: {exc}") from None
        columns = [getattr(Supporter, name) for name in MERGE_FIELDS]
        last_id = point.get("extract_last_id", 0)
        matched, blocked = point.get("matched", 0), point.get("suppressed", 0)
        while True:
            rows = db.session.execute(
                select(Supporter.id, suppressed.label("blocked"), *columns)
                .where(Supporter.id > last_id, and_(*conditions))
                .order_by(Supporter.id)
                .limit(EXTRACT_BATCH)
            ).all()
            if not rows:
                break
            fresh = []
            for row in rows:
                if row.blocked:
                    blocked += 1
                    continue
                data = {name: _plain(getattr(row, name)) for name in MERGE_FIELDS}
                fresh.append(
                    {
                        "run_id": ctx.run.id,
                        "supporter_id": row.id,
                        "email": row.email,
                        "data": data,
                        "status": RecipientStatus.PENDING,
                        "attempts": 0,
                    }
                )
            if fresh:
                db.session.execute(insert(Recipient), fresh)
            matched += len(rows)
            last_id = rows[-1].id
            ctx.run.checkpoint = {
                "extract_last_id": last_id,
                "matched": matched,
                "suppressed": blocked,
                "not_sent_by": not_sent_by,
            }
            db.session.commit()
            ctx.check_control()  # a cancel here is an extraction cancel
        ctx.run.checked, ctx.run.skipped = matched, blocked
        total = matched - blocked
        ctx.log(
            f"Audience extracted: {matched:,} supporters, {blocked:,} suppressed "
            f"(not opted in or on the suppression list), {total:,} to contact."
        )
        ctx.begin_processing(total)

    def summary(self, run: Run) -> str:
        until = format_local(run.collect_until, current_app.config["TIMEZONE"])
        return (
            f"Sending finished: {run.created:,} sent, {run.rejected:,} refused by the server, "
            f"{run.skipped:,} suppressed. Collecting results until {until}."
        )

    def fire_refusal(self, run: Run) -> str | None:
        campaign = _campaign_of(run)
        if run.trigger != "group" and not is_launch(run, campaign):
            return "Skipped: this is no longer the campaign's launch (it was cancelled or replaced)."
        return None

    def after_cancel(self, run: Run, phase: str) -> None:
        campaign = _campaign_of(run)
        if campaign is None:
            return
        if is_launch(run, campaign):  # (a send started by a group leaves the campaign as it is)
            # committed with the cancel itself
            earlier = (run.checkpoint or {}).get("not_sent_by", [])
            if phase == "processing":
                campaign.status = CampaignStatus.STOPPED  # some were sent; the rest can be
            elif earlier:  # a "send to the remaining" that sent nothing: stopped as before
                campaign.status, campaign.launch_run_id = CampaignStatus.STOPPED, earlier[-1]
            else:
                campaign.status, campaign.launch_run_id = CampaignStatus.DRAFT, None
        if phase == "extraction" and campaign.notify_email:
            notify(
                campaign.notify_email,
                f"Extraction cancelled: {campaign.name}",
                f"The launch of the campaign “{campaign.name}” was cancelled while its "
                f"audience was being extracted ({run.reference}).\n\n"
                "Nobody was contacted. The campaign is back in draft; you can edit it and "
                "launch it again.\n",
            )


def is_launch(run: Run, campaign: Campaign | None) -> bool:
    """Whether `run` is the campaign's own launch (not a send a group started)."""
    return campaign is not None and campaign.launch_run_id == run.id


def _campaign_of(run: Run) -> Campaign | None:
    return db.session.get(Campaign, run.job.params.get("campaign_id")) if run.job else None


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


class _Sender:
    """Processing: send the pending recipients in batches over parallel connections."""

    def __init__(self, ctx: RunContext, compiled: CompiledCampaign) -> None:
        self.ctx, self.compiled = ctx, compiled
        config = ctx.config
        self.run_id = ctx.run.id
        self.batch_size = config["EMAIL_BATCH_SIZE"]
        smtp_url = config["SMTP_URL"]
        self.parallel = max(1, config["SMTP_CONNECTIONS"]) if smtp_url else 1
        self.backoff = config["EMAIL_RETRY_BACKOFF"]
        self.engine: Engine = db.engine
        self.secret = config["SECRET_KEY"]
        self.local = threading.local()
        self.connections: list[Connection] = []
        self.db_connections: list[Any] = []
        self.lock = threading.Lock()
        storage = ctx.storage  # without a relay, messages go where every machine can read them
        self.make_connection = lambda: connection_for(smtp_url, config["OUTBOX_DIR"], storage)
        base = config["BASE_URL"]
        with current_app.test_request_context(base_url=base):
            self.open_tpl = url_for("tracking.opened", token="TOKEN", _external=True)
            self.click_tpl = url_for("tracking.clicked", token="TOKEN", _external=True)
            self.unsub_tpl = url_for("tracking.unsubscribe", token="TOKEN", _external=True)

    def run(self) -> None:
        ctx = self.ctx
        self._recount()
        db.session.commit()
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="smtp") as pool:
            try:
                while True:
                    batch = db.session.execute(
                        select(Recipient.id, Recipient.email, Recipient.data, Recipient.attempts)
                        .where(Recipient.run_id == self.run_id, Recipient.status == RecipientStatus.PENDING)
                        .order_by(Recipient.attempts, Recipient.id)
                        .limit(self.batch_size)
                    ).all()
                    if not batch:
                        break
                    if batch[0].attempts:
                        time.sleep(min(self.backoff * 2 ** (batch[0].attempts - 1), 60))
                    messages = [(r.id, r.attempts, self._message(r)) for r in batch]
                    chunks = [messages[i :: self.parallel] for i in range(self.parallel)]
                    results = list(pool.map(self._send_chunk, [c for c in chunks if c]))
                    sent = sum(r[0] for r in results)
                    failed = sum(r[1] for r in results)
                    db.session.expire(ctx.run)
                    ctx.commit_batch(
                        done=ctx.run.progress_done + sent + failed, created=sent, rejected=failed
                    )
            finally:
                for connection in self.connections:
                    connection.close()
                for conn in self.db_connections:
                    conn.close()

    def _recount(self) -> None:
        """Counts from the recipient list itself (exact after a crash between batches)."""
        rows = dict(
            db.session.execute(
                select(Recipient.status, func.count())
                .where(Recipient.run_id == self.run_id)
                .group_by(Recipient.status)
            ).all()
        )
        run = self.ctx.run
        run.created = rows.get(RecipientStatus.SENT, 0)
        run.rejected = rows.get(RecipientStatus.FAILED, 0)
        run.progress_done = run.created + run.rejected
        if run.progress_total is None:
            run.progress_total = sum(rows.values())

    def _message(self, row: Any) -> Outgoing:
        token = tracking.recipient_token(self.secret, self.run_id, row.id)
        links = Links(
            open_url=self.open_tpl.replace("TOKEN", token),
            click_base=self.click_tpl.replace("TOKEN", token),
            unsubscribe_url=self.unsub_tpl.replace("TOKEN", token),
            sign=lambda url, token=token: tracking.link_signature(self.secret, token, url),
        )
        return self.compiled.render(row.data, links)

    def _thread_state(self) -> tuple[Connection, Any]:
        state = getattr(self.local, "state", None)
        if state is None:
            connection = self.make_connection()
            connection.open()
            with self.lock:
                self.connections.append(connection)
                conn = self.engine.connect()
                self.db_connections.append(conn)
            state = self.local.state = (connection, conn)
        return state

    def _send_chunk(self, chunk: list[tuple[int, int, Outgoing]]) -> tuple[int, int]:
        """Send messages on this thread's connection; each recipient is marked sent before the
        final dot of its message, in its own committed transaction."""
        connection, conn = self._thread_state()
        sent = failed = 0
        table = Recipient.__table__
        for recipient_id, attempts, message in chunk:

            def record_sent(recipient_id: int = recipient_id) -> None:
                conn.execute(
                    update(table)
                    .where(table.c.id == recipient_id)
                    .values(status=RecipientStatus.SENT.value, sent_at=utcnow())
                )
                conn.commit()

            result = connection.send(message, record_sent)
            if result.outcome is Outcome.SENT:
                sent += 1
                continue
            # not delivered: undo the mark if it was made, and retry later or give up
            give_up = result.outcome is Outcome.FAILED or attempts + 1 >= MAX_ATTEMPTS
            conn.execute(
                update(table)
                .where(table.c.id == recipient_id)
                .values(
                    status=(RecipientStatus.FAILED if give_up else RecipientStatus.PENDING).value,
                    sent_at=None,
                    attempts=attempts + 1,
                    error=result.detail[:500],
                )
            )
            conn.commit()
            failed += int(give_up)
        return sent, failed
