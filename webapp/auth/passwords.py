"""What a password must be, and checking one in the same time whether or not the account exists.

The common-passwords list is the one Django ships (django/contrib/auth/common-passwords.txt.gz,
BSD licence: 20,000 passwords, lowercased, from Royce Williams' list of leaked passwords)."""

from __future__ import annotations

import gzip
import secrets
from functools import cache
from pathlib import Path

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 12
MAX_LENGTH = 200  # hashing stays cheap; nobody types more
COMMON_LIST = Path(__file__).with_name("common-passwords.txt.gz")
# what people put after a common word to pass a rule ("sunshine2024!")
_DECORATION = "0123456789!@#$%^&*()-_=+.,;:?~ "


@cache
def common_passwords() -> frozenset[str]:
    """The common passwords, lowercased (read once per process)."""
    with gzip.open(COMMON_LIST, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def _repeated_unit(text: str) -> str:
    """The shortest piece `text` is a repetition of ('abcabc' → 'abc'), or `text` itself."""
    for size in range(1, len(text) // 2 + 1):
        if len(text) % size == 0 and text[:size] * (len(text) // size) == text:
            return text[:size]
    return text


def is_common(password: str) -> bool:
    """On the list as it is, with digits or signs added at the end, or repeated
    ('qwertyqwerty', 'aaaaaaaaaaaa')."""
    common = common_passwords()
    lowered = password.lower().strip()
    base = lowered.rstrip(_DECORATION)
    unit = _repeated_unit(lowered)
    return (
        lowered in common
        or (len(base) >= 4 and base in common)
        or (unit != lowered and (len(unit) <= 4 or unit in common))
    )


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None when it is fine."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    if is_common(password):
        return "This password is on a list of common passwords. Choose another one."
    return None


def hash_method() -> str:
    """The configured hashing method (tests use a fast one)."""
    return current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")


@cache
def _dummy_hash(method: str) -> str:
    return generate_password_hash(secrets.token_urlsafe(16), method=method)


def verify(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; with no hash (an unknown email) a dummy hash
    of the configured method is checked instead, so both answers take as long."""
    if password_hash is None:
        check_password_hash(_dummy_hash(hash_method()), password)
        return False
    return check_password_hash(password_hash, password)
