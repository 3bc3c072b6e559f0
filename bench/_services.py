"""PostgreSQL and Redis for the benches' --postgres runs: the ones CONVEYOR_DATABASE_URL and
CONVEYOR_REDIS_URL name, else throw-away ones (tests/services.py) stopped at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import common  # noqa: F401  (puts the repository root on sys.path)

# what a process on a shared database must be given (webapp/config.py: require_identity)
IDENTITY = {"CONVEYOR_SECRET_KEY": "bench-secret-key", "CONVEYOR_BOUNCE_TOKEN": "bench-bounce-token"}


@contextmanager
def postgres_services() -> Iterator[tuple[str, str]]:
    """(database URL, Redis URL) for a --postgres run, up until the block ends."""
    from tests.services import postgres, redis_server
    from webapp.config import database_url

    given = os.environ.get("CONVEYOR_DATABASE_URL")
    if given and not database_url(given).startswith("postgresql"):
        raise SystemExit("--postgres: CONVEYOR_DATABASE_URL is not a PostgreSQL URL")
    with ExitStack() as stack:
        url = given or stack.enter_context(postgres())
        redis_url = os.environ.get("CONVEYOR_REDIS_URL") or stack.enter_context(redis_server())
        yield url, redis_url
