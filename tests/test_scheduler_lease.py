"""One active scheduler per deployment: a second scheduler (a standby on another machine, or one
started by mistake) stands by while the first renews its lease, and takes over when it stops."""

from __future__ import annotations

import signal
import time

from tests.conftest import wait_for
from tests.test_scheduler_isolation import dead_worker_run, run_by_id, start_scheduler
from webapp.engine import queueing, scheduler_loop
from webapp.extensions import db
from webapp.models import Run
from webapp.rules.states import RunState


def test_a_second_lease_waits_while_the_first_is_held_and_takes_over_once_it_is_given_up(app):
    first, second = queueing.SchedulerLease(), queueing.SchedulerLease()
    assert first.hold() and first.hold()  # taken, then renewed
    assert not second.hold()
    assert second.holder() == first.me
    first.release()
    assert second.hold() and not first.hold()


def test_a_lease_whose_holder_went_away_lapses_and_another_takes_it(app):
    gone, standby = queueing.SchedulerLease(seconds=0.3), queueing.SchedulerLease()
    assert gone.hold() and not standby.hold()
    time.sleep(0.4)  # the machine holding it stopped renewing
    assert standby.hold()


def test_a_standing_by_scheduler_does_none_of_the_duties(app, users):
    dead = dead_worker_run(users["user"]).id  # the reconciler would fail it
    active = queueing.SchedulerLease()
    assert active.hold()
    scheduler_loop.loop(once=True)
    assert run_by_id(dead).state is not RunState.FAILED  # stood by: another scheduler is active
    active.release()
    scheduler_loop.loop(once=True)
    assert run_by_id(dead).state is RunState.FAILED


def test_two_scheduler_processes_one_acts_and_the_other_takes_over_when_it_stops(app, users, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = start_scheduler(app, tmp_path / "a")
    try:
        wait_for(lambda: queueing.SchedulerLease().holder() is not None, timeout=30)
        second = start_scheduler(app, tmp_path / "b")
        try:
            wait_for(lambda: "stands by" in (tmp_path / "b" / "scheduler.log").read_text(), timeout=30)
            first.send_signal(signal.SIGTERM)  # the active one stops (and gives its lease up)
            first.wait(15)
            dead = dead_worker_run(users["user"]).id
            wait_for(lambda: db.session.get(Run, dead).state is RunState.FAILED, timeout=30)
            assert "now the active one" in (tmp_path / "b" / "scheduler.log").read_text()
        finally:
            second.terminate()
            second.wait(15)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
