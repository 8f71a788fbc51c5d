"""The analytics read rolled-up stays (substatus_stays_refresh) and the history after the
watermark, and answer exactly what the history alone gives.

A seeded random timeline of projects in a New York tenant, across the start of daylight saving
time (2030-03-10), with ties, a deleted record and stays still running; rolled up half-way, then
more history: new changes, a back-dated row among rolled-up ones, a new record, another deletion.
"Now" is 2030-03-20 12:00 UTC.
"""

import datetime as dt
import random
from collections import Counter

import psycopg
import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from crm.models import Project, Tenant
from substatus.models import (
    RECORD_MODELS,
    SubstatusHistory,
    SubstatusPurgedRecord,
    SubstatusStay,
    SubstatusStaysWatermark,
)
from substatus.selectors import analytics_window
from substatus.services import substatus_stays_refresh
from tests.conftest import client_for
from tests.factories import ProjectFactory
from tests.substatus.kinds import PROJECT, config

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2030, 3, 20, 12, 0, tzinfo=dt.UTC)
WINDOWS = [
    ("2030-03-01", "2030-03-10"),
    ("2030-03-10", "2030-03-10"),  # 23 hours long in New York
    ("2030-03-11", "2030-03-20"),
    ("2030-01-01", "2030-03-20"),
    ("2028-03-21", "2030-03-20"),  # two years (731 days)
]
# Where a project may go next from each status, and the substatus keys of each status.
NEXT = {
    "estimate": ["estimate", "estimate", "approved", "cancelled"],
    "approved": ["approved", "scheduled", "cancelled"],
    "scheduled": ["scheduled", "in_progress"],
    "in_progress": ["in_progress", "completed"],
    "completed": ["completed"],
    "cancelled": ["cancelled"],
}
KEYS = {
    "estimate": ["site_visit_pending", "measurements_taken", "quote_prepared"],
    "approved": ["contract_signed", "deposit_received", "materials_ordered"],
    "scheduled": ["crew_assigned", "permits_obtained"],
    "in_progress": ["tear_off", "installation", "final_inspection"],
    "completed": ["final_payment_received", "warranty_issued"],
    "cancelled": ["customer_cancelled", "insurance_denied"],
}


class Timeline:
    """Projects walking through their statuses; each step logged as the trigger would log it."""

    def __init__(self, tenant, seed: int) -> None:
        self.tenant = tenant
        self.random = random.Random(seed)
        self.last: dict = {}  # record id: (status, substatus, when) of its last change

    def project(self, start):
        """A new project, whose history starts at `start`."""
        record_id = ProjectFactory(tenant=self.tenant, status="estimate").pk
        self.last[record_id] = (None, None, start)
        return record_id

    def row(self, record_id: int, status: str, key: str, when: dt.datetime, previous=None) -> SubstatusHistory:
        substatus = config(self.tenant, PROJECT, key)
        from_status, from_substatus = previous or (None, None)
        return SubstatusHistory(
            tenant=self.tenant,
            entity="project",
            record_id=record_id,
            from_status=from_status,
            to_status=status,
            from_substatus=from_substatus,
            to_substatus=substatus,
            before=None,
            after={"status": status, "substatus": substatus.pk},
            source="sql",
            changed_at=when,
        )

    def walk(self, record_id, steps):
        rows = []
        status, substatus, when = self.last[record_id]
        for _ in range(steps):
            following = self.random.choice(NEXT[status]) if status else "estimate"
            key = self.random.choice(KEYS[following])
            if self.random.random() > 0.1:  # otherwise at the same instant as the previous change
                when += dt.timedelta(
                    seconds=self.random.randrange(600, 6 * 86400), microseconds=self.random.randrange(10**6)
                )
            rows.append(self.row(record_id, following, key, when, (status, substatus)))
            status, substatus = following, rows[-1].to_substatus
        SubstatusHistory.objects.bulk_create(rows)
        self.last[record_id] = (status, substatus, when)


def analytics(user, entity: str, window: tuple[str, str]) -> dict:
    with time_machine.travel(NOW, tick=False):
        response = client_for(user).get(
            "/api/v1/substatus/analytics/", {"entity": entity, "from": window[0], "to": window[1]}
        )
    assert response.status_code == 200, response.content
    return response.json()


def every_window(user) -> list[dict]:
    return [analytics(user, entity, window) for entity in ("project", "contact") for window in WINDOWS]


def live_only(user) -> list[dict]:
    """The figures computed from the history alone (no watermark: nothing is rolled up)."""
    watermark = list(SubstatusStaysWatermark.objects.values_list("history_id", flat=True))
    SubstatusStaysWatermark.objects.all().delete()
    try:
        return every_window(user)
    finally:
        if watermark:
            SubstatusStaysWatermark.objects.create(pk=1, history_id=watermark[0])


def stays() -> list[tuple]:
    return sorted(
        SubstatusStay.objects.values_list(
            "tenant_id",
            "entity",
            "record_id",
            "history_id",
            "whole_status",
            "status",
            "substatus_id",
            "entered_at",
            "left_at",
            "seconds",
            "next_status",
        )
    )


def test_rolled_up_and_live_figures_are_equal_before_and_after_more_history(tenant, viewer):
    timeline = Timeline(tenant, seed=10)
    projects = [
        timeline.project(dt.datetime(2030, 2, 20, tzinfo=dt.UTC) + dt.timedelta(days=number * 2, hours=number))
        for number in range(12)
    ]
    for number, project in enumerate(projects):
        timeline.walk(project, 2 + number % 5)
    Project.objects.filter(pk=projects[1]).update(is_deleted=True)

    assert substatus_stays_refresh() > 0
    rolled_up = every_window(viewer)
    assert rolled_up == live_only(viewer)
    assert {row["entries"] for group in rolled_up[0]["statuses"] for row in [group, *group["substatuses"]]} != {0}
    assert substatus_stays_refresh() == 0  # nothing new

    for project in projects[2:6]:
        timeline.walk(project, 3)
    first, second = SubstatusHistory.objects.filter(record_id=projects[0]).order_by("changed_at", "id")[:2]
    backdated = first.changed_at + (second.changed_at - first.changed_at) / 2
    SubstatusHistory.objects.bulk_create(
        [timeline.row(projects[0], "estimate", "quote_prepared", backdated, (first.to_status, first.to_substatus))]
    )
    newcomer = timeline.project(dt.datetime(2030, 3, 9, 23, tzinfo=dt.UTC))
    timeline.walk(newcomer, 4)
    Project.objects.filter(pk=projects[7]).update(is_deleted=True)

    live = live_only(viewer)
    assert every_window(viewer) == live  # rolled up before the changes, the rest read live
    assert substatus_stays_refresh() == 7  # 4 walked on, the back-dated one, the newcomer, its creation's contact
    assert every_window(viewer) == live
    incremental = stays()

    SubstatusStay.objects.all().delete()
    SubstatusStaysWatermark.objects.all().delete()
    substatus_stays_refresh()
    assert stays() == incremental  # the same as rolling up the whole history at once
    assert every_window(viewer) == live


def test_the_rollup_never_makes_a_writer_wait_and_skips_while_the_history_is_being_written(tenant):
    project = ProjectFactory(tenant=tenant)
    database = connection.settings_dict
    with psycopg.connect(
        host=database["HOST"], port=database["PORT"], user=database["USER"], dbname=database["NAME"]
    ) as writer:
        writer.execute("LOCK TABLE substatus_history IN ROW EXCLUSIVE MODE")  # what an INSERT holds until commit
        assert substatus_stays_refresh(attempts=2, pause=0) is None
        assert not SubstatusStay.objects.exists()

    assert substatus_stays_refresh() > 0
    assert SubstatusStay.objects.filter(entity="project", record_id=project.pk).count() == 2


# The figures as plain aggregates over every stay, computed from the history alone: what the
# analytics answered before any roll-up existed (percentile_cont over every stay's time).
REFERENCE_SQL = """
WITH changes AS (
    SELECT id, record_id, from_status, to_status, to_substatus_id, changed_at,
           lead(changed_at) OVER by_record AS next_changed_at, lead(to_status) OVER by_record AS next_status
    FROM substatus_history WHERE tenant_id = %(tenant)s AND entity = %(entity)s
    WINDOW by_record AS (PARTITION BY record_id ORDER BY changed_at, id)
),
status_entries AS (
    SELECT record_id, to_status, changed_at, lead(changed_at) OVER by_record AS next_changed_at,
           lead(to_status) OVER by_record AS next_status
    FROM changes WHERE from_status IS DISTINCT FROM to_status
    WINDOW by_record AS (PARTITION BY record_id ORDER BY changed_at, id)
),
stays AS (
    SELECT false AS whole_status, to_status AS status, to_substatus_id AS substatus_id, record_id, changed_at,
           next_changed_at, next_status
    FROM changes
    UNION ALL
    SELECT true, to_status, NULL, record_id, changed_at, next_changed_at, next_status FROM status_entries
),
timed AS (
    SELECT stays.*, date_part('epoch', COALESCE(next_changed_at, CASE WHEN live.id IS NOT NULL THEN %(now)s END)
                                       - changed_at) AS seconds
    FROM stays
    LEFT JOIN {table} AS live ON next_changed_at IS NULL AND live.id = record_id AND NOT live.is_deleted
    WHERE changed_at >= %(start)s AND changed_at < %(end)s
)
SELECT whole_status, status, substatus_id, count(*),
       round(avg((seconds * 1000000)::bigint) / 1000000, 3)::double precision,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds))::numeric, 3)::double precision,
       round((percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds))::numeric, 3)::double precision,
       array_agg(next_status ORDER BY next_status) FILTER (WHERE next_status IS NOT NULL)
FROM timed
GROUP BY whole_status, status, substatus_id
"""


def reference(tenant, entity: str, window: tuple[str, str], now: dt.datetime) -> set[tuple]:
    first, after_last = analytics_window(
        tenant=tenant, start=dt.date.fromisoformat(window[0]), end=dt.date.fromisoformat(window[1])
    )
    table = RECORD_MODELS[entity]._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            REFERENCE_SQL.format(table=table),
            {"tenant": tenant.pk, "entity": entity, "start": first, "end": after_last, "now": now},
        )
        return {(*row[:7], tuple(sorted(Counter(row[7] or []).items()))) for row in cursor.fetchall()}


def answered(body: dict) -> set[tuple]:
    """The endpoint's figures in the shape of `reference`: the groups with entries."""
    rows = set()
    for group in body["statuses"]:
        for whole_status, row in [(True, group), *((False, sub) for sub in group["substatuses"])]:
            if row["entries"]:
                moved = tuple(
                    sorted((status, round(share * row["entries"])) for status, share in row["next_statuses"].items())
                )
                figures = (row["entries"], row["avg_seconds"], row["median_seconds"], row["p90_seconds"], moved)
                rows.add((whole_status, group["status"], None if whole_status else row["id"], *figures))
    return rows


@pytest.mark.parametrize(
    ("zone", "now"),
    [
        ("America/New_York", NOW),
        # Half an hour and three quarters off UTC: the tenant's days start inside UTC hours.
        ("Asia/Kolkata", NOW + dt.timedelta(minutes=34, seconds=56, microseconds=789)),
        ("Pacific/Chatham", NOW + dt.timedelta(hours=7, minutes=13, microseconds=1)),
    ],
    ids=["new-york", "kolkata", "chatham"],
)
def test_counted_figures_equal_a_recount_of_every_stay(tenant, viewer, zone, now):
    """Counts of whole UTC days, months and hours plus the stays around them give, for windows
    starting and ending inside UTC days and hours, exactly the aggregates over every stay: with
    running stays, a deleted record, one deleted and restored, one purged, and fresh history."""
    Tenant.objects.filter(pk=tenant.pk).update(timezone=zone)
    tenant.refresh_from_db()
    timeline = Timeline(tenant, seed=7)
    # Spread over two months before "now" and a year and a half back, so that month counts are read.
    projects = [
        timeline.project(NOW - dt.timedelta(days=540 - number * 45, hours=number * 5, minutes=number * 7))
        for number in range(12)
    ]
    for number, project in enumerate(projects):
        timeline.walk(project, 3 + number % 4)
    Project.objects.filter(pk=projects[1]).update(is_deleted=True)
    Project.objects.filter(pk=projects[2]).update(is_deleted=True)
    assert substatus_stays_refresh() > 0
    Project.objects.filter(pk=projects[2]).update(is_deleted=False)  # restored after the roll-up
    Project.objects.filter(pk=projects[3]).update(is_deleted=True)
    Project.objects.filter(pk=projects[3]).delete()  # purged after the roll-up
    timeline.walk(projects[4], 2)  # fresh: newer than the watermark
    windows = [*WINDOWS, ("2029-01-31", "2029-03-01"), ("2028-12-15", "2030-03-18")]

    compared = 0
    for phase in ("fresh history", "all rolled up"):
        for entity in ("project", "contact"):
            for window in windows:
                with time_machine.travel(now, tick=False):
                    response = client_for(viewer).get(
                        "/api/v1/substatus/analytics/", {"entity": entity, "from": window[0], "to": window[1]}
                    )
                assert response.status_code == 200, response.content
                expected = reference(tenant, entity, window, now)
                assert answered(response.json()) == expected, (phase, entity, window)
                compared += len(expected)
        substatus_stays_refresh()
    assert compared > 50  # groups with entries, compared figure by figure
    assert SubstatusPurgedRecord.objects.filter(entity="project", record_id=projects[3]).exists()


def counts() -> dict[str, list[tuple]]:
    tables = {
        "substatus_stay_counts": "tenant_id, entity, monthly, period, whole_status, status, substatus_id, "
        "next_status, entries, micros",
        "substatus_stay_buckets": "tenant_id, entity, monthly, period, whole_status, status, substatus_id, "
        "bucket, entries",
        "substatus_open_stay_counts": "tenant_id, entity, hour, whole_status, status, substatus_id, entries, micros",
        "substatus_open_stay_day_counts": "tenant_id, entity, day, whole_status, status, substatus_id, entries, micros",
    }
    with connection.cursor() as cursor:
        found = {}
        for table, columns in tables.items():
            cursor.execute(f"SELECT {columns} FROM {table} ORDER BY {columns}")  # noqa: S608 (constants)
            found[table] = cursor.fetchall()
        return found


@pytest.mark.django_db(transaction=True)
def test_migrations_fill_the_counts_from_the_stays_as_the_refresh_keeps_them(tenant):
    timeline = Timeline(tenant, seed=3)
    for number in range(6):
        project = timeline.project(NOW - dt.timedelta(days=90 - number * 11, hours=number))
        timeline.walk(project, 2 + number % 3)
    substatus_stays_refresh()
    kept = counts()
    assert all(kept.values())

    executor = MigrationExecutor(connection)
    executor.migrate([("substatus", "0007_history_source_campaign_validate")])
    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert counts() == kept
