"""Turning a group on and off: active, its schedule runs it; a draft, nothing runs by itself.
Shared by the group pages and the API."""

from __future__ import annotations

from webapp.engine.planner import plan, unplan
from webapp.extensions import db
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models.jobs import Job
from webapp.web import localtime


def activate_group(group: Job) -> str:
    """Make a group active: its schedule (if any) is switched on and planned; says what follows."""
    definition = GroupDefinition.of(group)
    definition.activated = True
    definition.save_to(group)
    schedule = group.schedule
    if schedule is None:
        db.session.commit()
        return f"“{group.name}” is active. It has no schedule: it runs on demand only."
    schedule.enabled = True
    db.session.commit()
    plan(schedule)
    if schedule.paused:
        return f"“{group.name}” is active, but its schedule is paused."
    if schedule.next_run_at is None:
        return f"“{group.name}” is active; its schedule has no further runs."
    return f"“{group.name}” is active. Next run: {localtime(schedule.next_run_at)}."


def deactivate_group(group: Job) -> None:
    """Make a group a draft again: its schedule is switched off and its planned runs go."""
    definition = GroupDefinition.of(group)
    definition.activated = False
    definition.save_to(group)
    if group.schedule is not None:
        group.schedule.enabled = False
        group.schedule.next_run_at = None
    db.session.commit()
    unplan(group)
