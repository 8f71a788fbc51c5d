"""GET /api/v1/substatus/analytics/: exact figures on a hand-built timeline.

The tenant is in America/New_York, where daylight saving time starts on 2030-03-10: the
window 2030-03-01..2030-03-10 runs from 05:00 UTC on March 1st to 04:00 UTC on March 11th.
"Now" is 2030-03-20 12:00 UTC.
"""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from substatus.models import SubstatusHistory
from tests.api import app_queries
from tests.conftest import client_for
from tests.factories import ProjectFactory
from tests.substatus.kinds import PROJECT, config

pytestmark = pytest.mark.django_db

UTC = dt.UTC
NOW = dt.datetime(2030, 3, 20, 12, 0, tzinfo=UTC)


def hours(value: float) -> float:
    """In seconds to the millisecond, as the endpoint answers."""
    return round(value * 3600, 3)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2030, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def timeline(tenant):
    """Five projects and their changes (status, substatus key, when), oldest first.

    P1: estimate/site visit (Mar 2), measurements (Mar 3), approved/contract signed (Mar 5), still there.
    P2: estimate/site visit (Mar 4 00:00), cancelled six hours later, still there.
    P3: estimate/site visit before the window, quote prepared (Mar 6), approved/deposit received
        (Mar 11 03:30 UTC: still March 10th in New York), still there.
    P4: estimate/site visit on Mar 11 04:30 UTC (March 11th in New York: after the window).
    P5: estimate/site visit (Mar 8), then deleted.
    """
    changes = {
        "P1": [
            ("estimate", "site_visit_pending", at(2, 10)),
            ("estimate", "measurements_taken", at(3, 10)),
            ("approved", "contract_signed", at(5, 10)),
        ],
        "P2": [("estimate", "site_visit_pending", at(4, 0)), ("cancelled", "customer_cancelled", at(4, 6))],
        "P3": [
            ("estimate", "site_visit_pending", at(1, 4, 30)),
            ("estimate", "quote_prepared", at(6, 4, 30)),
            ("approved", "deposit_received", at(11, 3, 30)),
        ],
        "P4": [("estimate", "site_visit_pending", at(11, 4, 30))],
        "P5": [("estimate", "site_visit_pending", at(8, 0))],
    }
    rows = []
    for name, steps in changes.items():
        status, key, _ = steps[-1]
        # The projects as they are now; their creation is logged at the real time (years
        # before the window), the hand-built history below is what the window reads.
        project = ProjectFactory(
            tenant=tenant, name=name, status=status, substatus=config(tenant, PROJECT, key), is_deleted=name == "P5"
        )
        previous = (None, None)
        for status, key, when in steps:
            substatus = config(tenant, PROJECT, key)
            rows.append(
                SubstatusHistory(
                    tenant=tenant,
                    entity="project",
                    record_id=project.pk,
                    from_status=previous[0],
                    to_status=status,
                    from_substatus=previous[1],
                    to_substatus=substatus,
                    before=None,
                    after={"status": status, "substatus": substatus.pk},
                    source="sql",
                    changed_at=when,
                )
            )
            previous = (status, substatus)
    SubstatusHistory.objects.bulk_create(rows)


def analytics(user, **query):
    with time_machine.travel(NOW, tick=False):
        response = client_for(user).get("/api/v1/substatus/analytics/", {"entity": "project", **query})
    assert response.status_code == 200, response.content
    return response.json()


def stats(current, entries, average, median, p90, moves) -> dict:
    return {
        "current": current,
        "entries": entries,
        "avg_seconds": average,
        "median_seconds": median,
        "p90_seconds": p90,
        "next_statuses": moves,
    }


def sub(tenant, key: str, *figures) -> dict:
    substatus = config(tenant, PROJECT, key)
    return {"id": substatus.pk, "key": key, "label": substatus.label, "is_active": True, **stats(*figures)}


def test_exact_figures_for_every_status_and_substatus(tenant, viewer, timeline):
    body = analytics(viewer, **{"from": "2030-03-01", "to": "2030-03-10"})

    none = stats(0, 0, None, None, None, {})
    assert body["entity"] == "project"
    assert (body["from"], body["to"], body["timezone"]) == ("2030-03-01", "2030-03-10", "America/New_York")
    by_status = {status["status"]: status for status in body["statuses"]}
    assert list(by_status) == ["estimate", "approved", "scheduled", "in_progress", "completed", "cancelled"]

    # Estimate: P1 stayed 72 h and was approved, P2 6 h and was cancelled, P5 (deleted) has no time.
    # Percentiles interpolate: p90 of (6 h, 72 h) = 6 h + 0.9 × 66 h.
    assert by_status["estimate"] == {
        "status": "estimate",
        **stats(1, 3, hours(39), hours(39), hours(65.4), {"approved": 1 / 3, "cancelled": 1 / 3}),
        "substatuses": [
            sub(
                tenant,
                "site_visit_pending",
                1,
                3,
                hours(15),
                hours(15),
                hours(22.2),
                {"estimate": 1 / 3, "cancelled": 1 / 3},
            ),
            sub(tenant, "measurements_taken", 0, 1, hours(48), hours(48), hours(48), {"approved": 1.0}),
            sub(tenant, "quote_prepared", 0, 1, hours(119), hours(119), hours(119), {"approved": 1.0}),
        ],
    }
    # Approved: P1 since Mar 5 10:00 (362 h until now) and P3 since Mar 11 03:30 (224.5 h), both still there.
    assert by_status["approved"] == {
        "status": "approved",
        **stats(2, 2, hours(293.25), hours(293.25), hours(348.25), {}),
        "substatuses": [
            sub(tenant, "contract_signed", 1, 1, hours(362), hours(362), hours(362), {}),
            sub(tenant, "deposit_received", 1, 1, hours(224.5), hours(224.5), hours(224.5), {}),
            sub(tenant, "materials_ordered", *none.values()),
        ],
    }
    assert by_status["cancelled"]["current"] == 1
    assert by_status["cancelled"]["entries"] == 1
    assert by_status["cancelled"]["avg_seconds"] == hours(390)
    assert by_status["cancelled"]["substatuses"][0] == sub(
        tenant, "customer_cancelled", 1, 1, hours(390), hours(390), hours(390), {}
    )
    for status in ("scheduled", "in_progress", "completed"):
        assert {key: by_status[status][key] for key in none} == none


def test_the_window_is_read_in_the_tenants_days(tenant, viewer, timeline):
    """Mar 11 03:30 UTC is March 10th in New York (in the window); 04:30 UTC is the 11th (not)."""
    march_11 = analytics(viewer, **{"from": "2030-03-11", "to": "2030-03-11"})
    by_status = {status["status"]: status for status in march_11["statuses"]}

    assert (by_status["estimate"]["entries"], by_status["approved"]["entries"]) == (1, 0)  # P4 only


def test_the_default_window_is_the_last_30_days_and_two_queries_compute_it(tenant, viewer, timeline):
    with CaptureQueriesContext(connection) as captured:
        body = analytics(viewer)

    assert (body["from"], body["to"]) == ("2030-02-19", "2030-03-20")
    by_status = {status["status"]: status for status in body["statuses"]}
    assert by_status["estimate"]["entries"] == 5  # P3's entry on Mar 1 04:30 UTC was Feb 28 in New York
    # Tenant resolution, the analytics' settings, then the current counts and the history figures.
    statements = [
        query["sql"].split()[0]
        for query in app_queries(captured)
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    assert statements == ["SELECT", "SET", "WITH", "WITH"]
