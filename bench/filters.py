"""The filter language on 1,000,000 contacts (10 tenants of 100,000; `--small`: 10 x 10,000).

A 3-level tree, stage in 2 values AND (address_city = Denver OR created in the last 30 days)
AND NOT is_organization AND tags any_of 2 tags, measured three ways in the same run:

1. the request: GET /api/v1/contacts/?filter=<tree>&page_size=50 through Django's full path
   (token, tenant, catalog, compile, page, count, serializer, JSON, usage queued), against the
   same page and count written by hand and run by psycopg;
2. the SQL the tree compiles to (captured from the ORM, page and count), run by psycopg,
   against the hand-written SQL: what the compiler costs in the database;
3. the request with usage logging on against off (the Redis push after the response).

Goals (issue 12): request p50 <= 3x hand SQL; compiled SQL <= 1.5x hand SQL; logging <= +5%.
Also reported: how fast the beat task writes queued usage (rows per second).
"""

import datetime as dt
import json
import os
import time
import zoneinfo
from urllib.parse import quote

from _common import django_setup, p50, p95, parse_args, progress, result_line, step, time_pair_ms

DATABASE = "ridgeline_bench_filters"
GOALS = {"api": 3.0, "compiled": 1.5, "logging": 1.05}
PAGE_SIZE = 50
WARMUP = 30
TREE = {
    "and": [
        {"field": "stage", "op": "in", "value": ["new", "contacted"]},
        {
            "or": [
                {"field": "address_city", "op": "equals", "value": "Denver"},
                {"field": "created_at", "op": "last_n_days", "value": 30},
            ]
        },
        {"not": {"field": "is_organization", "op": "equals", "value": True}},
        {"field": "tags", "op": "any_of", "value": ["hail", "vip"]},
    ]
}

args = parse_args(__doc__.splitlines()[0], iterations=400, small_iterations=150)
database_url = django_setup(DATABASE)

import _data  # noqa: E402
import psycopg  # noqa: E402
import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from contacts.models import Contact  # noqa: E402
from contacts.serializers import ContactSerializer  # noqa: E402
from crm.actor import Actor  # noqa: E402
from crm.models import AuthToken, Membership, Role, Tenant  # noqa: E402
from filters.services import filter_queryset  # noqa: E402
from filters.usage import usage_flush  # noqa: E402

settings.FILTER_USAGE_QUEUE = f"ridgeline-bench-{os.getpid()}:filter-usage"


def build() -> tuple[_data.SeededTenant, str]:
    size = 10_000 if args.small else 100_000
    _data.seed(0.12)
    with step(f"tenants and members (10 x {size:,} contacts)"):
        tenants = _data.tenants_create([size] * 10)
    done = 0
    with step(f"contacts ({size * 10:,}, set-based)"):
        for tenant in tenants:
            _data.contacts_create(tenant, on_progress=lambda stop, base=done: progress(f"  contacts {base + stop:,}"))
            done += tenant.contacts
    with step("VACUUM ANALYZE"):
        _data.vacuum_analyze("contacts", "tenants", "tenant_users", "users", "filter_configs")
    target = tenants[0]
    owner = Membership.objects.get(tenant_id=target.id, role=Role.OWNER).user
    return target, AuthToken.objects.create(user=owner)[1]


def columns() -> list[str]:
    fields = ContactSerializer().fields
    names = [name for name, field in fields.items() if name != "display_name" and not field.write_only]
    return [Contact._meta.get_field(name).column for name in names]


def hand_sql() -> tuple[str, str]:
    """What a person would write for the tree (the same meaning: Denver in any case, local days)."""
    where = """tenant_id = %(tenant)s AND NOT is_deleted
        AND stage IN ('new', 'contacted')
        AND (upper(address_city) = 'DENVER' OR created_at >= %(since)s)
        AND NOT is_organization
        AND tags && ARRAY['hail', 'vip']::text[]"""
    page = (
        f"SELECT {', '.join(columns())} FROM contacts WHERE {where} "  # noqa: S608 (constants)
        f"ORDER BY created_at DESC, id DESC LIMIT {PAGE_SIZE}"
    )
    return page, f"SELECT count(*) FROM contacts WHERE {where}"  # noqa: S608 (constants)


def compiled_sql(tenant: Tenant, user) -> list[tuple[str, tuple]]:
    """The page and count queries the ORM runs for the tree, captured with their parameters."""
    captured: list[tuple[str, tuple]] = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, tuple(params or ())))
        return execute(sql, params, many, context)

    queryset = filter_queryset(actor=Actor(tenant=tenant, user=user), entity_type="contacts", tree=TREE)
    with connection.execute_wrapper(capture):
        list(queryset.order_by("-created_at", "-id").values_list(*columns())[:PAGE_SIZE])
        queryset.count()
    return captured[-2:]


def main() -> None:
    tenant_seed, token = build()
    tenant = Tenant.objects.get(pk=tenant_seed.id)
    user = Membership.objects.get(tenant=tenant, role=Role.OWNER).user
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}", HTTP_X_TENANT=tenant.subdomain)
    path = f"/api/v1/contacts/?page_size={PAGE_SIZE}&filter={quote(json.dumps(TREE))}"
    queue = redis.Redis.from_url(settings.FILTER_USAGE_REDIS_URL)

    def api() -> None:
        response = client.get(path)
        assert response.status_code == 200, response.content[:500]

    page_sql, count_sql = hand_sql()
    compiled = compiled_sql(tenant, user)
    since = dt_local_days_ago(tenant, 29)
    values = {"tenant": tenant.pk, "since": since}
    with psycopg.connect(database_url, autocommit=True) as raw:

        def hand() -> tuple[list, int]:
            rows = raw.execute(page_sql, values).fetchall()
            return rows, raw.execute(count_sql, values).fetchone()[0]

        def orm_sql() -> tuple[list, int]:
            (page, page_params), (count, count_params) = compiled
            rows = raw.execute(page, page_params).fetchall()
            return rows, raw.execute(count, count_params).fetchone()[0]

        body = client.get(path).json()
        rows, count = hand()
        compiled_rows, compiled_count = orm_sql()
        assert body["count"] == count == compiled_count, (body["count"], count, compiled_count)
        assert [r["id"] for r in body["results"]] == [r[0] for r in rows] == [r[0] for r in compiled_rows]
        progress(f"the tree matches {count:,} of the tenant's {tenant_seed.contacts:,} contacts")

        with step(f"request vs hand SQL ({args.iterations} each)"):
            api_ms, hand_ms = time_pair_ms(api, hand, iterations=args.iterations, warmup=WARMUP)
        with step(f"compiled SQL vs hand SQL ({args.iterations} each)"):
            compiled_ms, hand2_ms = time_pair_ms(orm_sql, hand, iterations=args.iterations, warmup=WARMUP)

    def logging(flag: bool):
        def call() -> None:
            settings.FILTER_USAGE_LOGGING = flag
            api()

        return call

    with step(f"logging on vs off ({args.iterations} each)"):
        on_ms, off_ms = time_pair_ms(logging(True), logging(False), iterations=args.iterations, warmup=WARMUP)
    settings.FILTER_USAGE_LOGGING = True
    queued = queue.llen(settings.FILTER_USAGE_QUEUE)
    with step(f"flushing {queued:,} queued requests"):
        began = time.perf_counter()
        written = usage_flush()
        flush_s = time.perf_counter() - began
    queue.delete(settings.FILTER_USAGE_QUEUE)

    api_ratio = p50(api_ms) / p50(hand_ms)
    compiled_ratio = p50(compiled_ms) / p50(hand2_ms)
    logging_ratio = p50(on_ms) / p50(off_ms)
    print(
        f"10 tenants x {tenant_seed.contacts:,} contacts, the tree matches {count:,}; DEBUG off, load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(f"  request      p50 {p50(api_ms):7.3f} ms  p95 {p95(api_ms):7.3f} ms")
    print(f"  hand SQL     p50 {p50(hand_ms):7.3f} ms  p95 {p95(hand_ms):7.3f} ms   ratio {api_ratio:.2f} (goal <= 3)")
    print(
        f"  compiled SQL p50 {p50(compiled_ms):7.3f} ms  vs hand {p50(hand2_ms):7.3f} ms   "
        f"ratio {compiled_ratio:.2f} (goal <= 1.5)"
    )
    print(
        f"  logging on   p50 {p50(on_ms):7.3f} ms  off {p50(off_ms):7.3f} ms   ratio {logging_ratio:.3f} (goal <= 1.05)"
    )
    print(f"  flush        {written:,} rows in {flush_s:.2f} s ({written / flush_s:,.0f} rows/s)")
    for sql, _ in compiled:
        print(f"    {sql if len(sql) <= 200 else sql[:120] + ' ... ' + sql[-75:]}")
    result_line(
        bench="filters",
        figure=p50(api_ms),
        baseline=p50(hand_ms),
        goal=GOALS["api"],
        p95_ms=p95(api_ms),
        compiled_ms=p50(compiled_ms),
        compiled_baseline_ms=p50(hand2_ms),
        compiled_ratio=round(compiled_ratio, 2),
        logging_on_ms=p50(on_ms),
        logging_off_ms=p50(off_ms),
        logging_ratio=round(logging_ratio, 3),
        flush_rows_per_s=round(written / flush_s),
        matches=count,
        contacts=tenant_seed.contacts * 10,
        iterations=args.iterations,
    )


def dt_local_days_ago(tenant: Tenant, days: int) -> dt.datetime:
    """Local midnight `days` days before today in the tenant's zone (what last_n_days 30 means)."""
    zone = zoneinfo.ZoneInfo(tenant.timezone)
    today = dt.datetime.now(zone).date()
    return dt.datetime.combine(today - dt.timedelta(days=days), dt.time.min, tzinfo=zone)


main()
