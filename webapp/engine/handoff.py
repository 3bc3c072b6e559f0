"""The one hand-off between the run engine and the group chains built on top of it.

`runs` and `followups` know nothing of groups: when a group run's turn comes (dispatch), when a
step run ends and when a failed step is retried, they announce it here; `chains` installs the
functions that react (`chains.install`, called once by `create_app`). Imports so go one way
(chains → runs → handoff) and a stop or retry never bounces between the two modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webapp.models.runs import Run


@dataclass(frozen=True)
class ChainDriver:
    """What drives group runs: how one starts, and what a step's end or retry does to it."""

    start: Callable[[Run], None]  # a waiting group run's turn came: start its first step
    step_ended: Callable[[Run], None]  # a step run ended: continue, hold or end the chain
    step_retried: Callable[[Run], None]  # a failed step was queued again: reopen the chain


_driver: ChainDriver | None = None


def install(driver: ChainDriver) -> None:
    """Set what drives group runs (chains.install does, once per process)."""
    global _driver
    _driver = driver


def _installed() -> ChainDriver:
    if _driver is None:
        raise RuntimeError("group chains are not installed: create_app() installs them")
    return _driver


def group_due(group_run: Run) -> None:
    """A waiting group run may start now (its group is free)."""
    _installed().start(group_run)


def step_ended(step: Run) -> None:
    """A step run of a group run ended."""
    _installed().step_ended(step)


def step_retried(step: Run) -> None:
    """A failed step run of a group run was queued again."""
    _installed().step_retried(step)
