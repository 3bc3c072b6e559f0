"""Configuration: defaults in code, environment overrides (CONVEYOR_*), tests pass a mapping."""

from __future__ import annotations

import logging
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any

PRIVATE_MARKER = ".owner-only"  # under var/: files left readable by others were made 0600
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]?)b?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Turn '50MB', '512k' or '1048576' into a number of bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 200MB)")
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit]


def _secret_key(var_dir: Path) -> str:
    """Read the secret key kept under var/, creating it on first use."""
    path = var_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


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
        "BASE_URL": env.get("CONVEYOR_BASE_URL", "http://127.0.0.1:5000"),
        "QUEUE_NAME": env.get("CONVEYOR_QUEUE", "conveyor"),
        "IMPORT_BATCH_SIZE": int(env.get("CONVEYOR_IMPORT_BATCH_SIZE", "20000")),
        "EXPORT_BATCH_SIZE": int(env.get("CONVEYOR_EXPORT_BATCH_SIZE", "5000")),
        "CONCURRENCY": max(1, int(env.get("CONVEYOR_CONCURRENCY", "1"))),
        "EMAIL_CONCURRENCY": max(1, int(env.get("CONVEYOR_EMAIL_CONCURRENCY", "1"))),
        "KILL_AFTER_SECONDS": int(env.get("CONVEYOR_KILL_AFTER_SECONDS", "30")),
        "HEARTBEAT_SECONDS": float(env.get("CONVEYOR_HEARTBEAT_SECONDS", "5")),
        "DEAD_AFTER_SECONDS": float(env.get("CONVEYOR_DEAD_AFTER_SECONDS", "30")),
        "RECONCILE_EVERY_SECONDS": float(env.get("CONVEYOR_RECONCILE_EVERY_SECONDS", "10")),
        "PAGE_SIZE": 50,
        "SMTP_CONNECTIONS": int(env.get("CONVEYOR_SMTP_CONNECTIONS", "4")),
        "EMAIL_BATCH_SIZE": int(env.get("CONVEYOR_EMAIL_BATCH_SIZE", "200")),
        "EMAIL_RETRY_BACKOFF": float(env.get("CONVEYOR_EMAIL_RETRY_BACKOFF", "2")),
        "COLLECT_DAYS": float(env.get("CONVEYOR_COLLECT_DAYS", "30")),
        "BOUNCE_TOKEN": env.get("CONVEYOR_BOUNCE_TOKEN") or None,
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
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = env.get("CONVEYOR_SECRET_KEY") or _secret_key(var_dir)
    for sub in ("results", "uploads", "outbox"):
        key = f"{sub.upper()}_DIR"
        config.setdefault(key, str(var_dir / sub))
        Path(config[key]).mkdir(parents=True, exist_ok=True)
    make_private(var_dir, [Path(config[f"{sub}_DIR"]) for sub in ("RESULTS", "UPLOADS", "OUTBOX")])
    return config
