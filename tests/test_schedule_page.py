"""The schedule page: refusals that say what would work, no error before anything is chosen,
labels that point at their own fields, and its words (issue 13)."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest

from tests.conftest import export_job
from webapp.extensions import db
from webapp.jobs import schedule_forms, schedule_routes, scheduling
from webapp.jobs.schedule_forms import counted, describe_schedule, past_slot_message
from webapp.models import JobSchedule
from webapp.models.base import utcnow
from webapp.rules.clock import to_local
from webapp.rules.recurrence import ScheduleKind

TZ = "America/New_York"
KINDS = [kind.value for kind in ScheduleKind]
# What an error looks like on the page: a field message, an alert, a field marked invalid.
ERROR_MARKUP = re.compile(r'field-error|role="alert"|aria-invalid|class="flash error"')


@pytest.fixture
def job(users):
    return export_job(users["user"], name="Weekly export")


@pytest.fixture
def logged_in(auth, users):
    auth.login("user@example.org")


def local_now(app) -> datetime:
    return to_local(utcnow(), app.config["TIMEZONE"]).replace(tzinfo=None)


def local_today() -> str:
    """The account's today (New York's), which is not the machine's between 19:00 and midnight."""
    return to_local(utcnow(), TZ).date().isoformat()


def save(client, job, **fields):
    data = {
        "enabled": "y",
        "kind": "once",
        "start_date": local_today(),
        "overlap_policy": "skip",
        "misfire_policy": "run_once",
        "misfire_grace_minutes": "60",
        **fields,
    }
    return client.post(f"/jobs/{job.id}/schedule", data=data)


def add_schedule(job, **fields) -> JobSchedule:
    schedule = JobSchedule(job_id=job.id, enabled=True, **fields)
    db.session.add(schedule)
    db.session.commit()
    return schedule


# ------------------------------------------------------------------------------ refusals


def test_a_once_time_earlier_today_is_refused_and_nothing_is_saved(app, client, logged_in, job):
    earlier = local_now(app) - timedelta(minutes=5)
    response = save(client, job, once_at=earlier.strftime("%Y-%m-%dT%H:%M"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert re.search(
        r"This date and time has passed \(it is now \w{3} \d{1,2}, \d{4} \d{1,2}:\d{2} [AP]M E[SD]T\): "
        r"choose a later one\.",
        html,
    )
    assert 'aria-describedby="once_at-error" aria-invalid="true"' in html
    assert JobSchedule.query.count() == 0


def test_a_once_time_in_the_repeated_hour_whose_first_pass_is_over_is_refused(
    app, client, logged_in, job, monkeypatch
):
    # New York, Nov 1 2026: 01:00-02:00 happens twice. At 01:30 EST (06:30 UTC) the first 01:45
    # (EDT, 05:45 UTC), which is what a saved 01:45 means, is over: refused, though 01:45 > 01:30
    app.config["TIMEZONE"] = "America/New_York"
    monkeypatch.setattr(schedule_forms, "utcnow", lambda: datetime(2026, 11, 1, 6, 30))
    refused = save(client, job, start_date="2026-11-01", once_at="2026-11-01T01:45")
    assert refused.status_code == 200 and "This date and time has passed" in refused.get_data(as_text=True)
    assert save(client, job, start_date="2026-11-01", once_at="2026-11-01T02:15").status_code == 302


def test_the_preview_says_a_once_time_has_passed(app, client, logged_in, job):
    yesterday = (local_now(app) - timedelta(days=1)).strftime("%Y-%m-%dT09:00")
    html = client.get(
        f"/jobs/{job.id}/schedule/preview",
        query_string={"kind": "once", "start_date": local_today(), "once_at": yesterday},
    ).get_data(as_text=True)
    assert "This date and time has passed" in html and 'role="alert"' in html


def test_a_once_time_later_today_is_saved(app, client, logged_in, job):
    later = local_now(app) + timedelta(hours=2)
    response = save(client, job, once_at=later.strftime("%Y-%m-%dT%H:%M"))
    assert response.status_code == 302
    assert JobSchedule.query.one().next_run_at is not None


def test_a_once_time_before_the_start_date_is_refused_as_it_would_never_run(app, client, logged_in, job):
    later = local_now(app) + timedelta(days=3)
    start = (later + timedelta(days=2)).date()
    response = save(client, job, start_date=start.isoformat(), once_at=later.strftime("%Y-%m-%dT%H:%M"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "This is before the start date" in html and 'aria-invalid="true"' in html
    assert JobSchedule.query.count() == 0
    once_at = later.strftime("%Y-%m-%dT%H:%M")
    preview = client.get(
        f"/jobs/{job.id}/schedule/preview",
        query_string={"kind": "once", "start_date": start.isoformat(), "once_at": once_at},
    ).get_data(as_text=True)
    assert "This is before the start date" in preview and 'role="alert"' in preview
    # The same day as the start date is fine
    same_day = save(client, job, start_date=later.date().isoformat(), once_at=once_at)
    assert same_day.status_code == 302 and JobSchedule.query.one().next_run_at is not None


def test_a_past_slot_refusal_names_the_next_free_slot(app, client, logged_in, job, monkeypatch):
    now = local_now(app)
    monkeypatch.setattr(scheduling, "local_now", lambda: now)  # the slot checked at the same moment
    response = client.post(
        f"/jobs/{job.id}/schedule",
        data={
            "enabled": "y",
            "kind": "hourly_slot",
            "start_date": now.date().isoformat(),
            "hour": str(now.hour),
            "slot": str(now.minute // 15),
            "overlap_policy": "skip",
            "misfire_policy": "run_once",
            "misfire_grace_minutes": "60",
        },
    )
    html = response.get_data(as_text=True)
    assert html.count("The time selected occurs in the past: today&#39;s ") == 1  # at its field only
    assert re.search(r"The next free slot is \d{1,2}:\d{2}.{0,12}[AP]M E[SD]T (today|tomorrow)", html)
    assert JobSchedule.query.count() == 0


@pytest.mark.parametrize(
    "now,hour,slot,expected",
    [
        (
            datetime(2026, 6, 3, 15, 7),
            14,
            1,
            "The time selected occurs in the past: today's 2:15–2:30 PM EDT slot has begun. "
            "The next free slot is 3:15–3:30 PM EDT today, or keep this slot and start tomorrow.",
        ),
        (
            datetime(2026, 12, 3, 23, 50),
            23,
            3,
            "The time selected occurs in the past: today's 11:45 PM–12:00 AM EST slot has begun. "
            "The next free slot is 12:00–12:15 AM EST tomorrow, or keep this slot and start tomorrow.",
        ),
        (
            datetime(2026, 12, 3, 11, 44),
            9,
            0,
            "The time selected occurs in the past: today's 9:00–9:15 AM EST slot has begun. "
            "The next free slot is 11:45 AM–12:00 PM EST today, or keep this slot and start tomorrow.",
        ),
    ],
)
def test_the_past_slot_message_in_words(now, hour, slot, expected):
    assert past_slot_message(hour, slot, now, TZ) == expected


def test_a_saved_slot_that_began_today_can_still_be_edited(app, client, logged_in, job, monkeypatch):
    """Editing other settings of a saved daily slot is not refused because today's slot began."""
    now = local_now(app)
    monkeypatch.setattr(scheduling, "local_now", lambda: now)  # "tomorrow" stays tomorrow at midnight
    slot_form = {
        "enabled": "y",
        "kind": "hourly_slot",
        "start_date": (now.date() + timedelta(days=1)).isoformat(),
        "hour": "0",
        "slot": "0",
        "overlap_policy": "skip",
        "misfire_policy": "run_once",
        "misfire_grace_minutes": "60",
    }
    assert client.post(f"/jobs/{job.id}/schedule", data=slot_form).status_code == 302
    saved = JobSchedule.query.one()
    saved.start_date = now.date() - timedelta(days=7)  # a week has passed
    db.session.commit()
    page = client.get(f"/jobs/{job.id}/schedule").get_data(as_text=True)
    assert not ERROR_MARKUP.search(page)
    assert re.search(rf"Runs daily at <strong>12:{saved.minute:02d} AM E[SD]T</strong>", page)
    slot_form.update(start_date=saved.start_date.isoformat(), overlap_policy="queue")
    assert client.post(f"/jobs/{job.id}/schedule", data=slot_form).status_code == 302
    assert JobSchedule.query.one().overlap_policy == "queue"


# ------------------------------------------------------------ no error before anything typed


def test_the_page_opens_without_an_error(client, logged_in, job):
    html = client.get(f"/jobs/{job.id}/schedule").get_data(as_text=True)
    assert not ERROR_MARKUP.search(html), ERROR_MARKUP.search(html)
    assert "The next runs show here once you choose the days and the time." in html


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("saved", [None, "days_of_week", "hourly_slot"])
def test_choosing_a_kind_shows_no_error(app, client, logged_in, job, kind, saved):
    """The fields the Repeat choice swaps in (and the preview that comes with them), as the
    browser asks for them: today's start date, the other kind's fields, no slot chosen yet."""
    today = local_now(app).date()
    if saved == "days_of_week":
        add_schedule(job, kind=saved, start_date=today, weekdays=[0], time=time(9, 0))
    elif saved == "hourly_slot":
        add_schedule(job, kind=saved, start_date=today, hour=23, slot=3, minute=50)
    query = {"kind": kind, "start_date": today.isoformat(), "time": "", "overlap_policy": "skip"}
    response = client.get(
        f"/jobs/{job.id}/schedule/fields", query_string=query, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert not ERROR_MARKUP.search(html), ERROR_MARKUP.search(html)
    assert 'id="schedule-preview"' in html


def test_the_slot_fields_offer_the_next_free_slot_once_the_default_has_begun(
    app, client, logged_in, job, monkeypatch
):
    late = datetime.combine(local_now(app).date(), time(23, 50))
    # both clocks the fields read: whether the default 9:00 slot has begun, and the next free slot
    monkeypatch.setattr(scheduling, "local_now", lambda: late)
    monkeypatch.setattr(schedule_routes, "local_now", lambda: late)
    html = client.get(
        f"/jobs/{job.id}/schedule/fields",
        query_string={"kind": "hourly_slot", "start_date": late.date().isoformat()},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert not ERROR_MARKUP.search(html)
    tomorrow = (late + timedelta(days=1)).date().isoformat()
    assert f'value="{tomorrow}"' in html
    assert '<option selected value="0">12:00 AM</option>' in html


# --------------------------------------------------------------------------- words, labels


def test_the_slot_kind_is_named_for_what_it_is(client, logged_in, job):
    html = client.get(f"/jobs/{job.id}/schedule").get_data(as_text=True)
    assert '<option value="hourly_slot">Daily, in a 15-minute slot</option>' in html
    fields = client.get(
        f"/jobs/{job.id}/schedule/fields",
        query_string={"kind": "hourly_slot", "start_date": "2099-01-01"},
        headers={"HX-Request": "true"},
    ).get_data(as_text=True)
    assert "Conveyor picks a random minute within the slot" in fields
    assert "shows it here after saving" in fields
    assert ">9:00 AM</option>" in fields and ">11:00 PM</option>" in fields
    assert not re.search(r">\d{2}:00</option>", fields)  # no 24-hour "14:00"


def test_every_label_on_the_page_points_at_one_field(client, logged_in, job):
    html = client.get(f"/jobs/{job.id}/schedule").get_data(as_text=True)
    ids = re.findall(r'\sid="([^"]+)"', html)
    for target in re.findall(r'<label for="([^"]+)"', html):
        assert ids.count(target) == 1, target
    blackout = html[html.index('action="/jobs/') :]
    assert '<label for="blackout_start_date">From</label>' in blackout
    assert 'id="blackout_start_date" name="start_date"' in blackout


def test_a_blackout_is_still_added_from_the_schedule_page(client, logged_in, job):
    from webapp.models import Blackout

    response = client.post(
        f"/jobs/{job.id}/blackouts",
        data={"start_date": "2099-12-24", "end_date": "2099-12-26", "reason": "Office closed"},
    )
    assert response.status_code == 302
    assert Blackout.query.one().start_date == date(2099, 12, 24)


@pytest.mark.parametrize(
    "once_at,heading",
    [("2099-06-01T09:00", "<h2>Next run</h2>"), (None, "<h2>Next 10 runs</h2>")],
)
def test_the_preview_heading_counts_the_runs(client, logged_in, job, once_at, heading):
    query = {"kind": "once", "start_date": "2099-01-01", "once_at": once_at}
    if once_at is None:
        query = {"kind": "times_per_day", "start_date": "2099-01-01", "times_per_day": "1", "time": "22:22"}
    html = client.get(f"/jobs/{job.id}/schedule/preview", query_string=query).get_data(as_text=True)
    assert heading in html
    assert "22:22" not in html and "09:00" not in html
    assert re.search(r"<li>\w{3} \d{1,2}, 2099 (9:00 AM|10:22 PM) E[SD]T</li>", html)


def test_counted_words():
    assert [counted(n, "minute") for n in (0, 1, 2)] == ["0 minutes", "1 minute", "2 minutes"]


def test_one_run_a_day_is_described_as_once_a_day():
    schedule = JobSchedule(kind="times_per_day", times_per_day=1, time=time(22, 22))
    assert describe_schedule(schedule) == "once a day at 10:22 PM"


def test_a_once_time_in_year_one_is_refused_as_past_east_of_utc(app, client, logged_in, job):
    app.config["TIMEZONE"] = "Europe/Berlin"  # (year 1, 00:30 in Berlin is before year 1 in UTC)
    refused = save(client, job, once_at="0001-01-01T00:30")
    assert refused.status_code == 200 and "This date and time has passed" in refused.get_data(as_text=True)
