"""When steps fall due: delays, waits to a date or a weekday and time across DST, business hours."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from campaigns.models import CampaignStep
from campaigns.schedule import business_hours_next, local, step_due

DENVER = ZoneInfo("America/Denver")
PARIS = ZoneInfo("Europe/Paris")
HOURS = {"mon": {"start": "08:00", "end": "18:00"}, "tue": {"start": "08:00", "end": "18:00"}}


def wait(**config) -> CampaignStep:
    return CampaignStep(step_type="wait", step_config=config, delay_value=0, delay_unit="hours")


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        # The Tuesday after each zone's spring change (Denver 2026-03-08, Paris 2026-03-29): still 09:00 local.
        (DENVER, datetime(2026, 3, 6, 18, 0, tzinfo=UTC), datetime(2026, 3, 10, 15, 0, tzinfo=UTC)),
        (PARIS, datetime(2026, 3, 27, 18, 0, tzinfo=UTC), datetime(2026, 3, 31, 7, 0, tzinfo=UTC)),
        # And after the autumn change (Denver 2026-11-01, Paris 2026-10-25).
        (DENVER, datetime(2026, 10, 30, 18, 0, tzinfo=UTC), datetime(2026, 11, 3, 16, 0, tzinfo=UTC)),
        (PARIS, datetime(2026, 10, 23, 18, 0, tzinfo=UTC), datetime(2026, 10, 27, 8, 0, tzinfo=UTC)),
    ],
)
def test_a_weekday_wait_keeps_the_wall_clock_across_dst(zone, after, expected):
    due = step_due(wait(weekday="tue", time="09:00"), after, zone)

    assert due == expected
    assert due.astimezone(zone).strftime("%a %H:%M") == "Tue 09:00"


def test_a_time_in_the_spring_gap_moves_past_it():
    assert local(date(2026, 3, 8), time(2, 30), DENVER).strftime("%H:%M") == "03:30"


def test_a_wait_until_a_date_never_goes_back_in_time():
    step = wait(until_date="2026-05-01", time="10:00")

    assert step_due(step, datetime(2026, 4, 1, tzinfo=UTC), DENVER) == datetime(2026, 5, 1, 16, 0, tzinfo=UTC)
    later = datetime(2026, 6, 1, tzinfo=UTC)
    assert step_due(step, later, DENVER) == later


def step(value: int, unit: str) -> CampaignStep:
    return CampaignStep(step_type="send_email", step_config={}, delay_value=value, delay_unit=unit)


def test_a_delay_in_hours_is_elapsed_time():
    # 48 hours from Saturday noon UTC across Denver's spring change: 06:00 MST becomes 07:00 MDT.
    due = step_due(step(48, "hours"), datetime(2026, 3, 7, 13, 0, tzinfo=UTC), DENVER)

    assert due == datetime(2026, 3, 9, 13, 0, tzinfo=UTC)
    assert due.astimezone(DENVER).strftime("%a %H:%M") == "Mon 07:00"


@pytest.mark.parametrize(
    ("zone", "after", "value", "unit", "expected"),
    [
        # 10:00 on the Saturday before each zone's spring change: 10:00 on the Monday after it.
        (DENVER, "2026-03-07T10:00:00-07:00", 2, "days", "2026-03-09T10:00:00-06:00"),
        (PARIS, "2026-03-28T10:00:00+01:00", 2, "days", "2026-03-30T10:00:00+02:00"),
        # And a week across the autumn change.
        (DENVER, "2026-10-29T10:00:00-06:00", 1, "weeks", "2026-11-05T10:00:00-07:00"),
        (PARIS, "2026-10-22T10:00:00+02:00", 1, "weeks", "2026-10-29T10:00:00+01:00"),
        # A wall time that does not exist on the day it lands on moves past the gap.
        (DENVER, "2026-03-07T02:30:00-07:00", 1, "days", "2026-03-08T03:30:00-06:00"),
    ],
)
def test_a_delay_in_days_or_weeks_keeps_the_wall_clock_across_dst(zone, after, value, unit, expected):
    due = step_due(step(value, unit), datetime.fromisoformat(after), zone)

    assert due == datetime.fromisoformat(expected)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2026-03-02T10:00:00-07:00", "2026-03-02T10:00:00-07:00"),  # Monday, open
        ("2026-03-02T19:00:00-07:00", "2026-03-03T08:00:00-07:00"),  # Monday evening: Tuesday's opening
        ("2026-03-03T07:00:00-07:00", "2026-03-03T08:00:00-07:00"),  # Tuesday early
        ("2026-03-04T09:00:00-07:00", "2026-03-09T08:00:00-06:00"),  # Wednesday: next Monday, after the change
    ],
)
def test_business_hours_move_a_send_to_the_next_opening(at, expected):
    moved = business_hours_next(datetime.fromisoformat(at), HOURS, DENVER)

    assert moved == datetime.fromisoformat(expected)


def test_no_business_hours_means_any_time():
    at = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)

    assert business_hours_next(at, {}, DENVER) == at
