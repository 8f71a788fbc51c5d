"""Reads: a record's substatus history, and time-in-substatus analytics."""

import datetime as dt
import zoneinfo
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from crm.errors import ApplicationError
from crm.models import Tenant
from substatus.models import RECORD_MODELS, STATUS_FIELD, STATUSES, SubstatusHistory

# What a history list shows, joined in so that a page costs a constant number of queries.
HISTORY_RELATED = ("from_substatus", "to_substatus", "changed_by", "impersonated_by")


def substatus_history_for_record(*, tenant_id: int, entity: str, record_id: int) -> QuerySet[SubstatusHistory]:
    """A record's history, newest first."""
    return (
        SubstatusHistory.objects.filter(tenant_id=tenant_id, entity=entity, record_id=record_id)
        .select_related(*HISTORY_RELATED)
        .order_by("-changed_at", "-id")
    )


# Every row of `substatus_history` in the window is an entry into its `to_substatus`; the
# rows that change the status are entries into the status. A stay lasts until the record's
# next change (or until now, for a live record still there; deleted records' last stays
# count as entries without a time). Rows before the window are not read: the next change
# of an entry in the window is never earlier than the entry.
#
# The stays of records whose history is all rolled up (up to the watermark, by
# substatus_stays_refresh) are read from `substatus_stays`; the records with newer history
# rows ("fresh": none but the last minutes' when beat runs, all before the first roll-up) are
# computed from the history as above. Stays still running at the watermark are timed here.
# The average is exact (whole microseconds, summed in any order): both sources give the same
# figures to the bit.
_STATS_SQL = """
WITH fresh AS (
    SELECT DISTINCT history.record_id
    FROM substatus_history AS history
    WHERE history.id > (SELECT COALESCE(max(history_id), 0) FROM substatus_stays_watermark)
      AND history.tenant_id = %(tenant)s AND history.entity = %(entity)s
),
changes AS (
    SELECT history.id, history.record_id, history.from_status, history.to_status,
           history.to_substatus_id, history.changed_at,
           lead(history.changed_at) OVER by_record AS next_changed_at,
           lead(history.to_status) OVER by_record AS next_status
    FROM substatus_history AS history
    WHERE history.tenant_id = %(tenant)s AND history.entity = %(entity)s AND history.changed_at >= %(start)s
      AND history.record_id IN (SELECT record_id FROM fresh)
    WINDOW by_record AS (PARTITION BY history.record_id ORDER BY history.changed_at, history.id)
),
status_entries AS (
    SELECT record_id, to_status, changed_at,
           lead(changed_at) OVER by_record AS next_changed_at,
           lead(to_status) OVER by_record AS next_status
    FROM changes
    WHERE from_status IS DISTINCT FROM to_status
    WINDOW by_record AS (PARTITION BY record_id ORDER BY changed_at, id)
),
stays AS (
    SELECT false AS whole_status, changes.to_status AS status, changes.to_substatus_id AS substatus_id,
           changes.next_status,
           date_part('epoch', COALESCE(changes.next_changed_at, CASE WHEN live.id IS NOT NULL THEN %(now)s END)
                              - changes.changed_at) AS seconds
    FROM changes
    LEFT JOIN {table} AS live
           ON changes.next_changed_at IS NULL AND live.id = changes.record_id AND NOT live.is_deleted
    WHERE changes.changed_at < %(end)s
    UNION ALL
    SELECT true, status_entries.to_status, NULL, status_entries.next_status,
           date_part('epoch', COALESCE(status_entries.next_changed_at,
                                       CASE WHEN live.id IS NOT NULL THEN %(now)s END)
                              - status_entries.changed_at)
    FROM status_entries
    LEFT JOIN {table} AS live
           ON status_entries.next_changed_at IS NULL AND live.id = status_entries.record_id
          AND NOT live.is_deleted
    WHERE status_entries.changed_at < %(end)s
    UNION ALL
    SELECT stay.whole_status, stay.status, stay.substatus_id, stay.next_status, stay.seconds
    FROM substatus_stays AS stay
    WHERE stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s
      AND stay.entered_at >= %(start)s AND stay.entered_at < %(end)s AND stay.left_at IS NOT NULL
      AND stay.record_id NOT IN (SELECT record_id FROM fresh)
    UNION ALL
    SELECT stay.whole_status, stay.status, stay.substatus_id, NULL,
           CASE WHEN live.id IS NOT NULL THEN date_part('epoch', %(now)s - stay.entered_at) END
    FROM substatus_stays AS stay
    LEFT JOIN {table} AS live ON live.id = stay.record_id AND NOT live.is_deleted
    WHERE stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s
      AND stay.entered_at >= %(start)s AND stay.entered_at < %(end)s AND stay.left_at IS NULL
      AND stay.record_id NOT IN (SELECT record_id FROM fresh)
)
-- Grouped in bytes (a group needs no collation: sorting over a million stays by it costs).
SELECT whole_status, status, substatus_id, count(*) AS entries,
       round(avg((seconds * 1000000)::bigint) / 1000000, 3)::double precision AS avg_seconds,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds))::numeric, 3)::double precision
           AS median_seconds,
       round((percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds))::numeric, 3)::double precision
           AS p90_seconds,
       {moves}
FROM (SELECT whole_status, status COLLATE "C" AS status, substatus_id, next_status, seconds FROM stays) AS stays
GROUP BY whole_status, status, substatus_id
"""

# The tenant's substatuses of the entity with how many live records are in each now, and
# the live records without a substatus (no config: NULL id).
_CURRENT_SQL = """
WITH current AS (
    SELECT {status} AS status, substatus_id, count(*) AS records
    FROM {table}
    WHERE tenant_id = %(tenant)s AND NOT is_deleted
    GROUP BY {status}, substatus_id
),
configs AS (
    SELECT * FROM status_substatus_configs WHERE tenant_id = %(tenant)s AND entity = %(entity)s
)
SELECT COALESCE(configs.status, current.status), configs.id, configs.key, configs.label, configs.is_active,
       COALESCE(current.records, 0)
FROM configs FULL JOIN current ON current.substatus_id = configs.id
ORDER BY configs.position, configs.id
"""


def _jsonb_order(item: tuple[str, int]) -> tuple[int, bytes]:
    """The order of a jsonb object's keys (shorter first, then bytewise), as next_statuses always came."""
    key = item[0].encode()
    return len(key), key


def _empty_stats() -> dict[str, Any]:
    return {
        "current": 0,
        "entries": 0,
        "avg_seconds": None,
        "median_seconds": None,
        "p90_seconds": None,
        "next_statuses": {},
    }


# Two years: analytics read every history row of the window.
ANALYTICS_MAX_DAYS = 731


def analytics_window(*, tenant: Tenant, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The instants bounding the days `start` to `end` (both included) in the tenant's time zone;
    a window longer than ANALYTICS_MAX_DAYS is an ApplicationError on `from`."""
    if (end - start).days + 1 > ANALYTICS_MAX_DAYS:
        raise ApplicationError(
            f"The window is at most {ANALYTICS_MAX_DAYS} days: move `from` closer to `to`.",
            code="window_too_long",
            attr="from",
        )
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=zone),
        dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone),
    )


def substatus_analytics(
    *, tenant: Tenant, entity: str, start: dt.date, end: dt.date, now: dt.datetime
) -> list[dict[str, Any]]:
    """For each status of `entity` and each of its substatuses: how many live records are there
    now, how many entered it from `start` to `end` (tenant's days), how long those entries
    lasted (average, median, 90th percentile, in seconds to the millisecond; stays still running count until
    `now`) and the share of them that moved on to each next status. Two queries.
    """
    first, after_last = analytics_window(tenant=tenant, start=start, end=end)
    table = RECORD_MODELS[entity]._meta.db_table
    params: dict[str, Any] = {"tenant": tenant.pk, "entity": entity, "start": first, "end": after_last, "now": now}
    statuses: dict[str, dict[str, Any]] = {
        status: {"status": status, **_empty_stats(), "substatuses": {}} for status in STATUSES[entity].values
    }
    with transaction.atomic(), connection.cursor() as cursor:
        # Sorting a window of history rows fits in memory; compiling the plan (JIT) would cost
        # more than running it.
        cursor.execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off")
        cursor.execute(_CURRENT_SQL.format(table=table, status=STATUS_FIELD[entity]), params)
        for status, pk, key, label, is_active, records in cursor.fetchall():
            group = statuses[status]
            group["substatuses"][pk] = {
                "id": pk,
                "key": key,
                "label": label if pk is not None else "No substatus",
                "is_active": is_active if pk is not None else True,
                **_empty_stats(),
                "current": records,
            }
            group["current"] += records
        nexts = STATUSES[entity].values
        moves = ", ".join(f"count(*) FILTER (WHERE next_status = %(next_{index})s)" for index in range(len(nexts)))
        params.update({f"next_{index}": status for index, status in enumerate(nexts)})
        cursor.execute(_STATS_SQL.format(table=table, moves=moves), params)
        for whole_status, status, pk, entries, average, median, p90, *moved in cursor.fetchall():
            if whole_status:
                target = statuses[status]
            else:
                target = statuses[status]["substatuses"].setdefault(
                    pk, {"id": None, "key": None, "label": "No substatus", "is_active": True, **_empty_stats()}
                )
            target.update(
                entries=entries,
                avg_seconds=average,
                median_seconds=median,
                p90_seconds=p90,
                next_statuses={
                    status: count / entries
                    for status, count in sorted(zip(nexts, moved, strict=True), key=_jsonb_order)
                    if count
                },
            )
    return [{**group, "substatuses": list(group["substatuses"].values())} for group in statuses.values()]
