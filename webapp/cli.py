"""Command line: users, first-start bootstrap and the scheduler process."""

from __future__ import annotations

import secrets
import time

import click
from flask import Flask
from flask.cli import AppGroup
from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models.users import Role, User

users_cli = AppGroup("users", help="Manage Conveyor users.")


def _checked_password(password: str | None) -> str:
    """The given password if it passes the rules (else a clear error), or a generated one."""
    from webapp.auth.passwords import password_problem

    if password is None:
        while password_problem(generated := secrets.token_urlsafe(12)):
            pass  # (practically never: 16 random characters)
        return generated
    if problem := password_problem(password):
        raise click.ClickException(f"password refused: {problem}")
    return password


@users_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.USER.value)
@click.option("--name", default="")
@click.option("--password", default=None, help="Generated and printed once when omitted.")
def create_user(email: str, role: str, name: str, password: str | None) -> None:
    """Create a user with a role."""
    from webapp import audit
    from webapp.auth.forms import account_email_problem

    email = email.strip().lower()
    if problem := account_email_problem(email):
        raise click.ClickException(problem)
    if db.session.execute(select(User).where(func.lower(User.email) == email)).scalar():
        raise click.ClickException(f"a user with email {email} already exists")
    user = User(email=email, name=name, role=Role(role))
    generated = _checked_password(password)
    user.set_password(generated)
    db.session.add(user)
    db.session.flush()
    audit.record(
        "user.created",
        user,
        owner_id=user.id,
        commit=False,
        detail=f"Role {user.role.label}, from the command line",
    )
    db.session.commit()
    click.echo(f"Created {role} {email}.")
    if not password:
        click.echo(f"Password (shown once): {generated}")


@users_cli.command("set-password")
@click.argument("email")
@click.option("--password", default=None, help="Generated and printed once when omitted.")
def set_password(email: str, password: str | None) -> None:
    """Set a new password for a user (the recovery path); every session of the user ends."""
    from webapp import audit

    user = db.session.execute(select(User).where(func.lower(User.email) == email.strip().lower())).scalar()
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    generated = _checked_password(password)
    user.set_password(generated)
    audit.record(
        "user.password_set",
        user,
        owner_id=user.id,
        commit=False,
        detail="From the command line; every session of the user ended",
    )
    db.session.commit()
    click.echo(f"Password for {user.email} changed; every session of the user is signed out.")
    if not password:
        click.echo(f"New password (shown once): {generated}")


def bootstrap() -> tuple[str, str | None]:
    """Apply migrations; on first start create a super admin. Returns (email, new password)."""
    from flask_migrate import upgrade

    upgrade()
    first = db.session.execute(select(User).order_by(User.id)).scalars().first()
    if first is not None:
        admin = (
            db.session.execute(select(User).where(User.role == Role.SUPER_ADMIN).order_by(User.id))
            .scalars()
            .first()
        )
        return (admin or first).email, None
    password = secrets.token_urlsafe(12)
    admin = User(email="admin@conveyor.local", name="Super admin", role=Role.SUPER_ADMIN)
    admin.set_password(password)
    db.session.add(admin)
    db.session.commit()
    return admin.email, password


@click.command("bootstrap")
def bootstrap_command() -> None:
    """Apply migrations and create the first super admin if there is no user."""
    email, password = bootstrap()
    if password:
        click.echo(f"Created super admin {email} with password (shown once): {password}")
    else:
        click.echo(f"Database up to date; log in as {email}.")


@click.command("scheduler")
@click.option("--once", is_flag=True, help="One pass, then exit (for tests).")
def scheduler_command(once: bool) -> None:
    """The scheduler process: timed enqueues, the run reconciler and the retention sweep."""
    from redis.exceptions import RedisError

    from webapp.engine.scheduler_loop import loop

    delay = 1.0
    while True:  # a Redis outage is waited out here, never a reason to exit
        try:
            loop(once=once)
            return
        except RedisError as problem:
            if once:
                raise
            click.echo(f"scheduler: job queue unreachable ({problem}); retrying in {delay:g} s", err=True)
            time.sleep(delay)
            delay = min(30.0, delay * 2)


def register_cli(app: Flask) -> None:
    """Attach Conveyor's commands to `flask`."""
    app.cli.add_command(users_cli)
    app.cli.add_command(bootstrap_command)
    app.cli.add_command(scheduler_command)
