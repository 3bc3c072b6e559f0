"""Job Group: an ordered chain of jobs, saved as a job of this type. Its run never executes on a
worker: the chain (engine/chains.py) runs each step as a normal run of the step's job."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, ClassVar

from flask import url_for
from sqlalchemy import select

from webapp.extensions import db
from webapp.jobtypes.base import JobType
from webapp.models.groups import GroupStep
from webapp.models.jobs import Job

if TYPE_CHECKING:
    from webapp.engine.context import RunContext
    from webapp.models.runs import Run

MIN_STEPS = 2


@dataclass
class GroupDefinition:
    """What a group is: its steps as GroupStep rows, the rest as its job's params."""

    description: str = ""
    steps: list[int] = field(default_factory=list)  # job ids, in order (the GroupStep rows)
    launch_campaigns: bool = False
    campaign_ids: list[int] = field(default_factory=list)
    notify_success: list[str] = field(default_factory=list)
    notify_failure: list[str] = field(default_factory=list)
    expires_on: str | None = None  # ISO date, local to the account
    never_expires: bool = False
    activated: bool = False
    expiry_warned: bool = False

    @classmethod
    def of(cls, job: Job) -> GroupDefinition:
        """The group's definition: its params, and its steps from its GroupStep rows."""
        known = cls.__dataclass_fields__
        definition = cls(**{k: v for k, v in (job.params or {}).items() if k in known and k != "steps"})
        definition.steps = [step.job_id for step in job.group_steps]
        return definition

    def save_to(self, job: Job) -> None:
        """Write the definition into the group's params and its GroupStep rows."""
        params = asdict(self)
        del params["steps"]
        job.params = params  # a new dict, so SQLAlchemy sees the change
        rows = job.group_steps
        for position, job_id in enumerate(self.steps, start=1):
            if position <= len(rows):  # an update: (group, position) stays unique at the flush
                rows[position - 1].job_id = job_id
            else:
                rows.append(GroupStep(position=position, job_id=job_id))
        del rows[len(self.steps) :]

    @property
    def expiry_date(self) -> date | None:
        return date.fromisoformat(self.expires_on) if self.expires_on else None

    @property
    def has_expiration(self) -> bool:
        """Saving or activating needs an expiration: a date, or never."""
        return self.never_expires or self.expires_on is not None


def groups_using(job: Job) -> list[Job]:
    """The groups (not deleted ones) that have `job` as a step, by name, each once."""
    return list(
        db.session.execute(
            select(Job)
            .where(
                Job.active.is_(True), Job.id.in_(select(GroupStep.group_id).where(GroupStep.job_id == job.id))
            )
            .order_by(Job.name, Job.id)
        ).scalars()
    )


class JobGroup(JobType):
    key: ClassVar[str] = "job_group"
    label: ClassVar[str] = "Job Group"
    description: ClassVar[str] = "Runs jobs one after another; stops at the first failure."
    noun: ClassVar[str] = "steps"
    noun_past: ClassVar[str] = "completed"
    can_pause: ClassVar[bool] = True
    drives_chain: ClassVar[bool] = True
    can_be_step: ClassVar[bool] = False
    listed_as_job: ClassVar[bool] = False
    count_labels: ClassVar[dict[str, str]] = {}  # its steps' runs have the counts
    page_endpoint: ClassVar[str] = "groups.detail"

    def page_url(self, job_id: int) -> str:
        return url_for("groups.detail", group_id=job_id)

    def schedule_done_url(self, job_id: int) -> str:
        return url_for("groups.wizard", group_id=job_id, step=4)  # the wizard's schedule step

    def may_run_by_itself(self, job: Job) -> bool:
        return GroupDefinition.of(job).activated  # a saved draft waits for Activate

    def stop_question(self, run: Run) -> str:
        return (
            f"Stop group run #{run.number} of “{run.job_name}”? The current step stops at its next "
            "batch; the remaining steps are skipped."
        )

    def run(self, ctx: RunContext) -> None:
        raise RuntimeError("a group run is driven by its chain, not executed on a worker")

    def summary(self, run) -> str:
        return f"Completed: all {run.progress_total or 0} steps completed."
