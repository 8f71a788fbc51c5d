"""Writes to substatus configurations, and the automatic transitions of records.

Records (contacts, projects) get and change their substatus through their own services and
the database triggers (substatus/triggers.py); nothing here second-guesses those rules.
"""

import logging
import time
from datetime import datetime, timedelta
from typing import TypedDict, Unpack, cast

from django.db import IntegrityError, OperationalError, connection, models, transaction
from django.db.models import Case, Max, Value, When
from django.db.models.functions import Now
from django.utils import timezone
from psycopg.errors import LockNotAvailable

from crm.actor import Actor, Source
from crm.constraints import constraint_error, constraint_violation
from crm.errors import ApplicationError, Conflict
from crm.records import record_assign, record_check_links, record_save
from substatus.models import RECORD_MODELS, SubstatusConfig, SubstatusStaysWatermark

logger = logging.getLogger(__name__)

WRITABLE_FIELDS = frozenset(
    {
        "entity",
        "status",
        "key",
        "label",
        "description",
        "color",
        "icon",
        "position",
        "is_default",
        "is_terminal",
        "auto_transition_to",
        "auto_transition_delay_hours",
        "is_active",
    }
)


class SubstatusFields(TypedDict, total=False):
    """WRITABLE_FIELDS (a test keeps them equal), for substatus_create and substatus_update.

    An update may repeat `entity` and `status` (a full PUT does) but not change them.
    """

    entity: str
    status: str
    key: str
    label: str
    description: str
    color: str
    icon: str
    position: int
    is_default: bool
    is_terminal: bool
    auto_transition_to: SubstatusConfig | None
    auto_transition_delay_hours: int | None
    is_active: bool


def _group(config: SubstatusConfig) -> models.QuerySet[SubstatusConfig]:
    """The substatuses sharing `config`'s tenant, entity and status."""
    return SubstatusConfig.objects.filter(tenant_id=config.tenant_id, entity=config.entity, status=config.status)


def _check(config: SubstatusConfig, fields: SubstatusFields) -> None:
    """The rules the database cannot see; it holds every other one (a status of the entity,
    the automatic transition's target and delay, an active default, a fixed parent), with the
    messages `substatus.apps` gives them.

    A default cleared is refused here, before the write: the database sees that rule only at
    the commit (`substatus_configs_default_required`), after the service's transaction.
    """
    record_check_links(config, fields)
    if config.is_default and fields.get("is_default") is False:
        raise cast(ApplicationError, constraint_error("substatus_configs_default_required"))


def _save(config: SubstatusConfig, *, actor: Actor, changed: list[str] | None) -> SubstatusConfig:
    """Save, taking the default from the status's current one in the same transaction."""
    with actor.atomic():
        if config.is_default and (changed is None or "is_default" in changed):
            # Lock the status's substatuses (in pk order) so two switches cannot race, then
            # clear the old default first: the one-default index is checked row by row.
            list(_group(config).select_for_update().order_by("pk").values_list("pk", flat=True))
            _group(config).filter(is_default=True).exclude(pk=config.pk).update(is_default=False, updated_at=Now())
        return record_save(config, actor=actor, update_fields=changed)


def substatus_create(*, actor: Actor, **fields: Unpack[SubstatusFields]) -> SubstatusConfig:
    config = SubstatusConfig(tenant=actor.require_tenant(), created_by=actor.user)
    _check(config, fields)
    record_assign(config, fields, allowed=WRITABLE_FIELDS)
    if "position" not in fields:
        last = _group(config).aggregate(last=Max("position"))["last"]
        config.position = 0 if last is None else last + 1
    if not _group(config).exists():  # a status's first substatus is its default (rule 5 of triggers.py)
        config.is_default = True
    return _save(config, actor=actor, changed=None)


def substatus_update(*, substatus: SubstatusConfig, actor: Actor, **fields: Unpack[SubstatusFields]) -> SubstatusConfig:
    """Change a substatus; `is_default=True` makes it its status's default in one switch.

    Its `entity` and `status` stay what they are (the database refuses a move).
    """
    _check(substatus, fields)
    changed = record_assign(substatus, fields, allowed=WRITABLE_FIELDS)
    return _save(substatus, actor=actor, changed=[*changed, "updated_at"])


def substatus_reorder(*, actor: Actor, ids: list[int]) -> list[SubstatusConfig]:
    """Put every substatus of one status in the given order (all of them, each once)."""
    tenant = actor.require_tenant()
    if len(set(ids)) != len(ids):
        raise ApplicationError("Each substatus appears once in the order.", code="duplicate", attr="ids")
    with actor.atomic():
        found = {
            config.pk: config
            for config in SubstatusConfig.objects.filter(tenant=tenant, pk__in=ids).select_for_update().order_by("pk")
        }
        unknown = [pk for pk in ids if pk not in found]
        if unknown:
            raise ApplicationError(f"Unknown substatus id(s): {unknown}.", code="does_not_exist", attr="ids")
        groups = {(config.entity, config.status) for config in found.values()}
        if len(groups) > 1:
            raise ApplicationError(
                "Reorder the substatuses of one status at a time.", code="several_statuses", attr="ids"
            )
        group = _group(next(iter(found.values())))
        missing = sorted(set(group.values_list("pk", flat=True)) - set(ids))
        if missing:
            raise ApplicationError(
                f"List every substatus of this status; missing: {missing}.", code="incomplete", attr="ids"
            )
        group.update(
            position=Case(*(When(pk=pk, then=Value(position)) for position, pk in enumerate(ids))),
            updated_at=Now(),
        )
    return list(group.order_by("position", "pk"))


def substatus_delete(*, substatus: SubstatusConfig, actor: Actor) -> None:
    """Delete a substatus nothing uses; one in use is a 409 saying what uses it."""
    if substatus.is_default:
        raise Conflict("This is its status's default substatus: make another one the default first.", code="is_default")
    model = RECORD_MODELS[substatus.entity]
    records = model._default_manager.filter(substatus=substatus).count()
    if records:
        noun = model._meta.verbose_name if records == 1 else model._meta.verbose_name_plural
        raise Conflict(
            f"{records} {noun} use this substatus: move them to another one, or deactivate it instead.",
            code="in_use",
        )
    sources = list(substatus.auto_transitions_from.values_list("label", flat=True))
    if sources:
        raise Conflict(
            f"Substatuses transition automatically to this one ({', '.join(sources)}): change them first.",
            code="in_use",
        )
    try:
        with actor.atomic():
            substatus.delete()
    except IntegrityError as exc:
        refused = constraint_violation(exc)  # the database keeps substatuses that records have been in
        if refused.code == "integrity_error":  # a record took it meanwhile
            raise Conflict("This substatus came into use meanwhile: deactivate it instead.", code="in_use") from exc
        raise refused from exc


# Automatic transitions -----------------------------------------------------------------


def substatus_auto_transition(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Move every record that has sat in a substatus longer than its automatic transition's delay.

    Runs each active rule whose target is active, in batches under `skip_locked` row locks,
    through the records' own UPDATE (so the triggers check the target and write history with
    source `task` and the reason). Running it again moves only what is still due; a terminal
    substatus never has a rule (a database constraint). Returns how many records moved.
    """
    now = now or timezone.now()
    rules = (
        SubstatusConfig.objects.filter(auto_transition_to__isnull=False, is_active=True)
        .filter(auto_transition_to__is_active=True)
        .select_related("tenant", "auto_transition_to")
        .order_by("tenant_id", "pk")
    )
    moved = 0
    for rule in rules:
        try:
            moved += _auto_transition_rule(rule, now=now, batch_size=batch_size)
        except IntegrityError:  # the rule changed under us (e.g. its target was just deactivated)
            logger.warning("Automatic transition of substatus %s skipped until the next run", rule.pk, exc_info=True)
    return moved


def _auto_transition_rule(rule: SubstatusConfig, *, now: datetime, batch_size: int) -> int:
    hours = cast(int, rule.auto_transition_delay_hours)  # a database constraint pairs a target with a delay
    model = RECORD_MODELS[rule.entity]
    actor = Actor(tenant=rule.tenant, user=None, source=Source.TASK)
    reason = f"auto-transition after {hours} h"
    due = model._default_manager.filter(
        tenant_id=rule.tenant_id,
        substatus=rule,
        substatus_since__lte=now - timedelta(hours=hours),
    ).order_by("pk")
    moved = 0
    while True:
        with actor.atomic(reason=reason):
            batch = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:batch_size])
            if not batch:
                return moved
            moved += model._default_manager.filter(pk__in=batch, substatus=rule).update(
                substatus=rule.auto_transition_to, updated_at=Now()
            )


# Stays rolled up for the analytics ---------------------------------------------------------

# The stays of every record with history rows after the old watermark, recomputed from all its
# rows up to the new one (a row may be back-dated among older ones). The same stays as
# substatus.selectors._STATS_SQL computes from the history: each row is an entry into its
# substatus lasting until the record's next row; each row changing the status is an entry into
# the status lasting until the next such row. The finished stays removed (-1) and written (+1)
# are noted in substatus_stays_delta, then added to their day's and month's counts.
_STAYS_TOUCHED_SQL = """
CREATE TEMPORARY TABLE substatus_stays_touched AS
SELECT DISTINCT tenant_id, entity, record_id FROM substatus_history WHERE id > %(after)s AND id <= %(upto)s
"""

# `micros`: a finished stay's time, or a running stay's entry instant (epoch microseconds).
_STAYS_DELTA_SQL = """
CREATE TEMPORARY TABLE substatus_stays_delta (
    sign integer, tenant_id bigint, entity varchar(20), whole_status boolean, status varchar(20),
    substatus_id bigint, next_status varchar(20), entered_at timestamptz, finished boolean, bucket integer,
    micros bigint
)
"""

_STAYS_DELTA_MICROS = """CASE WHEN left_at IS NOT NULL THEN (seconds * 1000000)::bigint
            ELSE (extract(epoch FROM entered_at) * 1000000)::bigint END"""

_STAYS_DELETE_SQL = f"""
WITH gone AS (
    DELETE FROM substatus_stays AS stay USING substatus_stays_touched AS touched
    WHERE stay.tenant_id = touched.tenant_id AND stay.entity = touched.entity AND stay.record_id = touched.record_id
    RETURNING stay.*
)
INSERT INTO substatus_stays_delta
SELECT -1, tenant_id, entity, whole_status, status, substatus_id, next_status, entered_at, left_at IS NOT NULL,
       bucket, {_STAYS_DELTA_MICROS}
FROM gone
"""  # noqa: S608 (constants only)

_STAYS_INSERT_SQL = f"""
WITH changes AS (
    SELECT history.id, history.tenant_id, history.entity, history.record_id, history.from_status,
           history.to_status, history.to_substatus_id, history.changed_at,
           lead(history.changed_at) OVER by_record AS next_changed_at,
           lead(history.to_status) OVER by_record AS next_status
    FROM substatus_history AS history
    JOIN substatus_stays_touched AS touched
      ON touched.tenant_id = history.tenant_id AND touched.entity = history.entity
     AND touched.record_id = history.record_id
    WHERE history.id <= %(upto)s
    WINDOW by_record AS (
        PARTITION BY history.tenant_id, history.entity, history.record_id ORDER BY history.changed_at, history.id
    )
),
status_entries AS (
    SELECT id, tenant_id, entity, record_id, to_status, changed_at,
           lead(changed_at) OVER by_record AS next_changed_at,
           lead(to_status) OVER by_record AS next_status
    FROM changes
    WHERE from_status IS DISTINCT FROM to_status
    WINDOW by_record AS (PARTITION BY tenant_id, entity, record_id ORDER BY changed_at, id)
),
stays AS (
    SELECT tenant_id, entity, record_id, id, false AS whole_status, to_status, to_substatus_id, changed_at,
           next_changed_at, date_part('epoch', next_changed_at - changed_at) AS seconds, next_status
    FROM changes
    UNION ALL
    SELECT tenant_id, entity, record_id, id, true, to_status, NULL, changed_at, next_changed_at,
           date_part('epoch', next_changed_at - changed_at), next_status
    FROM status_entries
),
written AS (
    INSERT INTO substatus_stays (tenant_id, entity, record_id, history_id, whole_status, status, substatus_id,
                                 entered_at, left_at, seconds, next_status, bucket)
    SELECT *, substatus_stay_bucket(seconds) FROM stays
    RETURNING *
)
INSERT INTO substatus_stays_delta
SELECT 1, tenant_id, entity, whole_status, status, substatus_id, next_status, entered_at, left_at IS NOT NULL,
       bucket, {_STAYS_DELTA_MICROS}
FROM written
"""  # noqa: S608 (constants only)

# Each stay counts in its UTC day and in its UTC month (substatus.models.SubstatusStayCount).
_STAYS_PERIODS = """
CROSS JOIN LATERAL (
    VALUES (false, (delta.entered_at AT TIME ZONE 'UTC')::date),
           (true, date_trunc('month', delta.entered_at AT TIME ZONE 'UTC')::date)
) AS period (monthly, period)
"""

_STAYS_COUNT_SQL = f"""
INSERT INTO substatus_stay_counts AS cell (tenant_id, entity, monthly, period, whole_status, status, substatus_id,
                                           next_status, entries, micros)
SELECT delta.tenant_id, delta.entity, period.monthly, period.period, delta.whole_status, delta.status,
       delta.substatus_id, delta.next_status, sum(delta.sign), sum(delta.sign * delta.micros)
FROM substatus_stays_delta AS delta
{_STAYS_PERIODS}
WHERE delta.finished
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
ON CONFLICT (tenant_id, entity, monthly, period, whole_status, status, substatus_id, next_status)
DO UPDATE SET entries = cell.entries + excluded.entries, micros = cell.micros + excluded.micros
"""  # noqa: S608 (constants only)

_STAYS_BUCKET_SQL = f"""
INSERT INTO substatus_stay_buckets AS cell (tenant_id, entity, monthly, period, whole_status, status, substatus_id,
                                            bucket, entries)
SELECT delta.tenant_id, delta.entity, period.monthly, period.period, delta.whole_status, delta.status,
       delta.substatus_id, delta.bucket, sum(delta.sign)
FROM substatus_stays_delta AS delta
{_STAYS_PERIODS}
WHERE delta.finished
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
ON CONFLICT (tenant_id, entity, monthly, period, whole_status, status, substatus_id, bucket)
DO UPDATE SET entries = cell.entries + excluded.entries
"""  # noqa: S608 (constants only)

# Stays still running, per UTC hour of their entry (substatus.models.SubstatusOpenStayCount).
_STAYS_OPEN_SQL = """
INSERT INTO substatus_open_stay_counts AS cell (tenant_id, entity, hour, whole_status, status, substatus_id,
                                                entries, micros)
SELECT tenant_id, entity, date_trunc('hour', entered_at, 'UTC'), whole_status, status, substatus_id, sum(sign),
       sum(sign * micros)
FROM substatus_stays_delta
WHERE NOT finished
GROUP BY 1, 2, 3, 4, 5, 6
ON CONFLICT (tenant_id, entity, hour, whole_status, status, substatus_id)
DO UPDATE SET entries = cell.entries + excluded.entries, micros = cell.micros + excluded.micros
"""

# And per UTC day of their entry (substatus.models.SubstatusOpenStayDayCount): the same deltas.
_STAYS_OPEN_DAY_SQL = """
INSERT INTO substatus_open_stay_day_counts AS cell (tenant_id, entity, day, whole_status, status, substatus_id,
                                                    entries, micros)
SELECT tenant_id, entity, (entered_at AT TIME ZONE 'UTC')::date, whole_status, status, substatus_id, sum(sign),
       sum(sign * micros)
FROM substatus_stays_delta
WHERE NOT finished
GROUP BY 1, 2, 3, 4, 5, 6
ON CONFLICT (tenant_id, entity, day, whole_status, status, substatus_id)
DO UPDATE SET entries = cell.entries + excluded.entries, micros = cell.micros + excluded.micros
"""

# A stay recomputed alike leaves a count at zero: a cell with no stay is no row.
_STAYS_EMPTY_SQL = """
DELETE FROM substatus_stay_counts WHERE entries = 0;
DELETE FROM substatus_stay_buckets WHERE entries = 0;
DELETE FROM substatus_open_stay_counts WHERE entries = 0;
DELETE FROM substatus_open_stay_day_counts WHERE entries = 0
"""


def _history_committed_up_to(*, attempts: int, pause: float) -> int | None:
    """The newest history id such that every row up to it is committed (None: writes kept coming).

    Ids are taken when a row is inserted but show when its transaction commits, so a plain
    max(id) could pass over a row that commits later. Under a SHARE lock no transaction is
    writing the history; the lock is only tried (NOWAIT), so no writer ever waits for it.
    """
    for _ in range(attempts):
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("LOCK TABLE substatus_history IN SHARE MODE NOWAIT")
                cursor.execute("SELECT COALESCE(max(id), 0) FROM substatus_history")
                return cast(int, cursor.fetchone()[0])
        except OperationalError as error:
            if not isinstance(error.__cause__, LockNotAvailable):
                raise
            time.sleep(pause)  # a transaction is writing history right now
    return None


def substatus_stays_refresh(*, attempts: int = 50, pause: float = 0.1) -> int | None:
    """Roll the history up into `substatus_stays` and its day and month counts, from the watermark to the
    newest committed row.

    Incremental and idempotent: only the records with new history rows are recomputed (all their
    stays, so a back-dated row lands where it belongs), and the watermark moves in the same
    transaction; concurrent runs queue on the watermark's row lock. Returns how many records were
    recomputed, or None when writes to the history never paused (the next run catches up; the
    analytics read what is not rolled up from the history meanwhile).
    """
    upto = _history_committed_up_to(attempts=attempts, pause=pause)
    if upto is None:
        logger.info("Substatus stays not refreshed: the history was being written throughout")
        return None
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("INSERT INTO substatus_stays_watermark (id, history_id) VALUES (1, 0) ON CONFLICT DO NOTHING")
        after = SubstatusStaysWatermark.objects.select_for_update().get(pk=1).history_id
        if after >= upto:
            return 0
        cursor.execute("SET LOCAL work_mem = '64MB'")
        if after == 0:  # nothing is rolled up (a first run, or a watermark removed to roll up again)
            cursor.execute(
                "DELETE FROM substatus_stays; DELETE FROM substatus_stay_counts; DELETE FROM substatus_stay_buckets; "
                "DELETE FROM substatus_open_stay_counts; DELETE FROM substatus_open_stay_day_counts"
            )
        params = {"after": after, "upto": upto}
        cursor.execute(_STAYS_TOUCHED_SQL, params)
        touched = cursor.rowcount
        cursor.execute(_STAYS_DELTA_SQL)
        cursor.execute(_STAYS_DELETE_SQL, params)
        cursor.execute(_STAYS_INSERT_SQL, params)
        cursor.execute(_STAYS_COUNT_SQL)
        cursor.execute(_STAYS_BUCKET_SQL)
        cursor.execute(_STAYS_OPEN_SQL)
        cursor.execute(_STAYS_OPEN_DAY_SQL)
        cursor.execute(_STAYS_EMPTY_SQL)
        cursor.execute("DROP TABLE substatus_stays_touched, substatus_stays_delta")
        SubstatusStaysWatermark.objects.filter(pk=1).update(history_id=upto, refreshed_at=timezone.now())
    return touched
