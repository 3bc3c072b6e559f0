"""Accounts in the browser, against the real product (see conftest.py): an admin sends a
set-password link that only the user ever sees, and the user sets a password through it; a user
changes their own password and their other browser is signed out."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import time

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import REPO_ROOT, VENV_BIN, Account, Server, log_in

pytestmark = pytest.mark.e2e

LINK = re.compile(r"https?://[^/\s]+(/password/\S+)")


def cli_user(server: Server, address: str, role: str, password: str) -> Account:
    """A user made with `flask users create` on the running product's database."""
    result = subprocess.run(
        [
            str(VENV_BIN / "flask"),
            "--app",
            "app",
            "users",
            "create",
            address,
            "--role",
            role,
            "--password",
            password,
        ],
        cwd=REPO_ROOT,
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return Account(address, password)


def link_sent_to(sink, address: str, timeout: float = 10.0) -> str:
    """The path of the set-password link in the newest message the SMTP sink got for `address`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for envelope in reversed(list(sink.messages)):
            if address in envelope.rcpt_tos:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                return LINK.search(message.get_body(("plain",)).get_content()).group(1)
        time.sleep(0.1)
    raise AssertionError(f"no message to {address}")


def test_an_admin_sends_a_set_password_link_that_only_the_user_sees(
    page: Page, server: Server, smtp_sink, another_person
):
    admin = cli_user(server, "ada.admin@example.org", "admin", "ada-admin-password-7")
    log_in(page, admin)
    page.get_by_role("link", name="Users").click()
    page.get_by_role("button", name="New user").click()
    expect(page.get_by_role("heading", name="New user")).to_be_visible()
    expect(page.locator("input[type=password]")).to_have_count(0)  # no password for admins
    page.get_by_label("Email").fill("lee@example.org")
    page.get_by_label("Name").fill("Lee")
    page.get_by_role("button", name="Save user").click()
    expect(page.get_by_text("A set-password link was sent to lee@example.org")).to_be_visible()

    path = link_sent_to(smtp_sink, "lee@example.org")
    token = path.rsplit("/", 1)[1]
    assert token not in page.content()
    page.get_by_role("link", name="Edit lee@example.org").click()
    assert token not in page.content()
    page.get_by_role("button", name="Send set-password link").click()
    expect(page.get_by_text("A set-password link was sent to lee@example.org")).to_be_visible()
    assert token not in page.content()
    response = page.goto("/admin/outbox")  # where mail would wait without SMTP: not for admins
    assert response is not None and response.status == 404
    newest = link_sent_to(smtp_sink, "lee@example.org")
    assert len([e for e in smtp_sink.messages if "lee@example.org" in e.rcpt_tos]) == 2

    lee = another_person()
    lee.goto(newest)
    expect(lee.get_by_role("heading", name="Choose your password")).to_be_visible()
    lee.get_by_label("Password", exact=True).fill("lee-chose-this-herself")
    lee.get_by_label("Repeat the new password").fill("lee-chose-this-herself")
    lee.get_by_role("button", name="Set password").click()
    expect(lee.get_by_text("Your password is set. Log in with it.")).to_be_visible()
    log_in(lee, Account("lee@example.org", "lee-chose-this-herself"))

    for used_or_older in (newest, path):  # each died with the password it was made for
        lee.goto(used_or_older)
        expect(lee.get_by_role("heading", name="This link no longer works")).to_be_visible()


def test_a_new_own_password_signs_out_the_users_other_browser(page: Page, server: Server, another_person):
    kim = cli_user(server, "kim@example.org", "user", "kim-first-password-3")
    elsewhere = another_person()
    log_in(elsewhere, kim)
    log_in(page, kim)
    page.get_by_role("link", name="kim@example.org").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    page.get_by_label("Current password").fill(kim.password)
    page.get_by_label("New password", exact=True).fill("kim-second-password-4")
    page.get_by_label("Repeat the new password").fill("kim-second-password-4")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is changed.")).to_be_visible()

    elsewhere.reload()
    expect(elsewhere.get_by_role("heading", name="Log in to Conveyor")).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("heading", name="Job monitor")).to_be_visible()
    log_in(elsewhere, Account(kim.email, "kim-second-password-4"))
