"""The charts' figures (webapp/charts.py) and the pages that show them: a job's and a group's
last finished runs, a campaign run's sends a minute and opens and clicks a day, each drawn from
a canvas with role=img and an aria-label and shown again as a table of the same figures, with
Chart.js served from /static (never a CDN)."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, time, timedelta

import pytest

from tests.conftest import export_job, import_job
from webapp import charts
from webapp.extensions import db
from webapp.jobtypes.job_group import GroupDefinition
from webapp.models import Job, Run
from webapp.models.base import utcnow
from webapp.models.campaigns import Campaign, Recipient, RecipientStatus
from webapp.rules.clock import local_to_utc, to_local
from webapp.rules.states import RunState

T0 = datetime(2026, 3, 2, 15, 0)  # Mar 2, 2026 10:00 AM EST


def _run(
    job: Job, number: int, state: RunState, seconds: float | None, *, at: datetime = T0, **fields
) -> Run:
    """A run of `job` that started `at` and took `seconds` (None: never started)."""
    values = {
        "job_id": job.id,
        "owner_id": job.owner_id,
        "job_type": job.job_type,
        "job_name": job.name,
        "number": number,
        "state": state,
        "created_at": at,
        "started_at": at if seconds is not None else None,
        "finished_at": at + timedelta(seconds=seconds) if seconds is not None and state.is_finished else None,
    }
    run = Run(**{**values, **fields})
    db.session.add(run)
    db.session.commit()
    return run


def _group(owner, steps: list[Job], name: str = "Nightly chain") -> Job:
    group = Job(owner_id=owner.id, job_type="job_group", name=name, params={})
    GroupDefinition(steps=[job.id for job in steps]).save_to(group)
    db.session.add(group)
    db.session.commit()
    return group


def _campaign_run(owner, state: RunState, **fields) -> Run:
    job = Job(owner_id=owner.id, job_type="email_campaign", name="Spring appeal", params={})
    campaign = Campaign(
        owner_id=owner.id, job=job, name="Spring appeal", from_address="news@park.example", subject="Hi"
    )
    db.session.add_all([job, campaign])
    db.session.flush()
    job.params = {"campaign_id": campaign.id}
    db.session.commit()
    return _run(job, 1, state, None, **fields)


def _recipient(run: Run, n: int, status=RecipientStatus.SENT, **times) -> None:
    db.session.add(
        Recipient(run_id=run.id, supporter_id=n, email=f"s{n}@example.org", status=status, **times)
    )


def _chart_data(page: str) -> dict:
    """The figures in the page's canvas data-chart attribute."""
    match = re.search(r"<canvas data-chart='([^']*)'", page)
    assert match, "no chart canvas on the page"
    return json.loads(html.unescape(match.group(1)))


def _table_rows(page: str) -> list[list[str]]:
    """The rows (header cell and cells, tags stripped) of the chart's figures table."""
    table = page.split('<details class="chart-figures"', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


# ---------------------------------------------------------------------------- a job's runs


def test_a_jobs_chart_has_its_finished_runs_oldest_first_with_the_failed_one_marked(app, users):
    job = export_job(users["user"], name="Donor export")
    _run(job, 1, RunState.COMPLETED, 90, created=10)
    _run(job, 2, RunState.FAILED, 30, created=4, at=T0 + timedelta(hours=1))
    _run(job, 3, RunState.COMPLETED, 60, created=12, at=T0 + timedelta(hours=2))
    _run(job, 4, RunState.SKIPPED, None)  # never ran: no run time to draw
    _run(job, 5, RunState.PROCESSING, 5)  # not finished

    chart = charts.job_runs_chart(job)

    assert chart is not None
    assert chart["labels"] == ["#1", "#2", "#3"]
    assert chart["durations"] == [90.0, 30.0, 60.0] and chart["duration_unit"] == "s"
    assert chart["duration_texts"] == ["1 min 30 s", "30 s", "1 min 00 s"]
    assert chart["count_label"] == "Exported" and chart["count_noun"] == "supporters"
    assert chart["counts"] == [10, 4, 12]
    assert chart["failed"] == [False, True, False]
    assert chart["states"] == ["completed", "failed", "completed"]
    assert chart["started"][0] == "Mar 2, 2026 10:00 AM EST"
    assert chart["summary"] == (
        "Run time and exported supporters of the last 3 finished runs, #1 to #3: "
        "run time from 30 s to 1 min 30 s; 1 failed."
    )


def test_a_jobs_chart_counts_what_its_type_shows_first_in_minutes_for_long_runs(app, users, tmp_path):
    job = import_job(users["user"], tmp_path / "people.csv", ["email"], name="Nightly import")
    _run(job, 1, RunState.COMPLETED, 150, checked=2000, created=1500)
    _run(job, 2, RunState.CANCELLED, 45, checked=300)

    chart = charts.job_runs_chart(job)

    assert chart is not None
    assert chart["count_label"] == "Checked" and chart["counts"] == [2000, 300]
    assert chart["duration_unit"] == "min" and chart["durations"] == [2.5, 0.75]
    assert chart["failed"] == [False, False] and chart["states"] == ["completed", "cancelled"]


def test_a_jobs_chart_shows_its_last_50_runs_and_nothing_before_its_first_finished_run(app, users):
    job = export_job(users["user"])
    assert charts.job_runs_chart(job) is None
    _run(job, 1, RunState.QUEUED, None)
    assert charts.job_runs_chart(job) is None

    for number in range(2, 58):
        _run(job, number, RunState.COMPLETED, number, at=T0 + timedelta(minutes=number))
    chart = charts.job_runs_chart(job)

    assert chart is not None and len(chart["labels"]) == charts.RUNS_SHOWN == 50
    assert chart["labels"][0] == "#8" and chart["labels"][-1] == "#57"


# ---------------------------------------------------------------------------- a group's runs


def test_a_groups_chart_stacks_each_runs_steps_and_marks_the_failed_step(app, users):
    user = users["user"]
    first, second = export_job(user, name="Members export"), export_job(user, name="Donors export")
    group = _group(user, [first, second])
    one = _run(group, 1, RunState.COMPLETED, 200)
    _run(first, 1, RunState.COMPLETED, 60, parent_run_id=one.id, step=1)
    _run(second, 1, RunState.COMPLETED, 120, parent_run_id=one.id, step=2)
    two = _run(group, 2, RunState.FAILED, 100, at=T0 + timedelta(days=1))
    _run(first, 2, RunState.FAILED, 10, parent_run_id=two.id, step=1)  # retried: the later run counts
    _run(first, 3, RunState.COMPLETED, 30, parent_run_id=two.id, step=1)
    _run(second, 2, RunState.FAILED, 45, parent_run_id=two.id, step=2)
    _run(group, 3, RunState.PROCESSING, 5)  # still running: not charted

    chart = charts.group_runs_chart(group)

    assert chart is not None
    assert chart["labels"] == ["#1", "#2"]
    assert chart["duration_unit"] == "min"
    assert [step["label"] for step in chart["steps"]] == ["Step 1 · Members export", "Step 2 · Donors export"]
    assert chart["steps"][0]["values"] == [1.0, 0.5] and chart["steps"][1]["values"] == [2.0, 0.75]
    assert chart["steps"][1]["texts"] == ["2 min 00 s", "45 s"]
    assert chart["failed"] == [False, True] and chart["failed_step"] == [None, 2]
    assert chart["totals"] == ["3 min 20 s", "1 min 40 s"]
    assert chart["summary"].endswith("stacked by step (2 steps); 1 failed.")


def test_a_group_run_that_failed_before_its_second_step_leaves_a_gap(app, users):
    user = users["user"]
    first, second = export_job(user), export_job(user)
    group = _group(user, [first, second])
    run = _run(group, 1, RunState.FAILED, 20)
    _run(first, 1, RunState.FAILED, 20, parent_run_id=run.id, step=1)
    _run(group, 2, RunState.COMPLETED, 30)  # a run without step runs still shows

    chart = charts.group_runs_chart(group)

    assert chart is not None and [step["number"] for step in chart["steps"]] == [1]
    assert chart["steps"][0]["values"] == [20.0, None] and chart["failed_step"] == [1, None]


def test_a_groups_chart_shows_its_last_50_runs(app, users):
    user = users["user"]
    group = _group(user, [export_job(user), export_job(user)])
    for number in range(1, 53):
        _run(group, number, RunState.COMPLETED, 10)

    chart = charts.group_runs_chart(group)

    assert chart is not None and chart["labels"][0] == "#3" and len(chart["labels"]) == 50


# ---------------------------------------------------------------------------- a campaign run


def test_sends_are_counted_a_minute_with_quiet_minutes_as_zero(app, users):
    run = _campaign_run(users["user"], RunState.PROCESSING)
    _recipient(run, 1, sent_at=T0 + timedelta(seconds=5))
    _recipient(run, 2, sent_at=T0 + timedelta(seconds=50))
    _recipient(run, 3, sent_at=T0 + timedelta(minutes=2, seconds=1))
    _recipient(run, 4, status=RecipientStatus.PENDING)
    _recipient(run, 5, status=RecipientStatus.FAILED)
    db.session.commit()

    chart = charts.campaign_chart(run)

    assert chart is not None and chart["kind"] == "sends" and not chart["empty"]
    assert chart["labels"] == ["10:00 AM", "10:01 AM", "10:02 AM"]
    assert chart["sent"] == [2, 0, 1]
    assert chart["zone"] in ("EST", "EDT") and chart["refresh"] == charts.REFRESH_SENDING
    assert chart["summary"] == (
        "Messages sent a minute from 10:00 AM to 10:02 AM: 3 in all, at most 2 a minute (at 10:00 AM)."
    )


def test_sends_show_the_last_240_minutes_of_sending(app, users):
    run = _campaign_run(users["user"], RunState.PAUSED)
    _recipient(run, 1, sent_at=T0 - timedelta(hours=5))  # before the window
    _recipient(run, 2, sent_at=T0 - timedelta(minutes=239))
    _recipient(run, 3, sent_at=T0 + timedelta(seconds=30))
    db.session.commit()

    chart = charts.campaign_chart(run)

    assert chart is not None and len(chart["labels"]) == charts.MINUTES_SHOWN == 240
    assert sum(chart["sent"]) == 2 and chart["sent"][0] == 1 and chart["sent"][-1] == 1


def test_nothing_sent_yet_is_an_empty_chart_that_keeps_refreshing(app, users):
    run = _campaign_run(users["user"], RunState.INITIALIZING)

    chart = charts.campaign_chart(run)

    assert chart is not None and chart["empty"] and chart["summary"] == "Nothing has been sent yet."
    assert chart["refresh"] == charts.REFRESH_SENDING


def test_opens_and_clicks_are_counted_a_day_in_the_account_time_zone(app, users, monkeypatch):
    zone = app.config["TIMEZONE"]
    # 9:30 PM account time today (already tomorrow in UTC), the chart's clock held there: its last
    # day cannot move at midnight under the test, nor `begun` and a second later fall on two days
    now = local_to_utc(datetime.combine(to_local(utcnow(), zone).date(), time(21, 30)), zone)
    monkeypatch.setattr(charts, "utcnow", lambda: now)
    begun = now - timedelta(days=2)
    run = _campaign_run(
        users["user"], RunState.COLLECTING, started_at=begun, collect_until=now + timedelta(days=5)
    )
    _recipient(run, 1, sent_at=begun, opened_at=begun)
    _recipient(run, 2, sent_at=begun, opened_at=begun + timedelta(seconds=1), clicked_at=now)
    _recipient(run, 3, sent_at=begun, opened_at=now, clicked_at=now)
    _recipient(run, 4, sent_at=begun)
    db.session.commit()

    chart = charts.campaign_chart(run)

    first, today = to_local(begun, zone).date(), to_local(now, zone).date()
    days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    assert chart is not None and chart["kind"] == "engagement"
    assert chart["labels"] == [f"{day:%b} {day.day}" for day in days]
    assert chart["opens"] == [2] + [0] * (len(days) - 2) + [1]
    assert chart["clicks"] == [0] * (len(days) - 1) + [2]
    assert chart["refresh"] == charts.REFRESH_COLLECTING
    assert chart["summary"].endswith("3 opened and 2 clicked.")


def test_opens_and_clicks_cover_31_days_at_most_and_stop_refreshing_once_completed(app, users):
    now = utcnow()
    run = _campaign_run(users["user"], RunState.COMPLETED, started_at=now - timedelta(days=40))
    _recipient(run, 1, opened_at=now - timedelta(days=39))  # before the 31 days shown
    _recipient(run, 2, opened_at=now - timedelta(days=3))
    db.session.commit()

    chart = charts.campaign_chart(run)

    assert chart is not None and len(chart["labels"]) == charts.DAYS_SHOWN == 31
    assert sum(chart["opens"]) == 1 and chart["refresh"] is None


def test_a_run_that_sends_no_email_has_no_campaign_chart(app, users):
    run = _run(export_job(users["user"]), 1, RunState.PROCESSING, 5)
    assert charts.campaign_chart(run) is None


# ---------------------------------------------------------------------------- the pages


SCRIPTS = re.compile(r'<script src="([^"]+)"')


def test_the_job_page_shows_the_chart_and_a_table_of_the_same_figures(client, auth, users):
    job = export_job(users["user"], name="Donor export")
    _run(job, 1, RunState.COMPLETED, 90, created=10)
    _run(job, 2, RunState.FAILED, 30, created=4)
    auth.login(users["user"].email)

    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)

    figure = page.split('<figure class="chart">', 1)[1].split("</figure>", 1)[0]
    assert "<figcaption>Run time and exported supporters of the last 2 finished runs" in figure
    canvas = re.search(r"<canvas [^>]*>", figure).group(0)
    assert 'role="img"' in canvas
    assert 'aria-label="Run time and exported supporters of the last 2 finished runs, #1 to #2:' in canvas
    assert "<summary>Show the figures as a table</summary>" in figure
    assert "<caption>" in figure and '<th scope="col" class="num">Exported</th>' in figure
    data = _chart_data(page)
    assert data["counts"] == [10, 4] and data["failed"] == [False, True]
    assert _table_rows(page) == [
        ["#1", "Mar 2, 2026 10:00 AM EST", "1 min 30 s", "10", "completed"],
        ["#2", "Mar 2, 2026 10:00 AM EST", "30 s", "4", "✕ failed"],
    ]
    sources = SCRIPTS.findall(page)
    assert "/static/vendor/chart.umd.min.js" in sources and "/static/charts.js" in sources
    assert all(source.startswith("/static/") for source in sources)  # never a CDN
    assert re.search(r'<script src="/static/vendor/chart.umd.min.js" defer></script>', page)


def test_a_job_without_finished_runs_says_so_and_loads_no_chart_library(client, auth, users):
    job = export_job(users["user"])
    auth.login(users["user"].email)

    page = client.get(f"/jobs/{job.id}").get_data(as_text=True)

    assert "No finished runs yet" in page
    assert "<canvas" not in page and "chart.umd.min.js" not in page


def test_the_vendored_chart_library_and_its_licence_are_served_from_static(client):
    library = client.get("/static/vendor/chart.umd.min.js")
    assert library.status_code == 200 and b"Chart.js v4.6.1" in library.data
    assert b"sourceMappingURL" not in library.data  # its map is not vendored
    assert b"MIT License" in client.get("/static/vendor/chart.js.LICENSE.md").data
    assert b"htmx:afterSwap" in client.get("/static/charts.js").data


def test_the_group_page_shows_stacked_steps_and_their_table(client, auth, users):
    user = users["user"]
    first, second = export_job(user, name="Members export"), export_job(user, name="Donors export")
    group = _group(user, [first, second])
    run = _run(group, 1, RunState.FAILED, 100)
    _run(first, 1, RunState.COMPLETED, 30, parent_run_id=run.id, step=1)
    _run(second, 1, RunState.FAILED, 45, parent_run_id=run.id, step=2)
    auth.login(user.email)

    page = client.get(f"/groups/{group.id}").get_data(as_text=True)

    assert '<figure class="chart">' in page and 'role="img"' in page
    assert "<figcaption>Run time of each step in the last finished group run, stacked by step" in page
    assert 'aria-label="Run time of each step in the last finished group run, #1 to #1' in page
    assert '<th scope="col">Step 2 · Donors export</th>' in page
    assert _table_rows(page) == [
        ["#1", "Mar 2, 2026 10:00 AM EST", "30 s", "45 s ✕ failed", "1 min 40 s", "✕ failed at step 2"]
    ]
    assert _chart_data(page)["failed_step"] == [2]
    assert "/static/vendor/chart.umd.min.js" in SCRIPTS.findall(page)


def test_a_group_without_finished_runs_says_so(client, auth, users):
    user = users["user"]
    group = _group(user, [export_job(user), export_job(user)])
    auth.login(user.email)

    page = client.get(f"/groups/{group.id}").get_data(as_text=True)

    assert "No finished group runs yet" in page and "<canvas" not in page


def test_a_sending_campaign_run_page_has_a_chart_that_refreshes_itself(client, auth, users):
    run = _campaign_run(users["user"], RunState.PROCESSING)
    _recipient(run, 1, sent_at=T0)
    db.session.commit()
    auth.login(users["user"].email)

    page = client.get(f"/runs/{run.id}").get_data(as_text=True)

    section = page.split('<section id="campaign-chart"', 1)[1].split("</section>", 1)[0]
    url = f"/runs/{run.id}/campaign-chart"
    assert f'hx-get="{url}" hx-trigger="every 4s" hx-swap="outerHTML"' in section
    assert 'role="img"' in section and "<caption>Messages sent a minute" in section
    assert _table_rows(page) == [["10:00 AM", "1"]]
    assert "/static/charts.js" in SCRIPTS.findall(page)

    region = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert region.lstrip().startswith('<section id="campaign-chart"') and "<html" not in region


def test_a_completed_campaign_run_shows_opens_and_clicks_and_stops_refreshing(client, auth, users):
    now = utcnow()
    run = _campaign_run(users["user"], RunState.COMPLETED, started_at=now - timedelta(hours=1))
    _recipient(run, 1, sent_at=now, opened_at=now, clicked_at=now)
    db.session.commit()
    auth.login(users["user"].email)

    page = client.get(f"/runs/{run.id}").get_data(as_text=True)

    section = page.split('<section id="campaign-chart"', 1)[1].split("</section>", 1)[0]
    assert "hx-get" not in section.split(">", 1)[0]
    assert "<h2>Opens and clicks</h2>" in section and '<th scope="col" class="num">Clicked</th>' in section
    assert _table_rows(page)[-1][1:] == ["1", "1"]


def test_other_runs_have_no_campaign_chart_and_no_chart_library(client, auth, users):
    run = _run(export_job(users["user"]), 1, RunState.COMPLETED, 5)
    auth.login(users["user"].email)

    page = client.get(f"/runs/{run.id}").get_data(as_text=True)

    assert 'id="campaign-chart"' not in page and "chart.umd.min.js" not in page


@pytest.mark.parametrize("who, status", [("user", 200), ("other", 404), ("super_admin", 200)])
def test_the_campaign_chart_region_is_the_run_owners(client, auth, users, who, status):
    run = _campaign_run(users["user"], RunState.PROCESSING)
    auth.login(users[who].email)
    assert client.get(f"/runs/{run.id}/campaign-chart").status_code == status
