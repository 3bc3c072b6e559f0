"""Configuration: defaults in code, environment overrides (CONVEYOR_*), tests pass a mapping."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any

import click

PRIVATE_MARKER = ".owner-only"  # under var/: files left readable by others were made 0600
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Turn '50MB', '512k' or '1048576' into a number of bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 200MB)")
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


class MissingIdentity(click.ClickException):
    """The deployment's shared secrets are not set although several machines may share its
    database (a ClickException: the `flask` command prints it as one error line)."""


IDENTITY = {"SECRET_KEY": "CONVEYOR_SECRET_KEY", "BOUNCE_TOKEN": "CONVEYOR_BOUNCE_TOKEN"}


def kept_secret(var_dir: Path, name: str, nbytes: int = 48) -> str:
    """The secret kept in var/<name>, created on first use. It is written whole to a temporary
    file and then linked into place, which fails if the name exists: of processes starting
    together on a fresh var dir (gunicorn's workers) the first writer wins, and every one reads
    that value, never a half-written file."""
    path = var_dir / name
    if not path.exists() or not path.read_text().strip():
        handle, temporary = tempfile.mkstemp(dir=var_dir, prefix=f".{name}-")  # 0600
        try:
            with os.fdopen(handle, "w") as out:
                out.write(secrets.token_urlsafe(nbytes) + "\n")
            try:
                os.link(temporary, path)
            except FileExistsError:
                if not path.read_text().strip():  # left empty by an older, non-atomic version
                    os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
    return path.read_text().strip()


def embedded_database(url: str) -> bool:
    """Whether the database is the embedded default's kind (SQLite: one machine only)."""
    return url.startswith("sqlite")


def require_identity(config: dict[str, Any]) -> None:
    """Refuse to start on a shared database without the deployment's secret key and bounce
    token: each machine would otherwise generate its own, and a link signed on a worker (a
    campaign's tracking or unsubscribe link) would be rejected by a web server."""
    missing = [variable for key, variable in IDENTITY.items() if not config.get(key)]
    if missing and not embedded_database(config["SQLALCHEMY_DATABASE_URI"]):
        raise MissingIdentity(
            f"Conveyor refuses to start: {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set. With a database other than the "
            "embedded SQLite, Conveyor's processes may run on several machines, and each would "
            "otherwise generate its own secret key and bounce token, signing tracking and "
            "unsubscribe links (and accepting bounce reports) that the others reject. Set "
            "CONVEYOR_SECRET_KEY and CONVEYOR_BOUNCE_TOKEN to the same values for every process "
            "on every machine (e.g. the output of: python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))')."
        )


def require_shared_queue(config: dict[str, Any]) -> None:
    """Refuse to start on a shared database without a shared Redis: the embedded one serves this
    machine only, so runs asked for here would never reach a worker elsewhere (and theirs never
    reach this one's)."""
    if not config.get("REDIS_URL") and not embedded_database(config["SQLALCHEMY_DATABASE_URI"]):
        raise MissingIdentity(
            "Conveyor refuses to start: CONVEYOR_REDIS_URL is not set. With a database other "
            "than the embedded SQLite, Conveyor's processes may run on several machines, and an "
            "embedded Redis would serve this one only: runs asked for here would never reach a "
            "worker elsewhere. Set CONVEYOR_REDIS_URL (e.g. redis://host:6379/0) to the same "
            "Redis for every process on every machine."
        )


def make_private(var_dir: Path, folders: list[Path]) -> None:
    """Make what an older version left readable by others its owner's only: var/ and its folders
    0700 at every start; once per install, the files directly in them 0600 (files written from
    now on are 0600 anyway: load_config sets the umask)."""
    try:
        for folder in (var_dir, *folders):
            folder.chmod(0o700)
        if (var_dir / PRIVATE_MARKER).exists():
            return
        for folder in (var_dir, *folders):
            with os.scandir(folder) as entries:
                for entry in entries:
                    mode = entry.stat(follow_symlinks=False).st_mode
                    if stat.S_ISREG(mode) and mode & 0o077:
                        os.chmod(entry.path, stat.S_IMODE(mode) & 0o700)
        (var_dir / PRIVATE_MARKER).touch()
    except OSError as problem:  # e.g. a var dir owned by another user: say so, still start
        logging.getLogger("conveyor").warning("could not make %s owner-only: %s", var_dir, problem)


def database_url(url: str) -> str:
    """The database URL as SQLAlchemy should read it: PostgreSQL through psycopg 3 whichever way
    the URL names it (`postgres://`, `postgresql://`, `postgresql+psycopg2://` as older docs say)."""
    for scheme in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_networks(text: str) -> list[Network]:
    """METRICS_ALLOW's comma-separated addresses and networks ('127.0.0.1,::1,10.0.0.0/8')."""
    networks = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"CONVEYOR_METRICS_ALLOW: not an address or network: {entry!r}") from None
    return networks


def load_config(test_config: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the app config from defaults, the environment and an optional mapping."""
    env = os.environ
    overrides = dict(test_config or {})
    var_dir = Path(overrides.get("VAR_DIR") or env.get("CONVEYOR_VAR_DIR") or "var").resolve()
    # before the first file or folder: whatever this process (and the embedded Redis it starts)
    # writes is its owner's only, 0600 files and 0700 folders
    os.umask(0o077)
    var_dir.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "VAR_DIR": str(var_dir),
        "SQLALCHEMY_DATABASE_URI": env.get("CONVEYOR_DATABASE_URL") or f"sqlite:///{var_dir / 'conveyor.db'}",
        "REDIS_URL": env.get("CONVEYOR_REDIS_URL") or None,
        # where uploads, results and outbox messages live: a local (or shared) folder under var/
        # by default, or S3-compatible object storage (s3://bucket/prefix)
        "STORAGE_URL": env.get("CONVEYOR_STORAGE_URL") or None,
        # /metrics and /healthz answer without a session only to these addresses (comma-separated
        # addresses or networks)
        "METRICS_ALLOW": env.get("CONVEYOR_METRICS_ALLOW", "127.0.0.1,::1"),
        # the schema commands (flask db ...); the RQ worker leaves them out
        "MIGRATIONS": True,
        "TIMEZONE": env.get("CONVEYOR_TIMEZONE", "America/New_York"),
        "MAX_CONTENT_LENGTH": parse_size(env.get("CONVEYOR_UPLOAD_LIMIT", "512MB")),
        # an upload never mapped to a job is deleted after this many hours
        "UPLOAD_TTL_HOURS": float(env.get("CONVEYOR_UPLOAD_TTL_HOURS", "24")),
        "SMTP_URL": env.get("CONVEYOR_SMTP_URL") or None,
        # the sender of notifications and set-password emails (a relay may refuse the default)
        "NOTIFY_FROM": env.get("CONVEYOR_NOTIFY_FROM") or "Conveyor <conveyor@localhost>",
        "BASE_URL": env.get("CONVEYOR_BASE_URL", "http://127.0.0.1:5000"),
        "QUEUE_NAME": env.get("CONVEYOR_QUEUE", "conveyor"),
        "IMPORT_BATCH_SIZE": int(env.get("CONVEYOR_IMPORT_BATCH_SIZE", "20000")),
        "EXPORT_BATCH_SIZE": int(env.get("CONVEYOR_EXPORT_BATCH_SIZE", "5000")),
        "DELETE_BATCH_SIZE": int(env.get("CONVEYOR_DELETE_BATCH_SIZE", "1000")),
        "CONCURRENCY": max(1, int(env.get("CONVEYOR_CONCURRENCY", "1"))),
        "EMAIL_CONCURRENCY": max(1, int(env.get("CONVEYOR_EMAIL_CONCURRENCY", "1"))),
        "KILL_AFTER_SECONDS": int(env.get("CONVEYOR_KILL_AFTER_SECONDS", "30")),
        "HEARTBEAT_SECONDS": float(env.get("CONVEYOR_HEARTBEAT_SECONDS", "5")),
        "DEAD_AFTER_SECONDS": float(env.get("CONVEYOR_DEAD_AFTER_SECONDS", "30")),
        "RECONCILE_EVERY_SECONDS": float(env.get("CONVEYOR_RECONCILE_EVERY_SECONDS", "10")),
        # /healthz fails once the scheduler's last pass is older than this
        "SCHEDULER_STALE_SECONDS": float(env.get("CONVEYOR_SCHEDULER_STALE_SECONDS", "60")),
        "PAGE_SIZE": 50,
        # requests an API token may make a minute (more are a 429 with Retry-After)
        "API_RATE_LIMIT": int(env.get("CONVEYOR_API_RATE_LIMIT", "600")),
        "SMTP_CONNECTIONS": int(env.get("CONVEYOR_SMTP_CONNECTIONS", "4")),
        "EMAIL_BATCH_SIZE": int(env.get("CONVEYOR_EMAIL_BATCH_SIZE", "200")),
        "EMAIL_RETRY_BACKOFF": float(env.get("CONVEYOR_EMAIL_RETRY_BACKOFF", "2")),
        "COLLECT_DAYS": float(env.get("CONVEYOR_COLLECT_DAYS", "30")),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_HTTPONLY": True,
        # the session cookie is also Secure when the request came over HTTPS
        # (webapp/security.py); Flask-Login's remember-me cookie is not used (no remember=True)
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_HTTPONLY": True,
        # how many reverse proxies in front may be believed about X-Forwarded-For/-Proto/-Host
        "TRUST_PROXY": max(0, int(env.get("CONVEYOR_TRUST_PROXY", "0"))),
        # accounts (webapp/auth): a session ends after this long without activity; a sign-in
        # waits once an account or an IP address had this many failures in the window
        "SESSION_IDLE_HOURS": float(env.get("CONVEYOR_SESSION_IDLE_HOURS", "8")),
        "SIGNIN_ACCOUNT_LIMIT": int(env.get("CONVEYOR_SIGNIN_ACCOUNT_LIMIT", "5")),
        "SIGNIN_IP_LIMIT": int(env.get("CONVEYOR_SIGNIN_IP_LIMIT", "50")),
        "SIGNIN_WINDOW_MINUTES": float(env.get("CONVEYOR_SIGNIN_WINDOW_MINUTES", "15")),
        "SET_PASSWORD_LINK_HOURS": float(env.get("CONVEYOR_SET_PASSWORD_LINK_HOURS", "48")),
    }
    config.update(overrides)
    config["VAR_DIR"] = str(var_dir)
    config["SQLALCHEMY_DATABASE_URI"] = database_url(config["SQLALCHEMY_DATABASE_URI"])
    for key, variable in IDENTITY.items():  # a mapping's empty value leaves it to the environment
        config[key] = config.get(key) or env.get(variable) or None
    require_identity(config)
    require_shared_queue(config)
    allowed_networks(config["METRICS_ALLOW"])  # a mistyped entry stops the start, not a scrape
    # the embedded default runs on one machine: its secrets are generated once and kept under var/
    config["SECRET_KEY"] = config["SECRET_KEY"] or kept_secret(var_dir, "secret_key", 48)
    config["BOUNCE_TOKEN"] = config["BOUNCE_TOKEN"] or kept_secret(var_dir, "bounce_token", 32)
    for sub in ("results", "uploads", "outbox"):
        key = f"{sub.upper()}_DIR"
        config.setdefault(key, str(var_dir / sub))
        Path(config[key]).mkdir(parents=True, exist_ok=True)
    make_private(var_dir, [Path(config[f"{sub}_DIR"]) for sub in ("RESULTS", "UPLOADS", "OUTBOX")])
    return config
