"""Starting a rollback: its job, its run and the import's claim in one transaction, so that a
double submit (or two tabs, or two users) starts one rollback of an import."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, exists, select, update
from sqlalchemy.exc import IntegrityError

from webapp.engine.runs import dispatch, new_run
from webapp.engine.transitions import log
from webapp.extensions import db
from webapp.jobtypes.transaction_rollback import TransactionRollback
from webapp.models.jobs import Job
from webapp.models.money import ImportRollback
from webapp.models.runs import Run
from webapp.models.users import User
from webapp.money.rollback import ENDED_UNDONE, claim_of
from webapp.rules.states import RunState


def start_rollback(import_run: Run, user: User) -> Run | None:
    """A queued rollback run of `import_run`, holding its claim; None (nothing kept) when another
    rollback holds the claim. A claim whose rollback ended undone (failed or stopped) is taken
    over: the new rollback finishes what that one left."""
    db.session.commit()  # end any read: what follows is one transaction
    claim = claim_of(import_run.id)
    # (its one run is named "run #1" beside it: the import's run is told apart as "import #N")
    name = f"Rollback of “{import_run.job_name[:170]}” (import {import_run.short_label})"
    # owned by the import's owner (who sees the import sees its rollback), started by `user`
    job = Job(
        owner_id=import_run.owner_id,
        job_type=TransactionRollback.key,
        name=name,
        params={"import_run_id": import_run.id},
        active=False,  # never on the Jobs page, never run again by hand or by a schedule
    )
    db.session.add(job)
    db.session.flush()
    run = new_run(job, user, RunState.QUEUED, trigger="manual")
    if claim is None:
        db.session.add(ImportRollback(import_run_id=import_run.id, rollback_run_id=run.id))
        try:
            db.session.flush()
        except IntegrityError:  # claimed by another request in the meantime
            db.session.rollback()
            return None
    else:
        ended_undone = exists().where(Run.id == claim.rollback_run_id, Run.state.in_(ENDED_UNDONE))
        taken = cast(
            CursorResult[Any],
            db.session.execute(
                update(ImportRollback)
                .where(
                    ImportRollback.id == claim.id,
                    ImportRollback.rollback_run_id == claim.rollback_run_id,
                    ended_undone,
                )
                .values(rollback_run_id=run.id)
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        if not taken:
            db.session.rollback()
            return None
        log(run, f"Takes over from rollback run id {claim.rollback_run_id}, which ended undone.")
    log(run, f"Rollback of “{import_run.job_name}” {import_run.label} requested by {user.display_name}.")
    db.session.commit()
    dispatch()
    return run


def first_run(job: Job) -> Run | None:
    """A rollback job's run."""
    return db.session.execute(select(Run).where(Run.job_id == job.id).order_by(Run.id)).scalars().first()
