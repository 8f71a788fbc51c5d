"""Reads: the filter bar's resolved options, and the usage analytics."""

import datetime as dt
import zoneinfo
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, QuerySet

from crm.models import Membership, Tenant
from filters.fields import ENTITY_MODELS, Kind, field_spec
from filters.models import EntityType, FieldType, FilterConfig, FilterUsageLog
from filters.operators import operators_for

TAG_OPTIONS_LIMIT = 200
TOP = 20


def config_operators(config: FilterConfig) -> list[str]:
    spec = field_spec(config.entity_type, config.field_name)
    return list(operators_for(config.field_type, array=spec is not None and spec.kind == Kind.ARRAY))


class OptionsResolver:
    """Each dynamic option list computed once per response (a list of entries shares them)."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self._cache: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def options(self, config: FilterConfig) -> list[dict[str, Any]]:
        spec = field_spec(config.entity_type, config.field_name)
        if spec is None:
            return list(config.filter_options)
        if config.field_type == FieldType.USER_SELECT:
            return self._cached(("users", ""), self._members)
        if config.field_type == FieldType.TAG_SELECT and spec.kind == Kind.ARRAY:
            return self._cached(("tags", config.entity_type), lambda: self._tags(config.entity_type, spec.path))
        if spec.kind == Kind.SUBSTATUS:
            return self._cached(("substatus", config.entity_type), lambda: self._substatuses(config.entity_type))
        return list(config.filter_options)

    def _cached(self, key: tuple[str, str], compute: Any) -> list[dict[str, Any]]:
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def _members(self) -> list[dict[str, Any]]:
        members = (
            Membership.objects.active()
            .filter(tenant=self.tenant)
            .select_related("user")
            .order_by("user__first_name", "user__last_name", "user__username")
        )
        return [
            {"value": m.user_id, "label": m.user.get_full_name() or m.user.username, "color": None} for m in members
        ]

    def _tags(self, entity_type: str, column: str) -> list[dict[str, Any]]:
        """The tags in use on live rows, most used first."""
        model = ENTITY_MODELS[entity_type]
        table = model._meta.db_table
        deleted = " AND NOT is_deleted" if any(f.name == "is_deleted" for f in model._meta.fields) else ""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT tag, count(*) AS uses FROM {table}, unnest({column}) AS tag "  # noqa: S608 (model names)
                f"WHERE tenant_id = %s{deleted} GROUP BY tag ORDER BY uses DESC, tag LIMIT %s",
                [self.tenant.pk, TAG_OPTIONS_LIMIT],
            )
            return [{"value": tag, "label": tag, "color": None, "count": uses} for tag, uses in cursor.fetchall()]

    def _substatuses(self, entity_type: str) -> list[dict[str, Any]]:
        model = ENTITY_MODELS[entity_type]
        substatus_model = model._meta.get_field("substatus").related_model
        entity = "contact" if entity_type == EntityType.CONTACTS else "project"
        rows = (
            substatus_model._default_manager.filter(tenant=self.tenant, entity=entity, is_active=True)  # type: ignore[union-attr]
            .order_by("status", "position")
            .values("id", "label", "color", "status")
        )
        return [{"value": r["id"], "label": r["label"], "color": r["color"], "status": r["status"]} for r in rows]


# Usage analytics ---------------------------------------------------------------------------


class Percentile(Aggregate):
    function = "percentile_cont"
    template = "%(function)s(0.95) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


def usage_analytics(
    *, tenant: Tenant, start: dt.date, end: dt.date, entity_type: str | None, user_id: int | None
) -> dict[str, Any]:
    """Usage between the local days `start` and `end` (inclusive); `user_id` limits it to one user's."""
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    since = dt.datetime.combine(start, dt.time.min, tzinfo=zone)
    until = dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    logs: QuerySet[FilterUsageLog] = FilterUsageLog.objects.filter(tenant=tenant, used_at__gte=since, used_at__lt=until)
    configs = FilterConfig.objects.filter(tenant=tenant, is_active=True)
    if entity_type:
        logs = logs.filter(entity_type=entity_type)
        configs = configs.filter(entity_type=entity_type)
    if user_id is not None:
        logs = logs.filter(user_id=user_id)

    fields = list(
        logs.values("entity_type", "filter_field")
        .annotate(uses=Count("id"), requests=Count("request_id", distinct=True), users=Count("user", distinct=True))
        .order_by("-uses", "entity_type", "filter_field")[:TOP]
    )
    saved = list(
        logs.filter(saved_filter__isnull=False)
        .values("saved_filter", name=F("saved_filter__name"), saved_entity=F("saved_filter__entity_type"))
        .annotate(uses=Count("request_id", distinct=True))
        .order_by("-uses", "name")[:TOP]
    )
    used_configs = logs.filter(filter_config__isnull=False).values("filter_config")
    unused = list(
        configs.exclude(pk__in=used_configs)
        .order_by("entity_type", "display_order", "id")
        .values("id", "entity_type", "field_name", "field_label")
    )
    slowest = list(
        logs.values("entity_type", "filter_field")
        .annotate(p95_ms=Percentile("duration_ms"), uses=Count("id"))
        .order_by("-p95_ms", "entity_type", "filter_field")[:TOP]
    )
    users = list(
        logs.filter(user__isnull=False)
        .values("user", username=F("user__username"))
        .annotate(requests=Count("request_id", distinct=True), conditions=Count("id"))
        .order_by("-requests", "username")
    )
    return {
        "from": start,
        "to": end,
        "timezone": tenant.timezone,
        "entity_type": entity_type,
        "requests": logs.aggregate(n=Count("request_id", distinct=True))["n"],
        "fields": [
            {
                "entity_type": r["entity_type"],
                "field": r["filter_field"],
                "uses": r["uses"],
                "requests": r["requests"],
                "users": r["users"],
            }
            for r in fields
        ],
        "saved_filters": [
            {"id": r["saved_filter"], "name": r["name"], "entity_type": r["saved_entity"], "uses": r["uses"]}
            for r in saved
        ],
        "unused_fields": [
            {"id": r["id"], "entity_type": r["entity_type"], "field": r["field_name"], "label": r["field_label"]}
            for r in unused
        ],
        "slowest": [
            {
                "entity_type": r["entity_type"],
                "field": r["filter_field"],
                "p95_ms": round(r["p95_ms"], 3),
                "uses": r["uses"],
            }
            for r in slowest
        ],
        "users": [
            {"user": r["user"], "username": r["username"], "requests": r["requests"], "conditions": r["conditions"]}
            for r in users
        ],
    }
