"""When a step falls due: delays, waits until a date or a weekday and time, business hours.

Wall-clock times are resolved in a time zone (the contact's, else the tenant's) with
`zoneinfo`, so "Tuesday 09:00" stays 09:00 across a DST change; a local time that does not
exist (the spring-forward gap) resolves to the same wall time after the change.
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from campaigns.content import WEEKDAYS
from campaigns.models import MESSAGE_STEPS, Campaign, CampaignStep, DelayUnit, StepType

UNITS = {DelayUnit.HOURS: timedelta(hours=1), DelayUnit.DAYS: timedelta(days=1), DelayUnit.WEEKS: timedelta(weeks=1)}


def step_delay(step: CampaignStep) -> timedelta:
    return UNITS[DelayUnit(step.delay_unit)] * step.delay_value


def local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """The aware datetime of a wall-clock time: the first of two in the autumn overlap, and a
    time in the spring gap moved forward by the gap (02:30 becomes 03:30)."""
    return datetime.combine(day, clock, tzinfo=zone).astimezone(UTC).astimezone(zone)


def step_due(step: CampaignStep, after: datetime, zone: ZoneInfo) -> datetime:
    """When `step` falls due for someone who reached it at `after`."""
    due = after + step_delay(step)
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
