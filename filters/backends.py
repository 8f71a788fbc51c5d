"""`?filter=<json>` and `?saved_filter=<id>` on every list view that names a `filter_entity`.

Listed in REST_FRAMEWORK's DEFAULT_FILTER_BACKENDS (the wiring), so the core's views reach the
filter language without importing this app; the core's `TenantScopedViewSet.list()` calls
`list_served()` after building the page, where the use is queued for the usage analytics.
"""

import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request
from rest_framework.response import Response

from crm.request import TenantRequest
from filters.language import Condition, FilterError
from filters.services import filter_compile, saved_filter_for_apply
from filters.usage import usage_entry, usage_push

MAX_FILTER_PARAMETER = 20_000  # characters of URL-decoded JSON

FILTER_DESCRIPTION = (
    'A filter tree as URL-encoded JSON: a condition `{"field", "op", "value"}` or a group '
    '`{"and": [...]}`, `{"or": [...]}`, `{"not": {...}}` over the fields of '
    '`/api/v1/filter-configs/?entity_type=`; the old flat format `{field: {"operator", "value"}}` '
    "is accepted. `not_equals`, `not_in`, `none_of` and `not_contains` also match rows where the "
    "value is empty. AND-ed with the other parameters and `?search=`."
)
SAVED_FILTER_DESCRIPTION = (
    "The id of a saved filter you can see (yours or a shared one); a stale or deactivated one is a "
    "409. AND-ed with `?filter=` and the other parameters."
)


@dataclass
class _Use:
    entity_type: str
    saved_filter_id: int | None
    conditions: list[Condition]
    started: float


class FilterTreeBackend(BaseFilterBackend):
    def filter_queryset(self, request: Request, queryset: QuerySet, view: Any) -> QuerySet:
        entity_type = getattr(view, "filter_entity", None)
        if entity_type is None or getattr(view, "action", None) != "list":
            return queryset
        raw = request.query_params.get("filter")
        saved_id = request.query_params.get("saved_filter")
        if not raw and not saved_id:
            return queryset
        tenant_request: TenantRequest = request  # type: ignore[assignment]  # after TenantMixin.initial
        actor = tenant_request.actor
        started = time.perf_counter()
        conditions: list[Condition] = []
        saved = None
        if saved_id:
            saved = saved_filter_for_apply(
                actor=actor, role=tenant_request.membership.role_enum, saved_filter_id=saved_id, entity_type=entity_type
            )
            compiled = filter_compile(actor=actor, entity_type=saved.entity_type, tree=saved.filter_criteria)
            queryset = queryset.filter(compiled.q)
            conditions += compiled.conditions
        if raw:
            compiled = filter_compile(actor=actor, entity_type=entity_type, tree=_parse(raw))
            queryset = queryset.filter(compiled.q)
            conditions += compiled.conditions
        request.filter_use = _Use(  # type: ignore[attr-defined]
            entity_type=saved.entity_type if saved and not raw else entity_type,
            saved_filter_id=saved.pk if saved else None,
            conditions=conditions,
            started=started,
        )
        return queryset

    def list_served(self, request: Request, view: Any, response: Response) -> None:
        use: _Use | None = getattr(request, "filter_use", None)
        if use is None or not settings.FILTER_USAGE_LOGGING or response.status_code != 200:
            return
        data = response.data if isinstance(response.data, dict) else {}
        tenant_request: TenantRequest = request  # type: ignore[assignment]
        usage_push(
            usage_entry(
                tenant_id=tenant_request.tenant.pk,
                user_id=tenant_request.actor.user.pk if tenant_request.actor.user else None,
                entity_type=use.entity_type,
                saved_filter_id=use.saved_filter_id,
                conditions=use.conditions,
                results_count=int(data.get("count", 0)),
                duration_ms=(time.perf_counter() - use.started) * 1000,
                used_at=timezone.now(),
            )
        )

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        if getattr(view, "filter_entity", None) is None:
            return []
        return [
            {
                "name": "filter",
                "required": False,
                "in": "query",
                "description": FILTER_DESCRIPTION,
                "schema": {"type": "string"},
            },
            {
                "name": "saved_filter",
                "required": False,
                "in": "query",
                "description": SAVED_FILTER_DESCRIPTION,
                "schema": {"type": "integer"},
            },
        ]


def _parse(raw: str) -> Any:
    if len(raw) > MAX_FILTER_PARAMETER:
        raise FilterError(f"filter: longer than {MAX_FILTER_PARAMETER} characters", attr="filter")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise FilterError(f"filter: not valid JSON ({exc.msg} at character {exc.pos})", attr="filter") from None
