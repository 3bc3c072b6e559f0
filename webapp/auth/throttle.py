"""Sign-in throttling: failed attempts are counted per account and per IP address in fixed windows
(Redis INCR + EXPIRE on the job queue's Redis, shared by every web process); once either count
reaches its limit, sign-in for that account or from that address waits until the window ends.

When Redis cannot be reached, sign-in keeps working: the counts are kept in this process's memory
instead (each web process counts on its own, and a restart forgets them), and a warning is logged.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time

from flask import current_app

from webapp.engine import queueing

MEMORY_KEYS = 10_000  # the fallback never holds more keys than this


class _MemoryCounters:
    """Fixed-window counters in this process, for while Redis is down."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)

    def _live(self, key: str, now: float) -> tuple[int, float] | None:
        entry = self.counts.get(key)
        if entry is not None and entry[1] <= now:
            del self.counts[key]
            return None
        return entry

    def incr(self, key: str, window: int) -> None:
        now = time.monotonic()
        with self.lock:
            if len(self.counts) >= MEMORY_KEYS:
                for stale in [k for k, (_, end) in self.counts.items() if end <= now]:
                    del self.counts[stale]
                if len(self.counts) >= MEMORY_KEYS:  # a flood of addresses: forget the oldest
                    del self.counts[min(self.counts, key=lambda k: self.counts[k][1])]
            count, end = self._live(key, now) or (0, now + window)
            self.counts[key] = (count + 1, end)

    def get(self, key: str) -> tuple[int, float]:
        """(count, seconds left in the window)."""
        now = time.monotonic()
        with self.lock:
            count, end = self._live(key, now) or (0, now)
        return count, max(0.0, end - now)

    def delete(self, key: str) -> None:
        with self.lock:
            self.counts.pop(key, None)


_memory = _MemoryCounters()


def _keys(email: str, ip: str) -> dict[str, str]:
    """The counter keys of this installation (namespaced by its queue name) for an account and
    an address; both hashed, so any input makes a short key."""
    prefix = f"conveyor:{current_app.config['QUEUE_NAME']}:signin"

    def digest(value: str) -> str:
        return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    return {"account": f"{prefix}:account:{digest(email.strip().lower())}", "ip": f"{prefix}:ip:{digest(ip)}"}


def _limits() -> dict[str, int]:
    config = current_app.config
    return {"account": config["SIGNIN_ACCOUNT_LIMIT"], "ip": config["SIGNIN_IP_LIMIT"]}


def _window() -> int:
    return int(current_app.config["SIGNIN_WINDOW_MINUTES"] * 60)


def _redis():
    """The Redis connection, or None when it is known to be unreachable (then memory counts)."""
    if not queueing.queue_reachable():
        return None
    return queueing.redis_connection()


def _fallback(problem: Exception) -> None:
    current_app.logger.warning("sign-in throttle: Redis unreachable (%s); counting in memory", problem)


def wait_seconds(email: str, ip: str) -> int:
    """How long sign-in for `email` from `ip` must wait (0: it may go ahead)."""
    keys, limits = _keys(email, ip), _limits()
    states: dict[str, tuple[int, float]] = {}
    redis = _redis()
    if redis is not None:
        try:
            pipe = redis.pipeline(transaction=False)
            for key in keys.values():
                pipe.get(key)
                pipe.ttl(key)
            answers = pipe.execute()
            for index, kind in enumerate(keys):
                count, ttl = answers[2 * index], answers[2 * index + 1]
                states[kind] = (int(count or 0), float(max(ttl, 0)))
        except Exception as problem:  # any Redis failure: count in memory
            _fallback(problem)
            redis = None
    if redis is None:
        states = {kind: _memory.get(key) for kind, key in keys.items()}
    waits = [left for kind, (count, left) in states.items() if count >= limits[kind]]
    return math.ceil(max(waits)) if waits else 0


def record_failure(email: str, ip: str) -> None:
    """Count one failed attempt for the account and for the address."""
    keys, window = _keys(email, ip), _window()
    redis = _redis()
    if redis is not None:
        try:
            pipe = redis.pipeline(transaction=False)
            for key in keys.values():
                pipe.incr(key)
                pipe.ttl(key)
            answers = pipe.execute()
            for index, key in enumerate(keys.values()):
                if answers[2 * index + 1] == -1:  # the window starts at the first failure
                    redis.expire(key, window)
            return
        except Exception as problem:
            _fallback(problem)
    for key in keys.values():
        _memory.incr(key, window)


def clear_account(email: str) -> None:
    """A successful sign-in forgets the account's failures (the address's stay counted)."""
    key = _keys(email, "")["account"]
    _memory.delete(key)
    redis = _redis()
    if redis is not None:
        try:
            redis.delete(key)
        except Exception as problem:
            _fallback(problem)


def minutes_text(seconds: int) -> str:
    """'5 minutes', '1 minute'."""
    minutes = max(1, math.ceil(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
