"""Queue places of many queued runs in one query: what a monitor page shows beside each run that
waits ("#1 in the data line, waiting for run #12").

runs.queue_position(run) answers for one run in two or three queries; a monitor page with N
queued runs, refreshed every 2 s by every open monitor, asked it 2-3·N times. queue_places()
asks once for the whole page, with the same rules (the test in tests/test_waiting.py holds the
two to the same answers)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from sqlalchemy import Select, bindparam, case, func, select
from sqlalchemy.orm import defer

from webapp.engine.runs import HOLDING, _taking_a_slot, _waiting_in_line
from webapp.extensions import db
from webapp.jobtypes import lane_types
from webapp.models.runs import Run
from webapp.rules.states import RunState

LANES = ("data", "email")


def queue_places(runs: Iterable[Run]) -> dict[int, tuple[int, Run | None]]:
    """{run id: (place in line, the run it waits for)} for the queued runs among `runs`, as
    runs.queue_position gives them one by one, in one SELECT."""
    ids = [run.id for run in runs if run.state is RunState.QUEUED]
    if not ids:
        return {}
    rows = db.session.execute(_places_statement(), {"ids": ids}).all()
    return {run_id: (place, blocking) for run_id, place, blocking in rows}


@cache
def _places_statement() -> Select:
    """One row per asked-for run: its id, its place and the Run it waits for (or None). Each
    rule of queue_position is a correlated subquery of the waiting run; the lane-dependent ones
    are chosen by the waiting run's lane (a CASE evaluates only the branch it takes)."""
    waiting = Run.__table__.alias("waiting")
    in_email_lane = waiting.c.job_type.in_(lane_types("email"))
    ahead = case((in_email_lane, _ahead(waiting, "email")), else_=_ahead(waiting, "data"))
    by_slot = case(
        (in_email_lane, _first_slot_holder(waiting, "email")), else_=_first_slot_holder(waiting, "data")
    )
    placed = (
        select(
            waiting.c.id.label("run_id"),
            (ahead + 1).label("place"),
            func.coalesce(_own_jobs_first(waiting), by_slot).label("blocking_id"),
        )
        .where(waiting.c.id.in_(bindparam("ids", expanding=True)))
        .subquery("placed")
    )
    return (
        select(placed.c.run_id, placed.c.place, Run)
        .select_from(placed)
        .outerjoin(Run, Run.id == placed.c.blocking_id)
        .options(defer(Run.checkpoint), defer(Run.error))
    )


def _ahead(waiting, lane: str):
    """How many runs wait ahead of `waiting` in `lane`: the lane's runs queued before it and not
    yet handed to a worker (queue_position's count; runs holding a slot are not in line)."""
    line = Run.__table__.alias(f"line_{lane}")
    return (
        select(func.count())
        .select_from(line)
        .where(line.c.id != waiting.c.id, line.c.id < waiting.c.id, _waiting_in_line(line, lane))
        .correlate(waiting)
        .scalar_subquery()
    )


def _own_jobs_first(waiting):
    """The first run of `waiting`'s own job that holds it or was queued before it."""
    same_job = Run.__table__.alias("same_job")
    return (
        select(same_job.c.id)
        .where(
            same_job.c.job_id.is_not_distinct_from(waiting.c.job_id),
            same_job.c.id != waiting.c.id,
            same_job.c.state.in_([s.value for s in HOLDING])
            | ((same_job.c.state == RunState.QUEUED.value) & (same_job.c.id < waiting.c.id)),
        )
        .order_by(same_job.c.id)
        .limit(1)
        .correlate(waiting)
        .scalar_subquery()
    )


def _first_slot_holder(waiting, lane: str):
    """The run holding one of `lane`'s slots that started first (not started yet: last)."""
    slot = Run.__table__.alias(f"slot_{lane}")
    return (
        select(slot.c.id)
        .where(_taking_a_slot(slot, lane), slot.c.id != waiting.c.id)
        .order_by(slot.c.started_at.is_(None), slot.c.started_at, slot.c.id)
        .limit(1)
        .correlate(waiting)
        .scalar_subquery()
    )
