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
# substatus_stays_refresh) are read from `substatus_stays` and its counts; the records with
# newer history rows ("fresh": none but the last minutes' when beat runs, all before the first
# roll-up) are computed from the history as above.
#
# Finished stays entered in the window's whole UTC days are read from their counts
# (substatus_stay_counts and substatus_stay_buckets: the whole months of those days, then the
# days around them), so a two-year window reads about 24 months and 60 days of counts per group
# instead of every stay. Stays still running entered in the window's whole UTC hours are read
# from their counts (their time is now - entry, so the stays of an hour or a day fall in the
# duration buckets of its first and last instant). A whole UTC day that falls in one bucket is
# one cell of substatus_open_stay_day_counts (every day past the last three weeks or so: buckets
# are wider than a day there); the other days, and the hours of the window's first and last
# days, are read from the hourly counts (substatus_open_stay_counts), a day of them counting as
# one cell when its hours that hold stays fall in one bucket; the rest are cells of their own,
# and the few hours that straddle a bucket boundary are read stay by stay ("open_split"). The
# counts hold every running stay: those of deleted records (indexed, usually few) and of
# records deleted for good (substatus_purged_records, kept by a trigger) are taken back out as
# having no time ("open_off"). Everything else is read stay by stay ("raw"): the fresh records' stays, and the
# stays entered in the hours before the first and after the last whole UTC day (or hour). The
# fresh records' stays inside the counted periods are taken back out of the counts
# ("recounted", "open_off": the history counts them again). Reading deleted records at request
# time instead of counting them in a trigger keeps the counts and is_deleted in one snapshot.
#
# The figures are those of plain aggregates over every stay, to the bit (tests/substatus/
# test_stays.py compares them with percentile_cont over every stay):
# - the average is exact: whole microseconds summed (a sum in any order) and divided as avg()
#   divides, in numeric; a running stay's microseconds are now's minus its entry's, exactly;
# - a percentile is computed as percentile_cont does (ranks floor and ceil of p * (n - 1) among
#   the n timed stays sorted by time, interpolated in double precision). The counts per
#   duration bucket (sixteen per doubling, substatus_stay_bucket, non-decreasing in the time)
#   name the bucket holding each rank and how many times come before it; the rank is then found
#   among that bucket's stays only ("sorted": substatus_stays_bucket_idx, the running stays of
#   the bucket's entry range, and the raw stays of the bucket), about 3% of a group's stays at
#   worst. Counting distinct times instead would not shrink anything: times are microseconds
#   apart. Sorted arrays per day would have to be merged whole for every request.
_STATS_SQL = """
WITH fresh AS MATERIALIZED (
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
raw AS MATERIALIZED (
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
    WHERE stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s AND stay.left_at IS NOT NULL
      AND (stay.entered_at >= %(start)s AND stay.entered_at < %(first_day)s
           OR stay.entered_at >= %(last_day)s AND stay.entered_at < %(end)s)
      AND stay.record_id NOT IN (SELECT record_id FROM fresh)
    UNION ALL
    SELECT stay.whole_status, stay.status, stay.substatus_id, NULL,
           CASE WHEN live.id IS NOT NULL THEN date_part('epoch', %(now)s - stay.entered_at) END
    FROM substatus_stays AS stay
    LEFT JOIN {table} AS live ON live.id = stay.record_id AND NOT live.is_deleted
    WHERE stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s AND stay.left_at IS NULL
      AND (stay.entered_at >= %(start)s AND stay.entered_at < %(first_hour)s
           OR stay.entered_at >= %(last_hour)s AND stay.entered_at < %(end)s)
      AND stay.record_id NOT IN (SELECT record_id FROM fresh)
),
gone AS MATERIALIZED (
    SELECT record.id AS record_id FROM {table} AS record WHERE record.tenant_id = %(tenant)s AND record.is_deleted
    UNION ALL
    SELECT purged.record_id FROM substatus_purged_records AS purged
    WHERE purged.tenant_id = %(tenant)s AND purged.entity = %(entity)s
),
whole_days AS MATERIALIZED (
    SELECT utc.at, start.day::date AS day,
           substatus_stay_bucket(
               date_part('epoch', %(now)s - (utc.at + interval '24 hours' - interval '1 microsecond'))
           ) AS low,
           substatus_stay_bucket(date_part('epoch', %(now)s - utc.at)) AS high
    FROM generate_series(%(cells_from)s::timestamp, %(cells_to)s::timestamp - interval '1 day', interval '1 day')
         AS start (day)
    CROSS JOIN LATERAL (SELECT start.day AT TIME ZONE 'UTC' AS at) AS utc
),
open_day_cells AS MATERIALIZED (
    SELECT cell.whole_status, cell.status, cell.substatus_id, whole_days.at AS hour, cell.entries, cell.micros,
           whole_days.low, whole_days.high
    FROM whole_days
    JOIN substatus_open_stay_day_counts AS cell
      ON cell.tenant_id = %(tenant)s AND cell.entity = %(entity)s AND cell.day = whole_days.day
    WHERE whole_days.low = whole_days.high
),
open_hours AS MATERIALIZED (
    SELECT cell.whole_status, cell.status, cell.substatus_id, COALESCE(cell.substatus_id, 0) AS sid, cell.hour,
           date_trunc('day', cell.hour, 'UTC') AS day, cell.entries, cell.micros
    FROM substatus_open_stay_counts AS cell
    WHERE cell.tenant_id = %(tenant)s AND cell.entity = %(entity)s
      AND (cell.hour >= %(first_hour)s AND cell.hour < LEAST(%(first_day)s, %(last_hour)s)
           OR cell.hour >= GREATEST(%(last_day)s, %(first_hour)s) AND cell.hour < %(last_hour)s)
    UNION ALL
    SELECT cell.whole_status, cell.status, cell.substatus_id, COALESCE(cell.substatus_id, 0), cell.hour,
           date_trunc('day', cell.hour, 'UTC'), cell.entries, cell.micros
    FROM whole_days
    JOIN substatus_open_stay_counts AS cell
      ON cell.tenant_id = %(tenant)s AND cell.entity = %(entity)s
     AND cell.hour >= whole_days.at AND cell.hour < whole_days.at + interval '24 hours'
    WHERE whole_days.low <> whole_days.high
),
open_days AS MATERIALIZED (
    SELECT whole_status, status, substatus_id, sid, day, min(hour) AS hour, sum(entries) AS entries,
           sum(micros) AS micros,
           substatus_stay_bucket(
               date_part('epoch', %(now)s - (max(hour) + interval '1 hour' - interval '1 microsecond'))
           ) AS low,
           substatus_stay_bucket(date_part('epoch', %(now)s - min(hour))) AS high
    FROM open_hours
    GROUP BY whole_status, status, substatus_id, sid, day
),
open_cells AS MATERIALIZED (
    SELECT whole_status, status, substatus_id, hour, entries, micros, low, high
    FROM open_day_cells
    UNION ALL
    SELECT whole_status, status, substatus_id, hour, entries, micros, low, high
    FROM open_days
    WHERE low = high
    UNION ALL
    SELECT hours.whole_status, hours.status, hours.substatus_id, hours.hour, hours.entries, hours.micros,
           substatus_stay_bucket(
               date_part('epoch', %(now)s - (hours.hour + interval '1 hour' - interval '1 microsecond'))
           ),
           substatus_stay_bucket(date_part('epoch', %(now)s - hours.hour))
    FROM open_hours AS hours
    JOIN open_days AS days
      ON days.whole_status = hours.whole_status AND days.status = hours.status AND days.sid = hours.sid
     AND days.day = hours.day
    WHERE days.low <> days.high
),
open_split AS (
    SELECT cell.whole_status, cell.status, cell.substatus_id, split.bucket
    FROM open_cells AS cell
    CROSS JOIN LATERAL (
        SELECT substatus_stay_bucket(date_part('epoch', %(now)s - stay.entered_at)) AS bucket
        FROM substatus_stays AS stay
        WHERE stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s AND stay.whole_status = cell.whole_status
          AND stay.status = cell.status AND stay.left_at IS NULL
          AND stay.entered_at >= cell.hour AND stay.entered_at < cell.hour + interval '1 hour'
          AND stay.substatus_id IS NOT DISTINCT FROM cell.substatus_id
        OFFSET 0  -- an index range per hour, not a join of every running stay with every split hour
    ) AS split
    WHERE cell.low <> cell.high
),
open_off AS MATERIALIZED (
    SELECT stay.whole_status, stay.status, stay.substatus_id, true AS fresh,
           date_part('epoch', %(now)s - stay.entered_at) AS seconds
    FROM fresh
    JOIN substatus_stays AS stay
      ON stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s AND stay.record_id = fresh.record_id
    WHERE stay.left_at IS NULL AND stay.entered_at >= %(first_hour)s AND stay.entered_at < %(last_hour)s
    UNION ALL
    SELECT stay.whole_status, stay.status, stay.substatus_id, false, date_part('epoch', %(now)s - stay.entered_at)
    FROM gone
    JOIN substatus_stays AS stay
      ON stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s AND stay.record_id = gone.record_id
    WHERE stay.left_at IS NULL AND stay.entered_at >= %(first_hour)s AND stay.entered_at < %(last_hour)s
      AND gone.record_id NOT IN (SELECT record_id FROM fresh)
),
recounted AS MATERIALIZED (
    SELECT stay.whole_status, stay.status, stay.substatus_id, stay.next_status, stay.seconds, stay.bucket
    FROM substatus_stays AS stay
    WHERE stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s AND stay.left_at IS NOT NULL
      AND stay.entered_at >= %(first_day)s AND stay.entered_at < %(last_day)s
      AND stay.record_id IN (SELECT record_id FROM fresh)
),
counted AS (
    SELECT cell.whole_status, cell.status, cell.substatus_id, cell.next_status, cell.entries,
           cell.entries AS timed, cell.micros
    FROM substatus_stay_counts AS cell
    WHERE cell.tenant_id = %(tenant)s AND cell.entity = %(entity)s AND {cells}
    UNION ALL
    SELECT whole_status, status, substatus_id, next_status, 1, (seconds IS NOT NULL)::integer,
           (seconds * 1000000)::bigint
    FROM raw
    UNION ALL
    SELECT whole_status, status, substatus_id, next_status, -1, -1, -(seconds * 1000000)::bigint
    FROM recounted
    UNION ALL
    SELECT whole_status, status, substatus_id, NULL, entries, entries, entries * %(now_micros)s - micros
    FROM open_cells
    UNION ALL
    SELECT whole_status, status, substatus_id, NULL, CASE WHEN fresh THEN -1 ELSE 0 END, -1,
           -(seconds * 1000000)::bigint
    FROM open_off
),
totals AS MATERIALIZED (
    SELECT whole_status, status, substatus_id, COALESCE(substatus_id, 0) AS sid, sum(entries)::bigint AS entries,
           sum(timed)::bigint AS timed, sum(micros) AS micros, {moves}
    FROM counted
    GROUP BY whole_status, status, substatus_id
    HAVING sum(entries) <> 0
),
bucketed AS (
    SELECT whole_status, status, COALESCE(substatus_id, 0) AS sid, bucket, sum(entries) AS entries
    FROM (
        SELECT cell.whole_status, cell.status, cell.substatus_id, cell.bucket, cell.entries
        FROM substatus_stay_buckets AS cell
        WHERE cell.tenant_id = %(tenant)s AND cell.entity = %(entity)s AND {cells}
        UNION ALL
        SELECT whole_status, status, substatus_id, substatus_stay_bucket(seconds), 1 FROM raw WHERE seconds IS NOT NULL
        UNION ALL
        SELECT whole_status, status, substatus_id, bucket, -1 FROM recounted
        UNION ALL
        SELECT whole_status, status, substatus_id, low, entries FROM open_cells WHERE low = high
        UNION ALL
        SELECT whole_status, status, substatus_id, bucket, 1 FROM open_split
        UNION ALL
        SELECT whole_status, status, substatus_id, substatus_stay_bucket(seconds), -1 FROM open_off
    ) AS cells
    GROUP BY whole_status, status, COALESCE(substatus_id, 0), bucket
    HAVING sum(entries) <> 0
),
spans AS (
    SELECT whole_status, status, sid, bucket, entries,
           sum(entries) OVER (PARTITION BY whole_status, status, sid ORDER BY bucket) - entries AS below
    FROM bucketed
),
ranks AS (
    SELECT totals.whole_status, totals.status, totals.sid, fraction.percentile,
           position.at - floor(position.at) AS proportion, rank.which, rank.rank
    FROM totals
    CROSS JOIN (VALUES (0.5::double precision), (0.9::double precision)) AS fraction (percentile)
    CROSS JOIN LATERAL (SELECT fraction.percentile * (totals.timed - 1)::double precision AS at) AS position
    CROSS JOIN LATERAL (VALUES (1, floor(position.at)::bigint), (2, ceil(position.at)::bigint)) AS rank (which, rank)
    WHERE totals.timed > 0
),
picked AS MATERIALIZED (
    SELECT ranks.*, spans.bucket, ranks.rank - spans.below AS skipped,
           -- the bucket's times, a little widened: the running stays entered from now - most to now - least
           CASE WHEN spans.bucket > 0 THEN exp((spans.bucket - 1) / 23.083120654223414) * 0.999999 - 0.001
                ELSE -1e12 END AS least,
           exp(spans.bucket / 23.083120654223414) * 1.000001 + 0.001 AS most
    FROM ranks
    JOIN spans
      ON spans.whole_status = ranks.whole_status AND spans.status = ranks.status AND spans.sid = ranks.sid
     AND spans.below <= ranks.rank AND ranks.rank < spans.below + spans.entries
),
raw_picked AS MATERIALIZED (
    SELECT raw.whole_status, raw.status, COALESCE(raw.substatus_id, 0) AS sid,
           substatus_stay_bucket(raw.seconds) AS bucket, raw.seconds
    FROM raw
    WHERE (raw.whole_status, raw.status, COALESCE(raw.substatus_id, 0), substatus_stay_bucket(raw.seconds))
          IN (SELECT whole_status, status, sid, bucket FROM picked)
),
sorted AS MATERIALIZED (
    SELECT needed.*, (
        SELECT array_agg(candidate.seconds ORDER BY candidate.seconds)
        FROM (
            SELECT stay.seconds
            FROM substatus_stays AS stay
            WHERE stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s
              AND stay.whole_status = needed.whole_status AND stay.status = needed.status
              AND stay.substatus_id = needed.sid AND stay.bucket = needed.bucket AND stay.left_at IS NOT NULL
              AND stay.entered_at >= %(first_day)s AND stay.entered_at < %(last_day)s
              AND stay.record_id NOT IN (SELECT record_id FROM fresh)
            UNION ALL
            SELECT stay.seconds
            FROM substatus_stays AS stay
            WHERE needed.sid = 0 AND stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s
              AND stay.whole_status = needed.whole_status AND stay.status = needed.status
              AND stay.substatus_id IS NULL AND stay.bucket = needed.bucket AND stay.left_at IS NOT NULL
              AND stay.entered_at >= %(first_day)s AND stay.entered_at < %(last_day)s
              AND stay.record_id NOT IN (SELECT record_id FROM fresh)
            UNION ALL
            SELECT date_part('epoch', %(now)s - stay.entered_at)
            FROM substatus_stays AS stay
            WHERE stay.tenant_id = %(tenant)s AND stay.entity = %(entity)s
              AND stay.whole_status = needed.whole_status AND stay.status = needed.status AND stay.left_at IS NULL
              AND stay.entered_at >= %(first_hour)s AND stay.entered_at < %(last_hour)s
              AND stay.entered_at > %(now)s - needed.most * interval '1 second'
              AND stay.entered_at <= %(now)s - needed.least * interval '1 second'
              AND COALESCE(stay.substatus_id, 0) = needed.sid
              AND substatus_stay_bucket(date_part('epoch', %(now)s - stay.entered_at)) = needed.bucket
              AND stay.record_id NOT IN (SELECT record_id FROM fresh)
              AND stay.record_id NOT IN (SELECT record_id FROM gone)
            UNION ALL
            SELECT raw_picked.seconds
            FROM raw_picked
            WHERE raw_picked.whole_status = needed.whole_status AND raw_picked.status = needed.status
              AND raw_picked.sid = needed.sid AND raw_picked.bucket = needed.bucket
        ) AS candidate
    ) AS seconds
    FROM (SELECT DISTINCT whole_status, status, sid, bucket, least, most FROM picked) AS needed
),
valued AS MATERIALIZED (
    SELECT picked.*, sorted.seconds[picked.skipped + 1] AS seconds
    FROM picked
    JOIN sorted
      ON sorted.whole_status = picked.whole_status AND sorted.status = picked.status AND sorted.sid = picked.sid
     AND sorted.bucket = picked.bucket
),
percentiles AS (
    SELECT first.whole_status, first.status, first.sid, first.percentile,
           round((CASE WHEN second.rank > first.rank
                       THEN first.seconds + (second.seconds - first.seconds) * first.proportion
                       ELSE first.seconds END)::numeric, 3)::double precision AS seconds
    FROM valued AS first
    JOIN valued AS second
      ON second.whole_status = first.whole_status AND second.status = first.status AND second.sid = first.sid
     AND second.percentile = first.percentile AND second.which = 2
    WHERE first.which = 1
)
SELECT totals.whole_status, totals.status, totals.substatus_id, totals.entries,
       round(totals.micros / NULLIF(totals.timed, 0) / 1000000, 3)::double precision AS avg_seconds,
       median.seconds AS median_seconds, p90.seconds AS p90_seconds, {moved}
FROM totals
LEFT JOIN percentiles AS median
       ON median.whole_status = totals.whole_status AND median.status = totals.status AND median.sid = totals.sid
      AND median.percentile = 0.5
LEFT JOIN percentiles AS p90
       ON p90.whole_status = totals.whole_status AND p90.status = totals.status AND p90.sid = totals.sid
      AND p90.percentile = 0.9
"""

# The day and month counts of the whole UTC days from `cells_from` to `cells_to`: whole months
# from `months_from` to `months_to`, days for the rest.
_CELLS = """(
    NOT cell.monthly AND (cell.period >= %(cells_from)s AND cell.period < %(months_from)s
                          OR cell.period >= %(months_to)s AND cell.period < %(cells_to)s)
    OR cell.monthly AND cell.period >= %(months_from)s AND cell.period < %(months_to)s
)"""


def _whole_utc_periods(first: dt.datetime, after_last: dt.datetime) -> dict[str, Any]:
    """The whole UTC hours, days (and the whole UTC months among them) from `first` to `after_last`, as
    parameters of _STATS_SQL; none (everything read stay by stay) for a window shorter than that."""
    first_day = dt.datetime.combine(first.astimezone(dt.UTC).date(), dt.time.min, tzinfo=dt.UTC)
    if first_day < first:
        first_day += dt.timedelta(days=1)
    last_day = dt.datetime.combine(after_last.astimezone(dt.UTC).date(), dt.time.min, tzinfo=dt.UTC)
    if last_day <= first_day:
        first_day = last_day = after_last
    cells_from, cells_to = first_day.date(), last_day.date()
    months_from = (
        cells_from if cells_from.day == 1 else (cells_from.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    )
    months_to = cells_to.replace(day=1)
    if months_from >= months_to:
        months_from = months_to = cells_to
    first_hour = first.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    if first_hour < first:
        first_hour += dt.timedelta(hours=1)
    last_hour = after_last.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    if last_hour <= first_hour:
        first_hour = last_hour = after_last
    return {
        "first_hour": first_hour,
        "last_hour": last_hour,
        "first_day": first_day,
        "last_day": last_day,
        "cells_from": cells_from,
        "cells_to": cells_to,
        "months_from": months_from,
        "months_to": months_to,
    }


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


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# Two years.
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
        # more than running it. Joins of counts are hashed: a merge join sorts a year's hour
        # counts by status text (measured on bench/substatus.py: 1 year 460 -> 330 ms).
        cursor.execute("SET LOCAL work_mem = '64MB'; SET LOCAL jit = off; SET LOCAL enable_mergejoin = off")
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
        moves = ", ".join(
            f"sum(entries) FILTER (WHERE next_status = %(next_{index})s)::bigint AS moved_{index}"
            for index in range(len(nexts))
        )
        moved = ", ".join(f"COALESCE(totals.moved_{index}, 0)" for index in range(len(nexts)))
        params.update({f"next_{index}": status for index, status in enumerate(nexts)})
        params.update(_whole_utc_periods(first, after_last))
        params["now_micros"] = (now - EPOCH) // dt.timedelta(microseconds=1)
        cursor.execute(_STATS_SQL.format(table=table, moves=moves, moved=moved, cells=_CELLS), params)
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
