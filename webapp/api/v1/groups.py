"""Groups by the API: list, read, run, and pause, resume or retry the group's run."""

from __future__ import annotations

from sqlalchemy import select

from webapp.api.v1.answers import group_out
from webapp.api.v1.core import fail
from webapp.api.v1.idempotency import ONCE
from webapp.api.v1.jobs import start, visible_jobs
from webapp.api.v1.runs import act_on_run
from webapp.api.v1.schemas import GroupList, GroupOut, RunActionOut, RunOut
from webapp.api.v1.spec import operation
from webapp.extensions import db
from webapp.groups.queries import group_or_404
from webapp.jobtypes.job_group import JobGroup
from webapp.models.jobs import Job
from webapp.models.runs import Run
from webapp.rules.states import RunState

TAG = "Groups"
# the group run an action is for: its newest run in one of these states
ACTED_ON = {
    "pause": (RunState.QUEUED, RunState.INITIALIZING, RunState.PROCESSING),
    "resume": (RunState.PAUSED,),
    "retry": (RunState.FAILED,),
}


@operation("GET", "/groups", tag=TAG, answers={200: GroupList})
def groups():
    """The token's user's groups (everyone's for a super admin's token), by name."""
    return GroupList(groups=[group_out(group) for group in visible_jobs(Job.job_type == JobGroup.key)])


@operation("GET", "/groups/<int:group_id>", tag=TAG, answers={200: GroupOut}, errors=(404,))
def group(group_id: int):
    """One group, with its steps (job ids in order)."""
    return group_out(group_or_404(group_id))


@operation(
    "POST",
    "/groups/<int:group_id>/runs",
    tag=TAG,
    answers={201: RunOut},
    errors=(404, 409, 422),
    headers=ONCE,
)
def run_group(group_id: int):
    """Start a run of the group now, as its Run now button does.

    It waits while another run of the group is busy; 409 for a group of fewer than two jobs.
    With an `Idempotency-Key` header, the same key sent again within a day answers the run it
    started."""
    return start(job_id=group_or_404(group_id).id)


@operation(
    "POST",
    "/groups/<int:group_id>/<any(pause, resume, retry):action>",
    tag=TAG,
    answers={200: RunActionOut},
    errors=(404, 409),
)
def group_action(group_id: int, action: str):
    """Pause the group's running run (after its current step), resume its paused run, or
    retry its failed run (from the failed step).

    409 when the group has no run in that state."""
    found = group_or_404(group_id)
    query = (
        select(Run)
        .where(Run.job_id == found.id, Run.state.in_(ACTED_ON[action]))
        .order_by(Run.id.desc())
        .limit(1)
    )
    run = db.session.execute(query).scalar()
    if run is None:
        wanted = {"pause": "running", "resume": "paused", "retry": "failed"}[action]
        raise fail(409, f"this group has no {wanted} run to {action}")
    return act_on_run(run, action)
