"""The contract every job type fulfils."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from webapp.rules.states import RunState

if TYPE_CHECKING:
    from webapp.engine.context import RunContext
    from webapp.models.runs import Run


class JobType:
    """A kind of job: its name in the monitor, its parameters and a `run` that works in batches."""

    key: ClassVar[str]
    label: ClassVar[str]  # the monitor's Type column
    description: ClassVar[str] = ""
    noun_past: ClassVar[str] = "processed"  # "41,200 of 100,000 records were imported"
    final_state: ClassVar[RunState] = RunState.COMPLETED
    can_stop: ClassVar[bool] = True
    can_pause: ClassVar[bool] = False
    # the line its runs wait in: "data" (imports, exports, reports) or "email" (sends), each
    # with its own workers and concurrency, so a long send never holds up the nightly import
    lane: ClassVar[str] = "data"
    # started from the Jobs page with Run now, and given a recurring schedule of its own
    # (a campaign is not: its Launch, with its confirmation and launch time, starts it)
    runs_on_request: ClassVar[bool] = True

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        """Label/value pairs that summarise a job's parameters on its page."""
        return []

    def run(self, ctx: RunContext) -> None:
        """Do the work in batches through `ctx` (commit_batch checks for stop between batches)."""
        raise NotImplementedError

    def fire_refusal(self, run: Run) -> str | None:
        """Why a scheduled run of this type must not start when its time comes (None: it may)."""
        return None

    def after_cancel(self, run: Run, phase: str) -> None:
        """Called as a run is cancelled (phase: before_start, extraction or processing); what it
        changes is committed together with the cancel."""

    def summary(self, run: Run) -> str:
        """The closing log line with the counts."""
        counts = ", ".join(f"{value:,} {name}" for name, value in run.counts.items())
        return f"Completed: {counts}."
