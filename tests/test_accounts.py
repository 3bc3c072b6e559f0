"""Accounts safe to run: sessions that end (sign-out, a new password, "everywhere else", idle,
deactivation), throttled sign-in that keeps working without Redis, no account enumeration,
set-password links instead of admins knowing passwords, own password changes with rules, the
first super admin's own account, and an audit entry for each of these."""

from __future__ import annotations

import email
import email.policy
import os
import re
import statistics
import time

import pytest

from tests.conftest import PASSWORD, make_user
from webapp.auth import passwords, sessions
from webapp.extensions import db
from webapp.models import AuditEntry, User
from webapp.models.users import Role

NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"http://conveyor\.test(/password/\S+)")


@pytest.fixture(autouse=True)
def separate_requests(app):
    """Each request finds its user from its own cookie. (The test app context, shared by every
    request of a test, would otherwise keep Flask-Login's user in `g` from one request, or one
    client, to the next; in the product each request has its own app context.)"""
    from flask import g

    @app.before_request
    def forget_the_last_requests_user() -> None:
        g.pop("_login_user", None)


def entries(action: str) -> list[AuditEntry]:
    return (
        db.session.execute(db.select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id))
        .scalars()
        .all()
    )


def fresh_user(user: User) -> User:
    db.session.expire_all()
    return db.session.get(User, user.id)


def outbox_links(app) -> list[tuple[str, str]]:
    """(recipient, set-password link path) of every message in the outbox, oldest first."""
    found = []
    folder = app.config["OUTBOX_DIR"]
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name), "rb") as raw:
            message = email.message_from_binary_file(raw, policy=email.policy.default)
        match = LINK.search(message.get_body(("plain",)).get_content())
        if match:
            found.append((message["To"], match.group(1)))
    return found


def second_client(app, email_address: str, password: str = PASSWORD):
    """Another browser, signed in as `email_address`."""
    other = app.test_client()
    assert other.post("/login", data={"email": email_address, "password": password}).status_code == 302
    return other


def signed_in(client) -> bool:
    return client.get("/").status_code == 200


# ---- sessions ---------------------------------------------------------------------------------


def test_a_copied_session_cookie_is_refused_after_sign_out(app, client, auth, users):
    auth.login(users["user"].email)
    copied = app.test_client()
    copied.set_cookie("session", client.get_cookie("session").value)
    assert signed_in(copied)
    auth.logout()
    assert not signed_in(copied)
    assert copied.get("/").headers["Location"].startswith("/login")
    entry = entries("auth.signed_out")[-1]
    assert entry.actor_id == users["user"].id and entry.object_id == users["user"].id


def test_changing_the_own_password_ends_every_other_session_and_keeps_this_one(app, client, auth, users):
    other_browser = second_client(app, users["user"].email)
    auth.login(users["user"].email)
    response = client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert signed_in(client) and not signed_in(other_browser)
    user = fresh_user(users["user"])
    assert user.check_password(NEW_PASSWORD) and user.password_changed_at is not None
    entry = entries("user.password_changed")[-1]
    assert entry.actor_id == user.id and entry.object_id == user.id and entry.ip == "127.0.0.1"


def test_sign_out_everywhere_else_ends_the_other_sessions_and_keeps_this_one(app, client, auth, users):
    other_browser = second_client(app, users["admin"].email)
    auth.login(users["admin"].email)
    page = client.get("/account").get_data(as_text=True)
    assert "Sign out everywhere else" in page
    assert client.post("/account/sign-out-everywhere").status_code == 302
    assert signed_in(client) and not signed_in(other_browser)
    assert entries("auth.signed_out_everywhere")[-1].actor_id == users["admin"].id


def test_an_idle_session_ends_after_the_configured_hours(app, client, auth, users, monkeypatch):
    app.config["SESSION_IDLE_HOURS"] = 2
    auth.login(users["user"].email)
    now = time.time()
    clock = type("Clock", (), {"time": staticmethod(lambda: now + 3600)})
    monkeypatch.setattr(sessions, "time", clock)
    assert signed_in(client)  # an hour later: activity, noted
    # polling by htmx is not a person's activity: it does not keep the session alive
    clock.time = staticmethod(lambda: now + 2 * 3600)
    assert client.get("/", headers={"HX-Request": "true"}).status_code == 200
    clock.time = staticmethod(lambda: now + 3 * 3600 + 60)
    assert not signed_in(client)


def test_deactivating_a_user_signs_them_out_at_once(app, client, auth, users):
    victim = second_client(app, users["user"].email)
    auth.login(users["admin"].email)
    response = client.post(
        f"/admin/users/{users['user'].id}", data={"email": "user@example.org", "name": "User", "role": "user"}
    )  # "active" left off
    assert response.status_code == 302
    assert not signed_in(victim)
    assert entries("user.deactivated")[-1].object_id == users["user"].id


# ---- sign-in: throttling, enumeration, deactivated accounts ----------------------------------


def test_after_five_wrong_passwords_the_right_one_waits_with_a_message(client, auth, users):
    for _ in range(5):
        assert "Wrong email or password." in auth.login(users["user"].email, "not it at all").get_data(
            as_text=True
        )
    response = auth.login(users["user"].email)
    assert response.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in response.get_data(as_text=True)
    assert not signed_in(client)
    failed = entries("auth.sign_in_failed")
    assert len(failed) == 5 and failed[0].actor_id is None and failed[0].ip == "127.0.0.1"
    assert failed[0].object_id == users["user"].id and "user@example.org" in failed[0].detail


def test_failures_from_one_address_throttle_every_account_from_it(app, client, auth, users):
    app.config["SIGNIN_IP_LIMIT"] = 3
    for n in range(3):
        auth.login(f"nobody{n}@example.org", "whatever it is")
    response = auth.login(users["other"].email)
    assert "Too many attempts" in response.get_data(as_text=True)


def test_a_successful_sign_in_forgets_the_accounts_failures(client, auth, users):
    for _ in range(4):
        auth.login(users["user"].email, "not it at all")
    assert auth.login(users["user"].email).status_code == 302
    auth.logout()
    for _ in range(4):
        auth.login(users["user"].email, "not it at all")
    assert auth.login(users["user"].email).status_code == 302


def test_sign_in_works_and_is_still_throttled_while_redis_is_unreachable(app, client, auth, users):
    from tests.conftest import free_port
    from webapp.engine import queueing

    app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nobody listens there
    app.extensions.pop("conveyor_redis", None)
    queueing._health["at"] = 0.0
    try:
        assert auth.login(users["user"].email).status_code == 302
        auth.logout()
        for _ in range(5):
            auth.login(users["user"].email, "not it at all")
        assert "Too many attempts" in auth.login(users["user"].email).get_data(as_text=True)
    finally:
        queueing._health["at"] = 0.0


def test_an_unknown_email_is_checked_against_a_dummy_hash(client, auth, users, monkeypatch):
    checked = []
    real = passwords.check_password_hash
    monkeypatch.setattr(
        passwords, "check_password_hash", lambda stored, given: checked.append(stored) or real(stored, given)
    )
    unknown = auth.login("nobody@example.org", PASSWORD).get_data(as_text=True)
    wrong = auth.login(users["user"].email, "not it at all").get_data(as_text=True)
    assert "Wrong email or password." in unknown and "Wrong email or password." in wrong
    assert len(checked) == 2
    # the dummy hash is made with the configured (here: fast test) method, like real ones
    assert checked[0].startswith("pbkdf2:sha256:1000$") and checked[0] != checked[1]
    assert entries("auth.sign_in_failed")[0].object_id is None


def test_an_unknown_email_takes_as_long_as_a_wrong_password(app, client, users):
    app.config["PASSWORD_HASH_METHOD"] = "pbkdf2:sha256:150000"  # slow enough to measure
    user = users["user"]
    user.set_password(PASSWORD)
    db.session.commit()

    def timed(address: str) -> float:
        started = time.perf_counter()
        client.post("/login", data={"email": address, "password": "not it at all"})
        return time.perf_counter() - started

    app.config["SIGNIN_ACCOUNT_LIMIT"] = app.config["SIGNIN_IP_LIMIT"] = 100
    timed("warm@example.org")  # the dummy hash is made once per process
    known = statistics.median(timed(user.email) for _ in range(3))
    unknown = statistics.median(timed(f"nobody{n}@example.org") for n in range(3))
    assert unknown > 0.6 * known, (unknown, known)


def test_a_deactivated_account_is_named_only_after_the_right_password(client, auth, users):
    users["other"].active = False
    db.session.commit()
    wrong = auth.login(users["other"].email, "not it at all").get_data(as_text=True)
    assert "Wrong email or password." in wrong and "deactivated" not in wrong
    right = auth.login(users["other"].email).get_data(as_text=True)
    assert "This account is deactivated." in right and not signed_in(client)


def test_a_sign_in_is_audited_with_the_ip(client, auth, users):
    auth.login(users["user"].email)
    entry = entries("auth.signed_in")[-1]
    assert (entry.actor_id, entry.object_id, entry.ip) == (users["user"].id, users["user"].id, "127.0.0.1")


# ---- the Users page: links, never passwords ----------------------------------------------------


def test_an_admin_creates_a_user_who_gets_a_set_password_link_the_admin_never_sees(app, client, auth, users):
    auth.login(users["admin"].email)
    form = client.get("/admin/users/new").get_data(as_text=True)
    assert 'type="password"' not in form
    response = client.post(
        "/admin/users/new",
        data={"email": "New.Person@Example.org", "name": "New Person", "role": "user", "active": "y"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "A set-password link was sent to new.person@example.org" in page
    [(to, link)] = outbox_links(app)
    assert to == "new.person@example.org" and link not in page
    assert link.split("/")[-1] not in client.get("/admin/users").get_data(as_text=True)
    created = db.session.execute(db.select(User).filter_by(email=to)).scalar_one()
    assert [e.object_id for e in entries("user.created")] == [created.id]
    sent = entries("user.password_link_sent")
    assert sent[0].actor_id == users["admin"].id and sent[0].object_id == created.id
    # the new user chooses a password through the link and signs in with it
    visitor = app.test_client()
    assert (
        visitor.post(link, data={"new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD}).status_code
        == 302
    )
    assert second_client(app, to, NEW_PASSWORD)


def test_an_admin_cannot_set_or_learn_another_users_password(app, client, auth, users):
    auth.login(users["admin"].email)
    target = users["user"]
    page = client.get(f"/admin/users/{target.id}").get_data(as_text=True)
    assert 'type="password"' not in page and "Send set-password link" in page
    version = target.session_version
    response = client.post(
        f"/admin/users/{target.id}",
        data={
            "email": target.email,
            "name": "User",
            "role": "user",
            "active": "y",
            "password": "taken over by an admin",
        },
    )
    assert response.status_code == 302
    target = fresh_user(target)
    assert target.check_password(PASSWORD) and not target.check_password("taken over by an admin")
    assert target.session_version == version and not entries("user.password_set")


def test_an_admin_cannot_redirect_another_users_links_by_changing_their_email(client, auth, users):
    auth.login(users["admin"].email)
    target = users["user"]
    client.post(
        f"/admin/users/{target.id}",
        data={"email": "admin-controlled@example.org", "name": "User", "role": "user", "active": "y"},
    )
    assert fresh_user(target).email == "user@example.org"


def test_a_super_admin_sets_a_password_directly_and_it_is_audited(app, client, auth, users):
    victim = second_client(app, users["user"].email)
    auth.login(users["super_admin"].email)
    page = client.get(f"/admin/users/{users['user'].id}").get_data(as_text=True)
    assert 'type="password"' in page
    client.post(
        f"/admin/users/{users['user'].id}",
        data={
            "email": "user@example.org",
            "name": "User",
            "role": "user",
            "active": "y",
            "password": NEW_PASSWORD,
        },
    )
    assert fresh_user(users["user"]).check_password(NEW_PASSWORD)
    assert not signed_in(victim)
    [entry] = entries("user.password_set")
    assert entry.actor_id == users["super_admin"].id and entry.object_id == users["user"].id


def test_role_changes_deactivation_and_reactivation_are_audited(client, auth, users):
    auth.login(users["admin"].email)
    target = users["user"]
    base = {"email": target.email, "name": "Renamed"}
    client.post(f"/admin/users/{target.id}", data={**base, "role": "admin", "active": "y"})
    client.post(f"/admin/users/{target.id}", data={**base, "role": "admin"})
    client.post(f"/admin/users/{target.id}", data={**base, "role": "admin", "active": "y"})
    assert [e.detail for e in entries("user.role_changed")] == ["User → Admin"]
    assert "Name: User → Renamed" in entries("user.edited")[0].detail
    assert len(entries("user.deactivated")) == len(entries("user.reactivated")) == 1
    assert all(e.actor_id == users["admin"].id for e in entries("user.reactivated"))


# ---- set-password links ------------------------------------------------------------------------


def _send_link(client, auth, users, target: User) -> None:
    auth.login(users["admin"].email)
    response = client.post(f"/admin/users/{target.id}/password-link", follow_redirects=True)
    assert "A set-password link was sent" in response.get_data(as_text=True)
    auth.logout()


def test_a_set_password_link_works_once(app, client, auth, users):
    _send_link(client, auth, users, users["user"])
    [(_, link)] = outbox_links(app)
    assert "Choose your password" in client.get(link).get_data(as_text=True)
    response = client.post(link, data={"new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD})
    assert response.status_code == 302
    assert auth.login(users["user"].email, NEW_PASSWORD).status_code == 302
    auth.logout()
    again = client.post(
        link, data={"new_password": "yet another passphrase", "repeat_password": "yet another passphrase"}
    )
    assert again.status_code == 400 and "This link no longer works" in again.get_data(as_text=True)
    assert fresh_user(users["user"]).check_password(NEW_PASSWORD)
    entry = entries("user.password_changed")[-1]
    assert entry.actor_id == users["user"].id and "link" in entry.detail


def test_a_link_stops_working_once_the_password_changes_another_way(app, client, auth, users, runner):
    _send_link(client, auth, users, users["user"])
    [(_, link)] = outbox_links(app)
    result = runner.invoke(args=["users", "set-password", "user@example.org", "--password", NEW_PASSWORD])
    assert result.exit_code == 0, result.output
    assert client.get(link).status_code == 400


@pytest.mark.parametrize("tamper", ["expired", "forged", "garbage"])
def test_an_expired_or_forged_link_is_refused(app, client, auth, users, tamper):
    from itsdangerous import URLSafeTimedSerializer

    from webapp.auth.links import SALT

    _send_link(client, auth, users, users["user"])
    [(_, link)] = outbox_links(app)
    if tamper == "expired":
        app.config["SET_PASSWORD_LINK_HOURS"] = -1
    elif tamper == "forged":
        token = URLSafeTimedSerializer("another secret", salt=SALT).dumps(
            {"u": users["user"].id, "f": users["user"].password_fingerprint()}
        )
        link = f"/password/{token}"
    else:
        link = "/password/" + "x" * 600
    response = client.post(link, data={"new_password": NEW_PASSWORD, "repeat_password": NEW_PASSWORD})
    assert response.status_code == 400
    assert fresh_user(users["user"]).check_password(PASSWORD)


# ---- own password: rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "current,new,repeat,message",
    [
        ("wrong current one", NEW_PASSWORD, NEW_PASSWORD, "This is not your current password."),
        (PASSWORD, "eleven char", "eleven char", "Use at least 12 characters."),
        (PASSWORD, "password1234", "password1234", "on a list of common passwords"),
        (PASSWORD, "qwertyqwerty", "qwertyqwerty", "on a list of common passwords"),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "!", "The two passwords differ."),
    ],
)
def test_a_new_password_must_follow_the_rules(client, auth, users, current, new, repeat, message):
    auth.login(users["user"].email)
    response = client.post(
        "/account/password",
        data={"current_password": current, "new_password": new, "repeat_password": repeat},
    )
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert fresh_user(users["user"]).check_password(PASSWORD)
    assert not entries("user.password_changed")


@pytest.mark.parametrize(
    "password,refused",
    [
        ("correct horse battery", False),
        ("Tr0ub4dor&3 plus", False),
        ("sunshine2024!!", True),
        ("passwordpassword", True),
        ("aaaaaaaaaaaa", True),
        ("1q2w3e4r5t6y", True),
    ],
)
def test_common_passwords_are_refused(password, refused):
    assert (passwords.password_problem(password) is not None) is refused


def test_the_cli_refuses_a_weak_password_and_ends_the_users_sessions(app, runner, users):
    weak = runner.invoke(args=["users", "set-password", "user@example.org", "--password", "short"])
    assert weak.exit_code != 0 and "at least 12 characters" in weak.output
    version = users["user"].session_version
    result = runner.invoke(args=["users", "set-password", "user@example.org"])
    assert result.exit_code == 0 and "shown once" in result.output
    assert fresh_user(users["user"]).session_version == version + 1
    assert entries("user.password_set")[-1].actor_id is None


# ---- the first super admin's own account ------------------------------------------------------


@pytest.fixture
def first_admin(app) -> User:
    return make_user("admin@conveyor.local", Role.SUPER_ADMIN)


def test_the_first_super_admin_saves_its_own_account_on_the_users_page(client, auth, first_admin):
    auth.login(first_admin.email)
    page = client.get(f"/admin/users/{first_admin.id}").get_data(as_text=True)
    assert "your account page" in page
    response = client.post(
        f"/admin/users/{first_admin.id}",
        data={"email": "admin@conveyor.local", "name": "Ada", "role": "super_admin", "active": "y"},
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert fresh_user(first_admin).name == "Ada"


def test_the_first_super_admin_changes_its_email_and_password_on_its_account_page(client, auth, first_admin):
    auth.login(first_admin.email)
    import re

    page = client.get("/account").get_data(as_text=True)
    ids = [found for found in re.findall(r'<input[^>]* id="([^"]+)"', page) if found != "csrf_token"]
    assert len(ids) == len(set(ids)) and "profile_current_password" in ids  # each label its own field
    for field_id in ("profile_current_password", "current_password"):
        assert f'<label for="{field_id}">Current password</label>' in page
    refused = client.post(
        "/account/profile",
        data={"email": "ada@example.org", "name": "Ada", "current_password": "not it at all"},
    )
    assert "This is not your current password." in refused.get_data(as_text=True)
    assert (
        client.post(
            "/account/profile", data={"email": "ada@example.org", "name": "Ada", "current_password": PASSWORD}
        ).status_code
        == 302
    )
    assert (
        client.post(
            "/account/password",
            data={
                "current_password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "repeat_password": NEW_PASSWORD,
            },
        ).status_code
        == 302
    )
    admin = fresh_user(first_admin)
    assert admin.email == "ada@example.org" and admin.check_password(NEW_PASSWORD)
    assert "Email: admin@conveyor.local → ada@example.org" in entries("user.edited")[-1].detail


def test_a_plain_user_cannot_change_their_own_address(client, auth, users):
    auth.login(users["user"].email)
    client.post(
        "/account/profile", data={"email": "mine@example.org", "name": "Me", "current_password": PASSWORD}
    )
    user = fresh_user(users["user"])
    assert (user.email, user.name) == ("user@example.org", "Me")
