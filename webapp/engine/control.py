"""What people ask of a run (Stop, Pause, Resume, Cancel, Kill, Retry), sent to the module that
drives it: a group run to its chain (`chains`), any other run to the run engine (`runs`). The
screens call these; nothing in the engine calls back up here."""

from __future__ import annotations

from webapp.engine import chains, runs
from webapp.jobtypes import job_type_for
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.rules.states import RunState


def _drives_chain(run: Run) -> bool:
    return job_type_for(run.job_type).drives_chain


def stop(run: Run, user: User) -> str:
    """Stop a run: cancel it before it starts, else stop it at the next batch (a group run: its
    current step stops and the rest are skipped)."""
    if _drives_chain(run) and not run.state.is_pending:
        return chains.stop(run, user)
    return runs.request_stop(run, user)


def pause(run: Run, user: User) -> str:
    """Pause after the batch in flight (a group run: after its current step)."""
    return chains.pause(run, user) if _drives_chain(run) else runs.request_pause(run, user)


def resume(run: Run, user: User) -> str:
    """Resume a paused run (a group run: with its next step)."""
    return chains.resume(run, user) if _drives_chain(run) else runs.resume_run(run, user)


def cancel_paused(run: Run, user: User) -> str:
    """Cancel a paused run."""
    if run.state is not RunState.PAUSED:
        raise runs.RunActionError("Pause the run first: only a paused run can be cancelled.")
    return stop(run, user)


def kill(run: Run, user: User) -> str:
    """Hard-stop the work horse of a run that did not stop in time (an admin's last resort)."""
    return runs.kill_run(run, user)


def retry(run: Run, user: User) -> str:
    """Queue a failed run again from its checkpoint (a group run: from its failed step)."""
    return chains.retry(run, user) if _drives_chain(run) else runs.retry_run(run, user)
