"""Filter usage analytics: recorded after the response, written in batches.

A filtered list request pushes one JSON entry (its conditions, result count and duration)
to a Redis list: one round trip, no database write on the request's path. Beat's flush task
pops the list in batches and bulk-inserts one `FilterUsageLog` row per condition, counting
each saved filter's uses in the same transaction.
"""

import datetime as dt
import json
import logging
import uuid
from collections import Counter
from functools import cache
from typing import Any, TypedDict, cast

import redis
from django.conf import settings
from django.db import models, transaction
from django.db.models import Case, F, IntegerField, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from crm.models import Tenant, User
from filters.language import Condition
from filters.models import FilterConfig, FilterUsageLog, SavedFilter

logger = logging.getLogger(__name__)

FLUSH_BATCH = 5000


class UsageEntry(TypedDict):
    """One filtered list request, as queued."""

    request_id: str
    tenant_id: int
    user_id: int | None
    entity_type: str
    saved_filter_id: int | None
    results_count: int
    duration_ms: float
    used_at: str
    conditions: list[dict[str, Any]]


@cache
def _redis() -> redis.Redis:
    # Bounded, so that a Redis that does not answer delays a filtered list by seconds at most.
    return redis.Redis.from_url(settings.FILTER_USAGE_REDIS_URL, **settings.REDIS_OPTIONS)


def usage_entry(
    *,
    tenant_id: int,
    user_id: int | None,
    entity_type: str,
    saved_filter_id: int | None,
    conditions: list[Condition],
    results_count: int,
    duration_ms: float,
    used_at: dt.datetime,
) -> UsageEntry:
    return {
        "request_id": str(uuid.uuid4()),
        "tenant_id": tenant_id,
        "user_id": user_id,
        "entity_type": entity_type,
        "saved_filter_id": saved_filter_id,
        "results_count": results_count,
        "duration_ms": round(duration_ms, 3),
        "used_at": used_at.isoformat(),
        "conditions": [{"field": c.field, "op": c.op, "value": c.value, "config_id": c.config_id} for c in conditions],
    }


def usage_push(entry: UsageEntry) -> None:
    """Queue one request's usage; a Redis failure is logged, never the request's problem."""
    try:
        _redis().rpush(settings.FILTER_USAGE_QUEUE, json.dumps(entry))
    except redis.RedisError:
        logger.warning("filter usage not queued: Redis refused", exc_info=True)


def usage_flush(*, batch: int = FLUSH_BATCH) -> int:
    """Write what is queued (in batches) as usage rows; returns how many rows were written.

    Rows naming a tenant that is gone are dropped; a user, catalog entry or saved filter
    that is gone becomes NULL, as the foreign keys' ON DELETE would have made it.
    """
    written = 0
    while True:
        raw = _redis().lpop(settings.FILTER_USAGE_QUEUE, batch)
        if not raw:
            return written
        entries: list[UsageEntry] = [json.loads(item) for item in cast(list[bytes], raw)]
        written += _write(entries)
        if len(entries) < batch:
            return written


def _existing(model: type[models.Model], ids: set[int]) -> set[int]:
    return set(model._default_manager.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()


def _write(entries: list[UsageEntry]) -> int:
    tenants = _existing(Tenant, {e["tenant_id"] for e in entries})
    users = _existing(User, {e["user_id"] for e in entries if e["user_id"]})
    configs = _existing(FilterConfig, {c["config_id"] for e in entries for c in e["conditions"]})
    saved = _existing(SavedFilter, {e["saved_filter_id"] for e in entries if e["saved_filter_id"]})
    rows = []
    uses: Counter[int] = Counter()
    last_used: dict[int, dt.datetime] = {}
    for entry in entries:
        if entry["tenant_id"] not in tenants:
            continue
        used_at = dt.datetime.fromisoformat(entry["used_at"])
        saved_id = entry["saved_filter_id"] if entry["saved_filter_id"] in saved else None
        if saved_id is not None:
            uses[saved_id] += 1
            last_used[saved_id] = max(used_at, last_used.get(saved_id, used_at))
        for condition in entry["conditions"]:
            rows.append(
                FilterUsageLog(
                    request_id=entry["request_id"],
                    tenant_id=entry["tenant_id"],
                    user_id=entry["user_id"] if entry["user_id"] in users else None,
                    entity_type=entry["entity_type"],
                    filter_field=condition["field"],
                    operator=condition["op"],
                    filter_value=condition["value"],
                    results_count=entry["results_count"],
                    duration_ms=entry["duration_ms"],
                    used_at=used_at,
                    filter_config_id=condition["config_id"] if condition["config_id"] in configs else None,
                    saved_filter_id=saved_id,
                )
            )
    with transaction.atomic():
        FilterUsageLog.objects.bulk_create(rows, batch_size=1000)
        if uses:
            SavedFilter.objects.filter(pk__in=list(uses)).update(
                usage_count=F("usage_count")
                + Case(*(When(pk=pk, then=Value(n)) for pk, n in uses.items()), output_field=IntegerField()),
                last_used_at=Greatest(
                    F("last_used_at"),
                    Case(*(When(pk=pk, then=Value(when)) for pk, when in last_used.items())),
                ),
            )
    return len(rows)


def usage_prune(*, now: dt.datetime | None = None) -> int:
    """Delete usage rows older than FILTER_USAGE_RETENTION_DAYS; returns how many."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=settings.FILTER_USAGE_RETENTION_DAYS)
    deleted, _ = FilterUsageLog.objects.filter(used_at__lt=cutoff).delete()
    return deleted
