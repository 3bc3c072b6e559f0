"""Job Group: an ordered chain of jobs, saved as a job of this type. Its run never executes on a
worker: the chain (engine/chains.py) runs each step as a normal run of the step's job."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar

from webapp.jobtypes.base import JobType

if TYPE_CHECKING:
    from webapp.engine.context import RunContext
    from webapp.models.jobs import Job

MIN_STEPS = 2


@dataclass
class GroupDefinition:
    """What a group is, as kept in its job's params."""

    description: str = ""
    steps: list[int] = field(default_factory=list)  # job ids, in order
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
        known = cls.__dataclass_fields__
        return cls(**{k: v for k, v in (job.params or {}).items() if k in known})

    def save_to(self, job: Job) -> None:
        job.params = asdict(self)  # a new dict, so SQLAlchemy sees the change

    @property
    def expiry_date(self) -> date | None:
        return date.fromisoformat(self.expires_on) if self.expires_on else None

    @property
    def has_expiration(self) -> bool:
        """Saving or activating needs an expiration: a date, or never."""
        return self.never_expires or self.expires_on is not None


class JobGroup(JobType):
    key: ClassVar[str] = "job_group"
    label: ClassVar[str] = "Job Group"
    description: ClassVar[str] = "Runs jobs one after another; stops at the first failure."
    noun_past: ClassVar[str] = "completed"
    can_pause: ClassVar[bool] = True

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        definition = GroupDefinition(**{k: v for k, v in params.items()
                                        if k in GroupDefinition.__dataclass_fields__})
        return [("Steps", f"{len(definition.steps)} jobs")]

    def run(self, ctx: RunContext) -> None:
        raise RuntimeError("a group run is driven by its chain, not executed on a worker")

    def summary(self, run) -> str:
        return f"Completed: all {run.progress_total or 0} steps completed."
