"""The contract every job type fulfils."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from flask import url_for

from webapp.rules.states import RunState

if TYPE_CHECKING:
    from webapp.engine.context import RunContext
    from webapp.models.jobs import Job
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

    # -- What the rest of the code asks of a type: no code outside a type's own module and
    # templates names a job type; it asks one of these.
    noun: ClassVar[str] = "records"  # what its progress counts: "41,200 of 100,000 records"
    # its run drives a chain of other jobs' runs (a group): it holds no worker slot (its steps
    # do), has steps on its run page, and is stopped, paused and retried through its steps
    drives_chain: ClassVar[bool] = False
    sends_email: ClassVar[bool] = False  # its run page shows contact results; Stop says what was sent
    can_be_step: ClassVar[bool] = True  # offered as a step in the group wizard
    listed_as_job: ClassVar[bool] = True  # listed on the Jobs page (a group has a page of its own)
    has_request_id: ClassVar[bool] = True  # its runs are given a request id as extraction ends
    result_kind: ClassVar[str | None] = None  # "CSV": its run leaves a file to download
    # the run counters it fills, in order, with what they mean for it (an export "exported")
    count_labels: ClassVar[dict[str, str]] = {
        "checked": "Checked",
        "created": "Created",
        "updated": "Updated",
        "unchanged": "Unchanged",
        "skipped": "Skipped",
        "rejected": "Rejected",
    }
    # the monitor's Stop: "stop" (stop at the next batch, or cancel before it starts) or None
    # (no Stop on the monitor: the run page has the type's own controls)
    monitor_stop: ClassVar[str | None] = "stop"
    page_endpoint: ClassVar[str] = "jobs.detail"  # a job's own page, built with job_id
    # its parameter form: the page that creates a job of this type, and its button on New job
    new_endpoint: ClassVar[str | None] = None
    new_label: ClassVar[str] = ""
    # the page that changes a job's parameters (built with job_id): an Edit button on its page
    edit_endpoint: ClassVar[str | None] = None
    # only admins and super admins make jobs of this type (New job offers it to them alone; its
    # form pages refuse anyone else): receipts, the organisation's documents
    admins_only: ClassVar[bool] = False

    def page_url(self, job_id: int) -> str:
        """The page of one job of this type."""
        return url_for(self.page_endpoint, job_id=job_id)

    def schedule_done_url(self, job_id: int) -> str:
        """Where the schedule page's back link and Save lead."""
        return self.page_url(job_id)

    def may_run_by_itself(self, job: Job) -> bool:
        """Whether a job's schedule may start its runs now (a draft group waits for Activate)."""
        return True

    def counts(self, run: Run) -> list[tuple[str, int]]:
        """The run's counters as its run page and History show them: (label, value) in order."""
        return [(label, getattr(run, name)) for name, label in self.count_labels.items()]

    def done_so_far(self, run: Run) -> str:
        """What a run has done, as its progress says: "41,200 of 100,000 rows were imported"
        (a worker that died, in the reconciler's reason)."""
        of_total = f" of {run.progress_total:,}" if run.progress_total is not None else ""
        return f"{run.progress_done:,}{of_total} rows were {self.noun_past}"

    def stop_question(self, run: Run) -> str:
        """The confirmation asked before Stop on a started run, saying what was already done."""
        if run.progress_total:
            done = (
                f"{run.percent}% ({run.progress_done:,} of {run.progress_total:,}) are already "
                f"{self.noun_past} and stay so"
            )
        else:
            done = "nothing has been processed yet"
        return f"Stop “{run.job_name}” at the next batch? {done}."

    def draft_of(self, run: Run) -> tuple[str, str, str] | None:
        """A link (label, url, a sentence saying why) to edit what a cancelled run was made
        from, when it can be edited again (a campaign back in draft); None if there is none."""
        return None

    def describe(self, params: dict[str, Any]) -> list[tuple[str, str]]:
        """Label/value pairs that summarise a job's parameters on its page."""
        return []

    def links_for_run(self, run: Run) -> list[tuple[str, str, str]]:
        """Links this type puts on the page of a run of any type, as (sentence, label, url):
        a type that acts on other runs offers them there (a rollback on its import's page).
        The run page asks every registered type; the default is none."""
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
        counts = ", ".join(f"{value:,} {label.lower()}" for label, value in self.counts(run))
        return f"Completed: {counts}."
