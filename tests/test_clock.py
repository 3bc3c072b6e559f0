"""Times in the account time zone: the one DST rule every wall-clock time follows (schedules and
campaign launch times alike) and the last date Conveyor plans."""

from datetime import date, datetime

import pytest

from webapp.extensions import db
from webapp.models.campaigns import Campaign
from webapp.rules.clock import LAST_PLANNABLE, check_plannable, exists_locally, local_to_utc
from webapp.rules.recurrence import Schedule, ScheduleKind, next_run

NY = "America/New_York"


@pytest.mark.parametrize(
    "wall,utc",
    [
        (datetime(2027, 3, 14, 2, 30), datetime(2027, 3, 14, 7, 0)),  # the gap: 03:00 EDT
        (datetime(2027, 3, 14, 2, 0), datetime(2027, 3, 14, 7, 0)),
        (datetime(2027, 3, 14, 3, 0), datetime(2027, 3, 14, 7, 0)),
        (datetime(2027, 11, 7, 1, 30), datetime(2027, 11, 7, 5, 30)),  # twice: the first, EDT
        (datetime(2027, 11, 7, 1, 30, fold=1), datetime(2027, 11, 7, 5, 30)),
        (datetime(2027, 7, 1, 12, 0), datetime(2027, 7, 1, 16, 0)),
    ],
)
def test_a_campaign_launch_and_a_once_schedule_land_on_the_same_instant(wall, utc):
    once = Schedule(kind=ScheduleKind.ONCE, tz=NY, start_date=date(2027, 1, 1), once_at=wall)
    assert local_to_utc(wall, NY) == utc
    assert next_run(once, datetime(2027, 1, 1)) == utc


def test_a_campaign_launch_time_in_the_spring_forward_gap_is_saved_as_3_am_edt(app, client, auth, users):
    auth.login("user@example.org")
    response = client.post(
        "/campaigns/new",
        data={
            "name": "Spring appeal",
            "from_address": "a@example.org",
            "subject": "Spring",
            "text_body": "Hello",
            "audience": "opted_in",
            "launch_at": "2099-03-08T02:30",  # a spring-forward day still ahead, whenever the test runs
        },
    )
    assert response.status_code == 302
    campaign = db.session.execute(db.select(Campaign)).scalar_one()
    assert campaign.launch_at == datetime(2099, 3, 8, 7, 0)


@pytest.mark.parametrize(
    "value,refused",
    [
        (LAST_PLANNABLE, False),
        (datetime(2100, 12, 31, 23, 59), False),
        (None, False),
        (date(2101, 1, 1), True),
        (datetime(9999, 12, 31, 23, 30), True),
    ],
)
def test_dates_after_2100_cannot_be_planned(value, refused):
    problem = check_plannable(value)
    assert (problem is not None) is refused
    if refused:
        assert problem == ("Choose a date on or before Dec 31, 2100: Conveyor cannot plan later dates.")


@pytest.mark.parametrize(
    "wall,exists",
    [
        (datetime(2027, 3, 14, 2, 30), False),  # spring forward: 02:00-02:59 do not happen
        (datetime(2027, 3, 14, 1, 59), True),
        (datetime(2027, 3, 14, 3, 0), True),
        (datetime(2027, 11, 7, 1, 30), True),  # happens twice
        (datetime(2027, 11, 7, 1, 30, fold=1), True),
    ],
)
def test_exists_locally(wall, exists):
    assert exists_locally(wall, NY) is exists
