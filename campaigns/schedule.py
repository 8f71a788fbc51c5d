"""When a step falls due: delays, waits until a date or a weekday and time, business hours.

Wall-clock times are resolved in a time zone (the contact's, else the tenant's) with
`zoneinfo`, so "Tuesday 09:00" stays 09:00 across a DST change; a local time that does not
exist (the spring-forward gap) resolves to the same wall time after the change.

A delay in hours is elapsed time. A delay in days or weeks is calendar time: "2 days after
enrolment" at 10:00 on the Saturday before a DST change is 10:00 on the Monday, as the office
reads it, not 48 hours (09:00 or 11:00 on the wall clock).
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.content import WEEKDAYS
from campaigns.models import MESSAGE_STEPS, Campaign, CampaignStep, DelayUnit, StepType

DAYS_IN = {DelayUnit.DAYS: 1, DelayUnit.WEEKS: 7}


def local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The aware datetime of a wall-clock time: the first of two in the autumn overlap, and a
    time in the spring gap moved forward by the gap (02:30 becomes 03:30)."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC).astimezone(zone)


def delayed(after: datetime, value: int, unit: DelayUnit, zone: ZoneInfo) -> datetime:
    """`after` plus a delay: elapsed hours, or calendar days and weeks at the same wall-clock time."""
    if unit == DelayUnit.HOURS or value == 0:
        return after + timedelta(hours=value)
    start = after.astimezone(zone)
    return local(start.date() + timedelta(days=value * DAYS_IN[unit]), start.time(), zone)


def step_due(step: CampaignStep, after: datetime, zone: ZoneInfo) -> datetime:
    """When `step` falls due for someone who reached it at `after`."""
    due = delayed(after, step.delay_value, DelayUnit(step.delay_unit), zone)
    if step.step_type != StepType.WAIT:
        return due
    config: dict[str, Any] = step.step_config
    clock = time.fromisoformat(config["time"]) if "time" in config else time(0, 0)
    if "until_date" in config:
        return max(due, local(date.fromisoformat(config["until_date"]), clock, zone))
    if "weekday" in config:
        start = due.astimezone(zone)
        wanted = WEEKDAYS.index(config["weekday"])
        for ahead in range(8):
            day = start.date() + timedelta(days=ahead)
            if day.weekday() == wanted:
                candidate = local(day, clock, zone)
                if candidate >= due:
                    return candidate
    return due


def business_hours_next(at: datetime, hours: dict[str, dict[str, str]], zone: ZoneInfo) -> datetime:
    """`at` if it falls within the business hours, else the next opening (empty hours: any time)."""
    if not hours:
        return at
    moment = at.astimezone(zone)
    for ahead in range(8):
        day = moment.date() + timedelta(days=ahead)
        window = hours.get(WEEKDAYS[day.weekday()])
        if window is None:
            continue
        opens = local(day, time.fromisoformat(window["start"]), zone)
        closes = local(day, time.fromisoformat(window["end"]), zone)
        if ahead == 0 and opens <= moment < closes:
            return at
        if moment < opens:
            return opens
    return at


def execution_due(step: CampaignStep, after: datetime, *, campaign: Campaign, zone: ZoneInfo) -> datetime:
    """When the engine runs `step` for someone who reached it at `after`: its delay or wait, and
    for a message in a campaign that respects business hours, the next opening from then."""
    due = step_due(step, after, zone)
    if campaign.respect_business_hours and step.step_type in MESSAGE_STEPS:
        return business_hours_next(due, campaign.business_hours, zone)
    return due
