"""A monitor that stays clean (issue 13): every finished row has Dismiss and "Dismiss all
finished" clears the finished rows the viewer sees at once (they stay in History); a group run's
step rows fold under its row; a campaign collecting results is one quiet row; a run that has no
total yet says what it does instead of "0% 0"."""

import re
from datetime import datetime, timedelta

import pytest

from tests.conftest import export_job, fresh
from webapp.engine.runs import new_run
from webapp.extensions import db
from webapp.jobtypes.email_campaign import EmailCampaign
from webapp.jobtypes.job_group import JobGroup
from webapp.models import AuditEntry, Job, Run
from webapp.models.base import utcnow
from webapp.rules.states import RunState

FINISHED = [RunState.COMPLETED, RunState.FAILED, RunState.CANCELLED, RunState.SKIPPED]
HTMX = {"HX-Request": "true"}


def a_job(owner, job_type: str, name: str) -> Job:
    job = Job(owner_id=owner.id, job_type=job_type, name=name, params={})
    db.session.add(job)
    db.session.commit()
    return job


def a_run(job: Job, state: RunState, **fields) -> Run:
    """A run of `job` in `state`, as the engine leaves it (started, finished when finished)."""
    now = utcnow()
    if state.is_finished:
        fields.setdefault("finished_at", now)
    if state not in (RunState.QUEUED, RunState.SCHEDULED, RunState.SKIPPED):
        fields.setdefault("started_at", now - timedelta(minutes=5))
    run = new_run(job, job.owner_id, state, trigger=fields.pop("trigger", "manual"), **fields)
    db.session.commit()
    return run


def rows(html: str) -> dict[int, str]:
    """The monitor's rows by run id, in the order of the page."""
    return {int(i): row for i, row in re.findall(r'<tr id="run-(\d+)"(.*?)</tr>', html, re.S)}


def monitor(client, url: str = "/") -> str:
    db.session.expire_all()
    return client.get(url).get_data(as_text=True)


def poller(html: str) -> str:
    return re.search(r'<div id="monitor-poller"[^>]*>', html).group(0)


# ------------------------------------------------------------------------------- Dismiss


@pytest.mark.parametrize("state", FINISHED)
def test_every_finished_row_has_dismiss(client, auth, users, state):
    run = a_run(export_job(users["user"], name="Weekly export"), state, in_monitor=True)
    auth.login(users["user"].email)
    row = rows(monitor(client))[run.id]
    assert 'aria-label="Dismiss Weekly export run #1"' in row and ">Dismiss</button>" in row
    assert f'form="dismiss-finished" name="run" value="{run.id}"' in row  # for Dismiss all


@pytest.mark.parametrize("state", [RunState.QUEUED, RunState.PROCESSING, RunState.PAUSED, RunState.SCHEDULED])
def test_a_row_still_running_or_waiting_has_no_dismiss(client, auth, users, state):
    fields = {"scheduled_for": utcnow() + timedelta(days=1)} if state is RunState.SCHEDULED else {}
    run = a_run(export_job(users["user"]), state, **fields)
    auth.login(users["user"].email)
    row = rows(monitor(client))[run.id]
    assert "Dismiss" not in row and 'form="dismiss-finished"' not in row


def test_dismiss_takes_the_row_off_the_monitor_and_it_stays_in_history(client, auth, users):
    run = a_run(export_job(users["user"], name="Weekly export"), RunState.CANCELLED, in_monitor=True)
    auth.login(users["user"].email)
    response = client.post(f"/runs/{run.id}/dismiss?from=monitor", headers=HTMX)
    assert response.status_code == 200
    assert not fresh(run).in_monitor
    assert f'id="run-{run.id}"' not in monitor(client)
    assert "Weekly export" in monitor(client, "/history")
    assert db.session.execute(db.select(AuditEntry.action).where(AuditEntry.run_id == run.id)).scalar() == (
        "run.dismissed"
    )


def test_dismiss_refused_on_a_running_run_leaves_its_row(client, auth, users):
    run = a_run(export_job(users["user"]), RunState.PROCESSING)
    auth.login(users["user"].email)
    response = client.post(f"/runs/{run.id}/dismiss?from=monitor", headers=HTMX)
    assert response.headers["HX-Reswap"] == "outerHTML"  # the row stays, saying why
    assert "Only a finished run can be dismissed" in response.get_data(as_text=True)
    assert fresh(run).in_monitor


# ---------------------------------------------------------------------- Dismiss all finished


@pytest.fixture
def mixed(users):
    """The user's finished runs of every kind, one running, one waiting, one collecting, and a
    finished run of another user."""
    user, other = users["user"], users["other"]
    job = export_job(user, name="Weekly export")
    made = {state.value: a_run(job, state, in_monitor=True) for state in FINISHED}
    made["processing"] = a_run(export_job(user, name="Busy export"), RunState.PROCESSING)
    made["queued"] = a_run(export_job(user, name="Waiting export"), RunState.QUEUED)
    made["collecting"] = a_run(
        a_job(user, EmailCampaign.key, "Spring appeal"),
        RunState.COLLECTING,
        collect_until=utcnow() + timedelta(days=30),
    )
    made["theirs"] = a_run(export_job(other, name="Their export"), RunState.FAILED, in_monitor=True)
    return made


def test_dismiss_all_finished_clears_only_the_finished_rows(client, auth, users, mixed):
    auth.login(users["user"].email)
    page = monitor(client)
    assert (
        re.search(r'<button type="submit" id="dismiss-all-button"[^>]*>', page).group(0).count("hidden") == 0
    )
    posted = [str(run.id) for run in mixed.values()]  # everything, another user's run included
    response = client.post("/monitor/dismiss-finished", data={"run": posted}, headers=HTMX)
    html = response.get_data(as_text=True)
    assert html.startswith('<div id="monitor-table">') or '<div id="monitor-table">' in html
    assert "4 finished runs dismissed; they stay in History." in html
    left = {key for key, run in mixed.items() if not fresh(run).in_monitor}
    assert left == {state.value for state in FINISHED}
    assert set(rows(html)) == {mixed[key].id for key in ("processing", "queued", "collecting")}
    assert fresh(mixed["theirs"]).in_monitor  # another user's run posted by hand: untouched
    history = monitor(client, "/history")
    assert history.count("Weekly export") == 4
    audited = db.session.execute(
        db.select(AuditEntry.run_id).where(AuditEntry.action == "run.dismissed")
    ).scalars()
    assert set(audited) == {mixed[state.value].id for state in FINISHED}


def test_dismiss_all_finished_without_javascript_goes_back_to_the_monitor(client, auth, users, mixed):
    auth.login(users["user"].email)
    response = client.post("/monitor/dismiss-finished?page=1", data={"run": [mixed["failed"].id]})
    assert response.status_code == 302 and response.headers["Location"].endswith("/?page=1")
    assert not fresh(mixed["failed"]).in_monitor
    page = monitor(client)
    assert "1 finished run dismissed; it stays in History." in page


def test_dismiss_all_finished_needs_the_csrf_token(app, client, auth, users, mixed):
    app.config["WTF_CSRF_ENABLED"] = True
    auth.login(users["user"].email)
    response = client.post("/monitor/dismiss-finished", data={"run": [mixed["failed"].id]})
    assert response.status_code == 400 and fresh(mixed["failed"]).in_monitor


def test_a_super_admin_dismisses_the_finished_rows_they_see(client, auth, users, mixed):
    auth.login(users["super_admin"].email)
    client.post("/monitor/dismiss-finished", data={"run": [mixed["theirs"].id, mixed["failed"].id]})
    assert not fresh(mixed["theirs"]).in_monitor and not fresh(mixed["failed"]).in_monitor


def test_the_dismiss_all_button_waits_for_a_finished_row(client, auth, users):
    run = a_run(export_job(users["user"]), RunState.PROCESSING)
    auth.login(users["user"].email)
    button = re.search(r'<button type="submit" id="dismiss-all-button"[^>]*>', monitor(client)).group(0)
    assert " hidden" in button and "Dismiss all finished" in monitor(client)
    run.state, run.finished_at = RunState.FAILED, utcnow()
    db.session.commit()
    update = client.get(f"/monitor/updates?ids={run.id}&after={run.id}", headers=HTMX).get_data(as_text=True)
    shown = re.search(r'<button type="submit" id="dismiss-all-button"[^>]*>', update).group(0)
    assert 'hx-swap-oob="true"' in shown and " hidden" not in shown


# ------------------------------------------------------------------------------ group folds


@pytest.fixture
def chain(users):
    """A group run processing its step 3: steps 1 and 2 done (their results waiting), 3 running."""
    user = users["user"]
    group = a_job(user, JobGroup.key, "Nightly chain")
    group_run = a_run(group, RunState.PROCESSING, progress_total=3, progress_done=2)
    steps = [
        a_run(
            export_job(user, name=f"Step export {n}"),
            state,
            trigger="group",
            parent_run_id=group_run.id,
            step=n,
            in_monitor=True,
            result_path="/tmp/r.csv" if state is RunState.COMPLETED else None,
        )
        for n, state in ((1, RunState.COMPLETED), (2, RunState.COMPLETED), (3, RunState.PROCESSING))
    ]
    steps[2].progress_total, steps[2].progress_done = 100, 30
    db.session.commit()
    return group_run, steps


def test_a_group_run_folds_its_step_rows_under_its_row(client, auth, users, chain):
    group_run, steps = chain
    auth.login(users["user"].email)
    page = rows(monitor(client))
    order = list(page)
    assert order[0] == group_run.id and order[1:] == [s.id for s in reversed(steps)]  # newest first
    button = re.search(r"<button[^>]*data-fold[^>]*>", page[group_run.id]).group(0)
    assert 'aria-expanded="false"' in button
    assert 'aria-label="Show the steps of Nightly chain run #1"' in button
    for step in steps:
        row = page[step.id]
        assert f'data-step-of="{group_run.id}" hidden' in row  # folded by default
        assert f"step {step.step}<" in row and "in group" not in row
        assert "data-fold" not in row
    assert 'aria-label="Progress of Step export 3"' in page[steps[2].id]  # its own progress,
    assert "Stop Step export 3" in page[steps[2].id]  # its own Stop
    assert "Download results of Step export 1" in page[steps[0].id]  # and its own Download


def test_paging_counts_top_level_rows(app, client, auth, users, chain):
    """Pages of two rows: two plain runs on page 1, the group run with its three steps on 2."""
    group_run, steps = chain
    app.config["PAGE_SIZE"] = 2
    plain = [a_run(export_job(users["user"], name=f"Plain {n}"), RunState.PROCESSING) for n in (1, 2)]
    auth.login(users["user"].email)
    first = monitor(client)
    assert "Page 1 of 2 (3 runs)" in first and set(rows(first)) == {run.id for run in plain}
    second = monitor(client, "/?page=2")
    assert list(rows(second)) == [group_run.id, *(s.id for s in reversed(steps))]


def test_step_rows_whose_group_run_is_not_in_the_monitor_show_as_before(client, auth, users, chain):
    group_run, steps = chain
    group_run.state, group_run.finished_at, group_run.in_monitor = RunState.FAILED, utcnow(), False
    db.session.commit()
    auth.login(users["user"].email)
    page = rows(monitor(client))
    assert group_run.id not in page
    for step in steps:
        assert "data-step-of" not in page[step.id]
        assert f"step {step.step} in group “Nightly chain”" in page[step.id]


def test_a_new_step_joins_its_group_runs_fold_on_the_next_poll(client, auth, users, chain):
    group_run, steps = chain
    auth.login(users["user"].email)
    monitor(client)
    after = max(s.id for s in steps)
    new = a_run(
        export_job(users["user"], name="Step export 4"),
        RunState.QUEUED,
        trigger="group",
        parent_run_id=group_run.id,
        step=4,
    )
    ids = f"{group_run.id},{steps[2].id}"
    html = client.get(f"/monitor/updates?ids={ids}&after={after}", headers=HTMX).get_data(as_text=True)
    fold = html.split(f'hx-swap-oob="afterend:#run-{group_run.id}"', 1)[1]
    assert f'<tr id="run-{new.id}" class="step-row" data-step-of="{group_run.id}" hidden' in fold
    assert "afterbegin:#monitor-rows" not in html
    assert f"ids={group_run.id},{steps[2].id},{new.id}" in poller(html)


def test_a_step_of_a_group_run_on_another_page_is_not_shown_on_this_one(client, auth, users, chain):
    group_run, steps = chain
    auth.login(users["user"].email)
    other = a_run(export_job(users["user"]), RunState.PROCESSING, progress_total=10)
    after = other.id  # the page shows `other` (page 1); the group run is on page 2
    new = a_run(
        export_job(users["user"]), RunState.QUEUED, trigger="group", parent_run_id=group_run.id, step=4
    )
    html = client.get(f"/monitor/updates?ids={other.id}&after={after}", headers=HTMX).get_data(as_text=True)
    assert f'id="run-{new.id}"' not in html
    assert f"ids={other.id}&amp;" in poller(html)  # not polled here either


def test_dismissing_a_group_run_takes_its_finished_steps_with_it(client, auth, users, chain):
    group_run, steps = chain
    db.session.get(Run, steps[2].id).state = RunState.COMPLETED
    group_run.state, group_run.finished_at, group_run.in_monitor = RunState.FAILED, utcnow(), True
    db.session.commit()
    auth.login(users["user"].email)
    html = client.post(f"/runs/{group_run.id}/dismiss?from=monitor", headers=HTMX).get_data(as_text=True)
    for step in steps:
        assert f'<tr id="run-{step.id}" hx-swap-oob="delete"></tr>' in html
        assert not fresh(step).in_monitor
    assert rows(monitor(client)) == {}


# ----------------------------------------------------------------------- collecting, starting


def test_a_campaign_collecting_results_is_one_quiet_row_that_stops_the_polling(client, auth, users):
    campaign = a_job(users["user"], EmailCampaign.key, "Spring appeal")
    run = a_run(campaign, RunState.COLLECTING, collect_until=datetime(2026, 12, 30, 18, 0))
    auth.login(users["user"].email)
    page = monitor(client)
    row = rows(page)[run.id]
    assert 'class="quiet"' in row and ">Collecting<" in row
    assert "Collecting results until Dec 30, 2026 · " in row
    assert (
        f'<a href="/runs/{run.id}" aria-label="Live results of Spring appeal run #1">Live results</a>' in row
    )
    assert "<progress" not in row and "%" not in row and "Stop" not in row
    assert "hx-trigger" not in poller(page)  # nothing left to poll every 2 s
    update = client.get(f"/monitor/updates?ids={run.id}&after={run.id}", headers=HTMX).get_data(as_text=True)
    assert "hx-trigger" not in poller(update)


@pytest.mark.parametrize(
    "state,done,says",
    [
        (RunState.INITIALIZING, 0, "Extracting…"),
        (RunState.PROCESSING, 0, "Starting…"),
        (RunState.PROCESSING, 40, "40 done so far"),
    ],
)
def test_a_run_without_a_total_says_what_it_does_instead_of_0_percent(client, auth, users, state, done, says):
    run = a_run(export_job(users["user"], name="Big export"), state, progress_done=done)
    auth.login(users["user"].email)
    row = rows(monitor(client))[run.id]
    assert says in row and "%" not in row and "<progress" not in row
    status = client.get(f"/runs/{run.id}/status").get_data(as_text=True)
    line = status.split('class="progress-cell"', 1)[1].split("</p>", 1)[0]
    assert says in line and "%" not in line and "<progress" not in line
    run.progress_total, run.progress_done = 200, 50
    db.session.commit()
    assert "25%" in rows(monitor(client))[run.id]
    assert "25%" in client.get(f"/runs/{run.id}/status").get_data(as_text=True)
