"""The figures behind the pages' charts (issue 13): a job's recent runs, a group's recent runs as
stacked steps, a campaign run's sends per minute and opens and clicks per day.

Each function reads what its chart needs in one or two bounded queries and returns plain lists
(labels, values, failed flags) that the page shows twice: drawn by static/charts.js from the
canvas's data-chart attribute, and as a table of the same figures. Times are shown in the account
time zone (rules.clock)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

from flask import current_app
from sqlalchemy import case, func, literal, select

from webapp.extensions import db
from webapp.jobtypes import job_type_for
from webapp.models.base import utcnow
from webapp.models.campaigns import Recipient, RecipientStatus
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.rules.clock import format_duration, format_local, local_midnight_utc, to_local
from webapp.rules.states import RunState

RUNS_SHOWN = 50  # a job's or a group's chart: its last 50 finished runs
MINUTES_SHOWN = 240  # a campaign's sends: the last four hours of sending, a bar a minute
DAYS_SHOWN = 31  # a campaign's opens and clicks: a bar a day for a month at most
# runs that ran and ended; a skipped run never started, so it has no run time to draw
CHARTED = (RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED)
# a campaign run's page shows its sends while it sends, then its opens and clicks
SENDING = (RunState.QUEUED, RunState.INITIALIZING, RunState.PROCESSING, RunState.PAUSED)
MINUTES_FROM = 120  # run times of two minutes or more are drawn in minutes, shorter ones in seconds
REFRESH_SENDING = 4  # seconds between refreshes of the sends chart while it sends (counts: every 2 s)
REFRESH_COLLECTING = 60  # ... and of the opens and clicks chart while it collects


class RunsChart(TypedDict):
    """A job's last finished runs, oldest first: run time and its first counter."""

    kind: str  # "runs"
    labels: list[str]  # "#12"
    started: list[str]  # "Nov 23, 2026 10:41 AM EST"
    states: list[str]  # "completed", "failed", "cancelled"
    failed: list[bool]
    durations: list[float]  # in duration_unit
    duration_texts: list[str]  # "3 min 20 s"
    duration_unit: str  # "min" or "s"
    count_label: str | None  # the type's first counter ("Exported"); None if it has none
    count_noun: str  # what it counts ("supporters")
    counts: list[int]
    summary: str  # the canvas's aria-label


class StepSeries(TypedDict):
    """One step of a group, across its runs."""

    number: int
    label: str  # "Step 1 · Nightly import"
    values: list[float | None]  # run time in duration_unit; None where the step did not run
    texts: list[str]  # "3 min 20 s", "" where it did not run


class GroupChart(TypedDict):
    """A group's last finished runs, oldest first, each a stack of its steps' run times."""

    kind: str  # "group"
    labels: list[str]
    started: list[str]
    states: list[str]
    failed: list[bool]
    failed_step: list[int | None]  # the step that failed in each run
    totals: list[str]  # the group run's own run time
    duration_unit: str
    steps: list[StepSeries]
    summary: str


class CampaignChart(TypedDict):
    """A campaign run's sends a minute (while it sends) or opens and clicks a day (after)."""

    kind: str  # "sends" or "engagement"
    labels: list[str]  # "10:41 AM" or "Nov 23"
    zone: str  # the time zone's abbreviation, for the axis title ("EST")
    sent: list[int]  # kind "sends"
    opens: list[int]  # kind "engagement"
    clicks: list[int]
    empty: bool  # nothing to draw yet: the page says so in a sentence
    refresh: int | None  # seconds between refreshes of the chart, None once nothing changes
    summary: str


def job_runs_chart(job: Job) -> RunsChart | None:
    """The job's last 50 finished runs (oldest first), in one query; None if it has none."""
    job_type = job_type_for(job.job_type)
    counter = next(iter(job_type.count_labels), None)
    count_column = getattr(Run, counter) if counter else literal(0)
    rows = db.session.execute(  # newest first, then turned round
        select(Run.number, Run.state, Run.started_at, Run.finished_at, count_column)
        .where(
            Run.job_id == job.id,
            Run.state.in_(CHARTED),
            Run.started_at.is_not(None),
            Run.finished_at.is_not(None),
        )
        .order_by(Run.id.desc())
        .limit(RUNS_SHOWN)
    ).all()[::-1]
    if not rows:
        return None
    zone = _zone()
    seconds = [(finished - started).total_seconds() for _, _, started, finished, _ in rows]
    unit = _unit(seconds)
    labels = [_run_label(number) for number, *_ in rows]
    failed = [state is RunState.FAILED for _, state, *_ in rows]
    count_label = job_type.count_labels[counter] if counter else None
    counts = [count or 0 for *_, count in rows]
    summary = (
        f"Run time{f' and {count_label.lower()} {job_type.noun}' if count_label else ''} of the last "
        f"{_plural(len(rows), 'finished run')}, {labels[0]} to {labels[-1]}: run time from "
        f"{format_duration(min(seconds))} to {format_duration(max(seconds))}"
        f"{_failures(failed)}."
    )
    return RunsChart(
        kind="runs",
        labels=labels,
        started=[format_local(started, zone) for _, _, started, _, _ in rows],
        states=[state.value for _, state, *_ in rows],
        failed=failed,
        durations=[_in_unit(s, unit) for s in seconds],
        duration_texts=[format_duration(s) for s in seconds],
        duration_unit=unit,
        count_label=count_label,
        count_noun=job_type.noun,
        counts=counts,
        summary=summary,
    )


def group_runs_chart(group: Job) -> GroupChart | None:
    """The group's last 50 finished runs (oldest first) with their steps' run times, in two
    queries; None if it has none."""
    runs = db.session.execute(  # newest first, then turned round
        select(Run.id, Run.number, Run.state, Run.started_at, Run.finished_at)
        .where(Run.job_id == group.id, Run.state.in_(CHARTED), Run.started_at.is_not(None))
        .order_by(Run.id.desc())
        .limit(RUNS_SHOWN)
    ).all()[::-1]
    if not runs:
        return None
    # the latest run of every step of each group run (a retried step has more than one)
    latest: dict[tuple[int, int], Any] = {}
    for step in db.session.execute(
        select(Run.parent_run_id, Run.step, Run.job_name, Run.state, Run.started_at, Run.finished_at)
        .where(Run.parent_run_id.in_([run.id for run in runs]), Run.step.is_not(None))
        .order_by(Run.id)
    ):
        latest[(step.parent_run_id, step.step)] = step
    numbers = sorted({number for _, number in latest})
    names = {number: step.job_name for (_, number), step in latest.items()}  # the latest name
    seconds = {key: _seconds(step.started_at, step.finished_at) for key, step in latest.items()}
    unit = _unit([s for s in seconds.values() if s is not None])
    steps = []
    for number in numbers:
        ran = [seconds.get((run.id, number)) for run in runs]
        steps.append(
            StepSeries(
                number=number,
                label=f"Step {number} · {names[number]}",
                values=[None if s is None else _in_unit(s, unit) for s in ran],
                texts=[format_duration(s) for s in ran],
            )
        )
    failed_step = [
        next(
            (n for n in numbers if (run.id, n) in latest and latest[(run.id, n)].state is RunState.FAILED),
            None,
        )
        for run in runs
    ]
    zone = _zone()
    labels = [_run_label(run.number) for run in runs]
    failed = [run.state is RunState.FAILED for run in runs]
    summary = (
        f"Run time of each step in the last {_plural(len(runs), 'finished group run')}, {labels[0]} to "
        f"{labels[-1]}, stacked by step ({_plural(len(numbers), 'step')}){_failures(failed)}."
    )
    return GroupChart(
        kind="group",
        labels=labels,
        started=[format_local(run.started_at, zone) for run in runs],
        states=[run.state.value for run in runs],
        failed=failed,
        failed_step=failed_step,
        totals=[format_duration(_seconds(run.started_at, run.finished_at)) for run in runs],
        duration_unit=unit,
        steps=steps,
        summary=summary,
    )


def campaign_chart(run: Run) -> CampaignChart | None:
    """A campaign run's chart: its sends a minute while it sends, its opens and clicks a day
    once it collects; None for a run that sends no email."""
    if not job_type_for(run.job_type).sends_email:
        return None
    if run.state in SENDING:
        return sends_per_minute(run)
    return engagement_per_day(run)


def sends_per_minute(run: Run) -> CampaignChart:
    """Messages sent a minute over the last 240 minutes of sending, in two queries."""
    zone = _zone()
    sent = Recipient.sent_at
    last = db.session.execute(
        select(func.max(sent)).where(Recipient.run_id == run.id, Recipient.status == RecipientStatus.SENT)
    ).scalar()
    refresh = REFRESH_SENDING if run.state in SENDING else None
    if last is None:
        return _campaign("sends", [], zone, refresh=refresh, summary="Nothing has been sent yet.")
    end = last.replace(second=0, microsecond=0)
    start = end - timedelta(minutes=MINUTES_SHOWN - 1)
    minute = _minute(sent).label("minute")
    inner = (
        select(minute)
        .where(Recipient.run_id == run.id, Recipient.status == RecipientStatus.SENT, sent >= start)
        .subquery()
    )
    found = {
        _as_datetime(at): count
        for at, count in db.session.execute(
            select(inner.c.minute, func.count()).group_by(inner.c.minute)
        ).all()
    }
    first = min(found, default=end)
    minutes = [first + timedelta(minutes=i) for i in range(int((end - first).total_seconds() // 60) + 1)]
    counts = [found.get(at, 0) for at in minutes]
    labels = [_clock(at, zone) for at in minutes]
    busiest = max(range(len(counts)), key=counts.__getitem__)
    summary = (
        f"Messages sent a minute from {labels[0]} to {labels[-1]}: {sum(counts):,} in all, "
        f"at most {counts[busiest]:,} a minute (at {labels[busiest]})."
    )
    return _campaign("sends", labels, zone, sent=counts, refresh=refresh, summary=summary)


def engagement_per_day(run: Run) -> CampaignChart:
    """First opens and first clicks a day, from the run's first day (31 days at most), in two
    queries."""
    zone = _zone()
    refresh = REFRESH_COLLECTING if run.state is RunState.COLLECTING else None
    begun = run.started_at or run.created_at
    first_day = to_local(begun, zone).date()
    last_moment = min(utcnow(), run.collect_until or utcnow())
    last_day = max(first_day, to_local(last_moment, zone).date())
    count = min((last_day - first_day).days + 1, DAYS_SHOWN)
    days = [last_day - timedelta(days=count - 1 - i) for i in range(count)]
    edges = [local_midnight_utc(day.isoformat(), zone) for day in days]
    edges.append(local_midnight_utc((last_day + timedelta(days=1)).isoformat(), zone))
    opens = _per_bucket(Recipient.opened_at, run.id, edges)
    clicks = _per_bucket(Recipient.clicked_at, run.id, edges)
    labels = [f"{day:%b} {day.day}" for day in days]
    empty = not any(opens) and not any(clicks)
    summary = (
        "No opens or clicks have been recorded yet."
        if empty
        else f"People who opened and who clicked a day, {labels[0]} to {labels[-1]}: "
        f"{sum(opens):,} opened and {sum(clicks):,} clicked."
    )
    return _campaign(
        "engagement", labels, zone, opens=opens, clicks=clicks, empty=empty, refresh=refresh, summary=summary
    )


def _per_bucket(column: Any, run_id: int, edges: list[datetime]) -> list[int]:
    """How many of the run's recipients have `column` in each interval between the edges."""
    # a CASE over the (at most 32) edges: exact local days on SQLite and PostgreSQL alike,
    # daylight saving changes included
    bucket = case(*((column < edge, index) for index, edge in enumerate(edges[1:]))).label("bucket")
    inner = (
        select(bucket).where(Recipient.run_id == run_id, column >= edges[0], column < edges[-1]).subquery()
    )
    counts = [0] * (len(edges) - 1)
    for index, count in db.session.execute(select(inner.c.bucket, func.count()).group_by(inner.c.bucket)):
        counts[index] = count
    return counts


def _minute(column: Any) -> Any:
    """The column's value cut to the minute (every time zone's offset is whole minutes, so UTC
    minutes are the account's minutes)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("minute", column)
    return func.strftime("%Y-%m-%d %H:%M", column)


def _as_datetime(value: datetime | str) -> datetime:
    """A minute as PostgreSQL (a timestamp) or SQLite (text) returns it."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _campaign(kind: str, labels: list[str], zone: str, **figures: Any) -> CampaignChart:
    """A campaign chart with the figures its kind has (the others empty)."""
    sent, opens, clicks = figures.get("sent", []), figures.get("opens", []), figures.get("clicks", [])
    return CampaignChart(
        kind=kind,
        labels=labels,
        zone=_zone_name(zone),
        sent=sent,
        opens=opens,
        clicks=clicks,
        empty=figures.get("empty", not labels),
        refresh=figures.get("refresh"),
        summary=figures["summary"],
    )


def _zone() -> str:
    return current_app.config["TIMEZONE"]


def _zone_name(zone: str) -> str:
    """The zone's abbreviation now ('EST')."""
    return to_local(utcnow(), zone).tzname() or zone


def _clock(moment: datetime, zone: str) -> str:
    """'10:41 AM' in the account time zone."""
    return to_local(moment, zone).strftime("%I:%M %p").lstrip("0")


def _failed(step: Any) -> bool:
    return step is not None and step.state is RunState.FAILED


def _seconds(started: datetime | None, finished: datetime | None) -> float | None:
    if started is None or finished is None:
        return None
    return (finished - started).total_seconds()


def _unit(seconds: list[float]) -> str:
    """Minutes when the longest run time is two minutes or more, else seconds."""
    return "min" if max(seconds, default=0) >= MINUTES_FROM else "s"


def _in_unit(seconds: float, unit: str) -> float:
    return round(seconds / 60, 2) if unit == "min" else round(seconds, 1)


def _run_label(number: int | None) -> str:
    return "planned" if number is None else f"#{number}"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}s" if count != 1 else noun


def _failures(failed: list[bool]) -> str:
    """'; 2 failed' (nothing when none did)."""
    count = sum(failed)
    return f"; {count} failed" if count else ""
