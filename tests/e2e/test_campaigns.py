"""Email campaigns end to end, driven in chromium against the real launcher, which sends its mail
to a real SMTP server (aiosmtpd, the session's `smtp_sink`; see conftest.py):

1. create → launch with the audience size confirmed → pause mid-send → resume → every supporter
   receives the campaign exactly once;
2. a scheduled launch cancelled from the job monitor goes back to draft, is edited and launched;
3. a cancel during extraction notifies the campaign's notification address; a job cancel (a
   paused send cancelled) does not.
"""

from __future__ import annotations

import email
import email.policy
import re
import sqlite3
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from datetime import time as dtime

import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from tests.e2e.conftest import EMAIL_BATCH_SIZE, Account, Server, log_in
from tests.e2e.pages import RUN_TIMEOUT, ZONE, job_number, main_nav, run_status

pytestmark = pytest.mark.e2e

FROM = "Park Friends <news@park.example>"
SUBJECT = "Hello {{ first_name }}"
TEXT_BODY = "Dear {{ first_name }},\nThank you for standing up for the park.\n"
HTML_BODY = '<p>Dear {{ first_name }},</p>\n<p><a href="https://park.example/give">Give to the park</a></p>'
# The campaign audience: 200 opted-in supporters (20 batches of 10 on the server).
AUDIENCE = {f"reader{i:03d}@campaign.example": f"Reader{i}" for i in range(200)}
# Held per message by the sink while a test wants to pause a send: 20 batches of 10 messages
# over 4 parallel connections take about 20 × 3 × 0.1 s = 6 s, so the run page (polled every
# 2 s) shows the send under way well before it ends.
SEND_DELAY = 0.1
# Enough opted-in supporters that extracting them into a recipient list takes seconds (about
# 5 s here: 60,000 took 3.2 s), so Stop lands during extraction with a wide margin; the stop
# cuts the extraction short, so the size costs little time.
BULK = 100_000
BULK_DOMAIN = "bulk.example"


# --------------------------------------------------------------------------- helpers


def flash(page: Page, text: str) -> Locator:
    return page.get_by_role("status").filter(has_text=text)


def expect_state(page: Page, state: str, timeout: int = RUN_TIMEOUT) -> None:
    """Wait (the run page polls itself every 2 s) until the run shows `state`."""
    expect(run_status(page)).to_contain_text(re.compile(rf"State:\s*{state}\b"), timeout=timeout)


def run_log(page: Page) -> Locator:
    return page.get_by_label("Log")


def shown_count(page: Page, name: str, of: str = "Contact results") -> Locator:
    """A value on the run page: one of its Contact results (Audience, Sent, Refused...) or,
    with of="Counts", one of a plain run's counts (Checked, Created...)."""
    term = page.get_by_role("term").filter(has_text=re.compile(rf"^{name}$"))
    return page.get_by_label(of).locator("div").filter(has=term).get_by_role("definition")


def monitor_row(page: Page, job_name: str) -> Locator:
    return page.get_by_role("row").filter(has=page.get_by_role("link", name=job_name, exact=True))


def accept_next_dialog(page: Page) -> list[str]:
    """Accept the next confirm() the page opens; the returned list receives its message."""
    messages: list[str] = []

    def accept(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    return messages


def sqlite_db(server: Server) -> closing[sqlite3.Connection]:
    return closing(sqlite3.connect(server.var_dir / "conveyor.db", timeout=30))


def upsert_opted_in(server: Server, people: dict[str, str]) -> None:
    """Opted-in supporters (email → first name) written straight into the product's database."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite_db(server) as db, db:
        db.executemany(
            "INSERT INTO supporter (email, first_name, opted_in, created_at, updated_at) "
            "VALUES (?, ?, 1, ?, ?) ON CONFLICT (email) DO UPDATE SET opted_in = 1",
            [(address, first, now, now) for address, first in people.items()],
        )


def opt_out_domain(server: Server, domain: str) -> None:
    with sqlite_db(server) as db, db:
        db.execute("UPDATE supporter SET opted_in = 0 WHERE email LIKE ?", (f"%@{domain}",))


def opted_in_count(server: Server) -> int:
    with sqlite_db(server) as db:
        return db.execute("SELECT count(*) FROM supporter WHERE opted_in = 1").fetchone()[0]


def mail_since(sink, start: int) -> list:
    """The envelopes the SMTP sink accepted after the first `start` ones."""
    with sink.lock:
        return list(sink.messages[start:])


def parsed(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.content, policy=email.policy.default)


def wait_for_mail(sink, start: int, predicate, timeout: float = RUN_TIMEOUT / 1000) -> list:
    deadline = time.monotonic() + timeout
    while True:
        received = mail_since(sink, start)
        if any(predicate(envelope) for envelope in received) or time.monotonic() > deadline:
            return received
        time.sleep(0.1)


@pytest.fixture
def slow_sink(smtp_sink):
    """The session's SMTP sink, holding each message SEND_DELAY seconds during the test."""
    smtp_sink.delay = SEND_DELAY
    try:
        yield smtp_sink
    finally:
        smtp_sink.delay = 0.0


def create_campaign(page: Page, name: str, *, notify: str, launch_at: str = "") -> int:
    """Campaigns → New campaign, every field filled in like a person would; returns its id."""
    main_nav(page).get_by_role("link", name="Campaigns").click()
    expect(page.get_by_role("heading", name="Campaigns", exact=True)).to_be_visible()
    page.get_by_role("button", name="New campaign").click()
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    page.get_by_label("Campaign name").fill(name)
    page.get_by_label("From address").fill(FROM)
    page.get_by_label("Subject").fill(SUBJECT)
    page.get_by_label("Plain-text body").fill(TEXT_BODY)
    page.get_by_label("HTML body").fill(HTML_BODY)
    audience = page.get_by_role("group", name="Audience")
    audience.get_by_role("radio", name="All opted-in supporters").check()
    page.get_by_label("Notification email address").fill(notify)
    if launch_at:
        page.get_by_label("Launch automatically at").fill(launch_at)
    page.get_by_role("button", name="Save campaign").click()
    expect(flash(page, f"Campaign “{name}” saved as a draft.")).to_be_visible()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
    expect(page.get_by_text("Draft", exact=True)).to_be_visible()
    match = re.search(r"/campaigns/(\d+)$", page.url)
    assert match, page.url
    return int(match.group(1))


def confirm_launch(page: Page, name: str, audience: int) -> None:
    """Launch → the confirmation page states the audience size (nobody suppressed)."""
    page.get_by_role("button", name="Launch…", exact=True).click()
    expect(page.get_by_role("heading", name=f"Launch “{name}”?")).to_be_visible()
    expect(page.get_by_role("article")).to_contain_text(
        f"The audience has {audience:,} supporters; 0 of them are suppressed (not opted in or "
        f"on the suppression list), so {audience:,} will be emailed."
    )


def land_on_run(page: Page, name: str, number: int = 1) -> int:
    """The run page a launch lands on; returns the run's id (from its address)."""
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.get_by_role("heading", name=f"{name} run #{number}")).to_be_visible()
    return int(re.search(r"/runs/(\d+)$", page.url).group(1))


def launch_now(page: Page, name: str, audience: int) -> int:
    confirm_launch(page, name, audience)
    page.get_by_role("button", name="Launch now").click()
    run_id = land_on_run(page, name)
    expect(flash(page, f"“{name}” launched.")).to_be_visible()
    return run_id


def pause_once_sending(page: Page, sink, start: int, total: int) -> int:
    """Wait until the progress shows some sending, click Pause, wait for Paused; returns how
    many were sent, after checking the page, the sink and the percentage agree."""
    progress = run_status(page).get_by_role("progressbar", name="Run progress")
    expect(progress).to_have_attribute("value", re.compile(r"^[1-9]\d?$"), timeout=RUN_TIMEOUT)
    page.get_by_role("button", name="Pause").click()
    expect(flash(page, "Pausing after the batch in flight.")).to_be_visible()
    expect_state(page, "Paused")
    expect(run_log(page)).to_contain_text("Pause requested by")
    expect(run_log(page)).to_contain_text("Paused; resume continues with the records not done")

    percent = int(progress.get_attribute("value"))
    assert 1 <= percent <= 99
    expect(run_status(page)).to_contain_text(f"{percent}%")
    done_text = run_status(page).get_by_text(re.compile(rf"^[\d,]+ of {total:,}$"))
    done = int(done_text.inner_text().split(" of ")[0].replace(",", ""))
    assert 0 < done < total and done % EMAIL_BATCH_SIZE == 0, done
    assert percent == done * 100 // total
    # Paused after a whole batch: the server got exactly what the page says was sent...
    assert len(mail_since(sink, start)) == done
    # ...and nothing more arrives while the run is paused.
    page.wait_for_timeout(1_000)  # several batch durations at SEND_DELAY
    assert len(mail_since(sink, start)) == done
    return done


# ----------------------------------------------------------------------------- tests


def test_launch_pause_resume_sends_every_supporter_exactly_once(
    page: Page, plain_user: Account, slow_sink, server: Server
):
    """Import 200 opted-in supporters through the UI, create and launch a campaign (the
    confirmation states the audience), pause mid-send, resume: each of the 200 got one message
    with its own subject; the run shows its request id and Contact results."""
    log_in(page, plain_user)

    # 200 opted-in supporters: Jobs → New job → New import.
    main_nav(page).get_by_role("link", name="Jobs", exact=True).click()
    page.get_by_role("button", name="New job").click()
    page.get_by_role("button", name="New import").click()
    page.get_by_label("Job name").fill("Campaign readers")
    csv_text = "email,first_name,opted_in\n" + "".join(
        f"{address},{first},yes\n" for address, first in AUDIENCE.items()
    )
    page.get_by_label("CSV file").set_input_files(
        {"name": "readers.csv", "mimeType": "text/csv", "buffer": csv_text.encode()}
    )
    page.get_by_role("button", name="Upload and continue").click()
    expect(page.get_by_role("heading", name="Map columns")).to_be_visible()
    for column, field in [("email", "email"), ("first_name", "first_name"), ("opted_in", "opted_in")]:
        expect(page.get_by_role("combobox", name=f"Field for column “{column}”")).to_have_value(field)
    page.get_by_role("button", name="Save and run now").click()
    expect_state(page, "Completed")
    expect(shown_count(page, "Checked", of="Counts")).to_have_text("200")
    expect(shown_count(page, "Rejected", of="Counts")).to_have_text("0")
    assert opted_in_count(server) == len(AUDIENCE), "other opted-in supporters would be mailed"

    name = "Spring appeal"
    create_campaign(page, name, notify="appeal-owner@park.example")
    expect(page.get_by_role("definition").filter(has_text=SUBJECT)).to_be_visible()
    expect(page.get_by_text("All opted-in supporters")).to_be_visible()

    start = len(mail_since(slow_sink, 0))
    run_id = launch_now(page, name, len(AUDIENCE))
    assert run_id > 0
    done = pause_once_sending(page, slow_sink, start, len(AUDIENCE))

    page.get_by_role("button", name="Resume").click()
    expect(flash(page, "Resumed: it continues with the records not processed yet.")).to_be_visible()
    expect_state(page, "Collecting")
    expect(run_log(page)).to_contain_text(
        "Sending finished: 200 sent, 0 refused by the server, 0 suppressed."
    )

    received = mail_since(slow_sink, start)
    recipients = [address for envelope in received for address in envelope.rcpt_tos]
    assert len(recipients) == len(received) == len(AUDIENCE), (done, len(received))
    assert sorted(recipients) == sorted(AUDIENCE)  # one each: nobody twice, nobody missing
    for envelope in received:
        message = parsed(envelope)
        first_name = AUDIENCE[envelope.rcpt_tos[0]]
        assert message["Subject"] == f"Hello {first_name}"
        assert message["To"].addresses[0].addr_spec == envelope.rcpt_tos[0]
        assert f"Dear {first_name}," in message.get_body(("plain",)).get_content()

    status = run_status(page)
    expect(status).to_contain_text(re.compile(r"Request id REQ-\d{8}-[0-9A-F]{10}\b"))
    for label, value in [("Audience", "200"), ("Suppressed", "0"), ("Sent", "200"), ("Refused", "0")]:
        expect(shown_count(page, label)).to_have_text(value)
    expect(status).to_contain_text("Collecting opens, clicks, bounces and unsubscribes until")
    expect(status.get_by_role("button", name="Stop")).to_have_count(0)
    expect(status.get_by_role("button", name="Pause")).to_have_count(0)


def test_cancel_a_scheduled_campaign_from_the_monitor_then_edit_and_launch_it(
    page: Page, plain_user: Account, server: Server
):
    """Schedule for tomorrow → the monitor shows it Scheduled → Stop (confirm) → the row offers
    Edit campaign → edit the subject → a draft again, which can be launched (scheduled) again."""
    name = "Autumn newsletter"
    tomorrow = datetime.combine(datetime.now(ZONE).date() + timedelta(days=1), dtime(10, 0), tzinfo=ZONE)
    when = tomorrow.strftime("%Y-%m-%dT%H:%M")
    shown = (
        f"{tomorrow:%b} {tomorrow.day}, {tomorrow.year} "
        f"{tomorrow.strftime('%I:%M %p').lstrip('0')} {tomorrow.tzname()}"
    )
    log_in(page, plain_user)
    audience = opted_in_count(server)  # 200 after the first test; it does not matter here
    campaign_id = create_campaign(page, name, notify="newsletter@park.example", launch_at=when)
    expect(page.get_by_role("definition").filter(has_text=shown)).to_be_visible()

    confirm_launch(page, name, audience)
    expect(page.get_by_role("article")).to_contain_text(
        f"it will be scheduled for {shown} and launch on its own then."
    )
    expect(page.get_by_role("button", name="Launch now")).to_have_count(0)
    page.get_by_role("button", name="Schedule campaign").click()
    land_on_run(page, name)
    expect(flash(page, f"“{name}” is scheduled; it launches on its own at its launch time.")).to_be_visible()
    expect_state(page, "Scheduled")
    expect(run_status(page)).to_contain_text(f"Scheduled for {shown}.")

    main_nav(page).get_by_role("link", name="Job monitor").click()
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
    row = monitor_row(page, name)
    expect(row.get_by_role("cell").nth(0)).to_have_text("Email Campaign")
    expect(row.get_by_role("cell").nth(5)).to_have_text(f"Scheduled for {shown}")
    questions = accept_next_dialog(page)
    row.get_by_role("button", name=f"Stop {name} run #1").click()
    expect(row.get_by_role("status")).to_have_text("The run was cancelled before it started.")
    assert questions == [f"Cancel run #1 of “{name}” before it starts?"]
    expect(row.get_by_role("cell").nth(5)).to_have_text("Cancelled")
    expect(row.get_by_role("button", name=re.compile("^Stop "))).to_have_count(0)

    row.get_by_role("link", name="Edit campaign").click()
    expect(page.get_by_role("heading", name=f"Edit “{name}”")).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_value(SUBJECT)
    expect(page.get_by_label("Launch automatically at")).to_have_value(when)
    page.get_by_label("Subject").fill("Autumn news for {{ first_name }}")
    page.get_by_role("button", name="Save campaign").click()
    expect(flash(page, "Campaign saved.")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign_id}$"))
    expect(page.get_by_text("Draft", exact=True)).to_be_visible()
    expect(page.get_by_role("definition").filter(has_text="Autumn news for {{ first_name }}")).to_be_visible()
    runs = page.get_by_role("table").get_by_role("row")
    expect(runs.filter(has=page.get_by_role("link", name="#1"))).to_contain_text("Cancelled")

    main_nav(page).get_by_role("link", name="Campaigns").click()
    listed = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
    expect(listed.get_by_role("cell")).to_have_text(
        [name, "Autumn news for {{ first_name }}", "Draft", shown]
    )
    listed.get_by_role("link", name=name, exact=True).click()

    # It can be launched again: scheduled once more (its launch time is still tomorrow).
    confirm_launch(page, name, audience)
    page.get_by_role("button", name="Schedule campaign").click()
    land_on_run(page, name, number=2)
    expect_state(page, "Scheduled")
    # Leave nothing waiting behind: the run page's Stop cancels it before it starts.
    questions = accept_next_dialog(page)
    run_status(page).get_by_role("button", name="Stop").click()
    expect(flash(page, "The run was cancelled before it started.")).to_be_visible()
    assert questions == [f"Cancel run #2 of “{name}” before it starts?"]
    expect_state(page, "Cancelled")
    expect(run_status(page).get_by_role("button", name="Edit campaign")).to_be_visible()


def test_extraction_cancel_notifies_and_job_cancel_does_not(
    page: Page, plain_user: Account, super_admin: Account, another_person, slow_sink, server: Server
):
    """(a) Stop while the audience is extracted: Cancelled, nobody contacted, the campaign is a
    draft again and its notification address gets one "Nobody was contacted" email. (b) Pause a
    send, then Cancel run: Cancelled, what was sent stays, and no notification is sent."""
    log_in(page, plain_user)
    upsert_opted_in(server, AUDIENCE)  # present already when the first test ran
    bulk = {f"b{i:06d}@{BULK_DOMAIN}": f"Bulk{i}" for i in range(BULK)}
    upsert_opted_in(server, bulk)
    try:
        # ----------------------------------------------------------- (a) extraction cancel
        name = "Big launch stopped early"
        notify = "big-launch@park.example"
        create_campaign(page, name, notify=notify)
        start = len(mail_since(slow_sink, 0))
        launch_now(page, name, len(AUDIENCE) + BULK)
        job_id = job_number(page)
        # Like a person, reload the run page until the audience is being extracted.
        deadline = time.monotonic() + RUN_TIMEOUT / 1000
        while True:
            text = run_status(page).inner_text()
            if re.search(r"State:\s*Initializing\b", text):
                break
            assert re.search(r"State:\s*Queued\b", text), (
                f"the extraction was over before Stop could be clicked: {text!r}"
            )
            assert time.monotonic() < deadline, f"the extraction never started: {text!r}"
            page.reload()
        questions = accept_next_dialog(page)
        run_status(page).get_by_role("button", name="Stop").click()
        expect(flash(page, "Cancelling during extraction: nothing has been processed yet.")).to_be_visible()
        assert questions == [
            f"Cancel the launch of “{name}” while its audience is extracted? Nobody has been contacted yet."
        ]
        expect_state(page, "Cancelled")
        expect(run_log(page)).to_contain_text(
            "Cancelled during extraction: nothing was processed and nobody was contacted."
        )
        # cancelled before extraction ended: no request id, and no promise of one
        expect(run_status(page)).not_to_contain_text("Request id")
        expect(run_status(page)).not_to_contain_text("request id given when extraction ends")
        expect(shown_count(page, "Sent")).to_have_text("0")

        received = wait_for_mail(slow_sink, start, lambda e: notify in e.rcpt_tos)
        page.wait_for_timeout(500)  # a second notification, or any campaign mail, would show
        received = mail_since(slow_sink, start)
        assert [envelope.rcpt_tos for envelope in received] == [[notify]], (
            "exactly one email, the notification, was expected"
        )
        note = parsed(received[0])
        assert note["Subject"] == f"Extraction cancelled: {name}"
        body = note.get_content()
        assert "Nobody was contacted" in body
        assert f"(run #1 of Job #{job_id})" in body

        # The notification goes to the SMTP relay, not to the local outbox.
        admin_page = another_person()
        log_in(admin_page, super_admin)
        main_nav(admin_page).get_by_role("link", name="Outbox").click()
        expect(admin_page.get_by_role("heading", name="Outbox")).to_be_visible()
        expect(admin_page.get_by_text("Mail goes to the configured SMTP relay")).to_be_visible()
        expect(admin_page.get_by_role("cell", name=notify)).to_have_count(0)

        # The campaign is a draft again (set just after the run was cancelled; the page stops
        # polling at Cancelled, so look again, as a person would).
        page.reload()
        expect(run_status(page)).to_contain_text("The campaign is back in draft.")
        run_status(page).get_by_role("button", name="Edit campaign").click()
        expect(page.get_by_role("heading", name=f"Edit “{name}”")).to_be_visible()
    finally:
        opt_out_domain(server, BULK_DOMAIN)

    # ------------------------------------------------------------------- (b) job cancel
    name = "Appeal cancelled while paused"
    notify = "paused-appeal@park.example"
    create_campaign(page, name, notify=notify)
    start = len(mail_since(slow_sink, 0))
    launch_now(page, name, len(AUDIENCE))
    done = pause_once_sending(page, slow_sink, start, len(AUDIENCE))
    expect(run_status(page).get_by_role("button", name="Stop")).to_have_count(0)
    questions = accept_next_dialog(page)
    run_status(page).get_by_role("button", name="Cancel run").click()
    expect(flash(page, "The paused run was cancelled.")).to_be_visible()
    assert questions == ["Cancel this paused run? What was already sent stays sent; the rest is never sent."]
    expect_state(page, "Cancelled")
    expect(run_log(page)).to_contain_text("while paused.")
    expect(shown_count(page, "Sent")).to_have_text(str(done))
    # A job cancel: the campaign stays launched (no way back to draft from here).
    expect(run_status(page)).not_to_contain_text("back in draft")
    expect(page.get_by_role("button", name="Edit campaign")).to_have_count(0)

    page.wait_for_timeout(1_000)
    received = mail_since(slow_sink, start)
    assert not [envelope for envelope in received if notify in envelope.rcpt_tos]
    assert len(received) == done  # only the campaign mail sent before the pause
    assert {address for envelope in received for address in envelope.rcpt_tos} <= set(AUDIENCE)
