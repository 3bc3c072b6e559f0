"""The Outbox search in chromium against the real server: a super admin searches the messages
of the outbox folder by recipient, subject and dates (the account's time zone), and clears it."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Account, Server, log_in
from tests.e2e.pages import main_nav

pytestmark = pytest.mark.e2e


def write_message(server: Server, name: str, to: str, subject: str, date: str) -> None:
    """A message as the local outbox writes it (this server sends by SMTP: the folder is ours)."""
    outbox = server.var_dir / "outbox"
    outbox.mkdir(exist_ok=True)
    (outbox / name).write_text(
        f"From: conveyor@example.org\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n\r\nHello\r\n"
    )


def test_a_super_admin_searches_the_outbox_by_its_labelled_fields(
    page: Page, server: Server, super_admin: Account
):
    tag = uuid.uuid4().hex[:8]  # this test's messages, whatever else the folder holds
    write_message(
        server,
        f"20261101-150000-{tag}a.eml",
        f"ann.{tag}@example.org",
        f"Appeal {tag} one",
        "Sun, 01 Nov 2026 15:00:00 +0000",
    )
    # 00:30 UTC on Dec 1 is Nov 30 in New York, the account's zone
    write_message(
        server,
        f"20261201-003000-{tag}b.eml",
        f"ann.{tag}@example.org",
        f"Appeal {tag} two",
        "Tue, 01 Dec 2026 00:30:00 +0000",
    )
    write_message(
        server,
        f"20261210-090000-{tag}c.eml",
        f"bob.{tag}@example.org",
        f"Receipt {tag}",
        "Thu, 10 Dec 2026 09:00:00 +0000",
    )

    log_in(page, super_admin)
    main_nav(page).get_by_role("link", name="Outbox").click()
    expect(page.get_by_role("heading", name="Outbox")).to_be_visible()
    search = page.get_by_role("search", name="Search the outbox")

    search.get_by_label("Recipient").fill(f"ANN.{tag}")
    search.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_have_text("2 messages match.")
    rows = page.get_by_role("row")
    expect(page.get_by_role("link", name=f"Appeal {tag} two")).to_be_visible()
    expect(rows.filter(has_text=f"Appeal {tag} two")).to_contain_text("Nov 30, 2026 7:30 PM EST")
    expect(search.get_by_label("Recipient")).to_have_value(f"ANN.{tag}")  # the search stays
    assert f"recipient=ANN.{tag}" in page.url  # and is a bookmarkable URL

    search.get_by_label("Subject").fill("appeal")
    search.get_by_label("From date").fill("2026-11-30")
    search.get_by_label("To date").fill("2026-11-30")
    search.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_have_text("1 message matches.")
    expect(page.get_by_role("link", name=f"Appeal {tag} two")).to_be_visible()
    expect(page.get_by_role("link", name=f"Appeal {tag} one")).to_have_count(0)

    search.get_by_label("Recipient").fill(f"nobody.{tag}")
    search.get_by_role("button", name="Search").click()
    expect(page.get_by_role("status")).to_have_text("No messages match.")
    expect(page.get_by_role("cell", name="No messages match the search.")).to_be_visible()

    page.get_by_role("link", name="Clear").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(r"^[\d,]+ messages\.$"))
    expect(search.get_by_label("Recipient")).to_have_value("")
    expect(page.get_by_role("link", name=f"Receipt {tag}")).to_be_visible()
