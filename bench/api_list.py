"""GET /api/v1/contacts/?page_size=50 through Django's full request path, against raw psycopg.

Builds a tenant of 100,000 contacts and 9 tenants of 10,000 (`--small`: 10,000 and 9 x 1,000),
then times the first page of the big tenant's contacts (count and default ordering) the way a
client gets it: token auth, X-Tenant, middleware, tenant resolution, filters, ordering, count,
serializer and JSON rendering. The baseline is the same two queries (the page's rows with the
serializer's columns, and the count) run by psycopg on its own connection. The same again for
`?search=smith` (the prefix tsquery the API builds, on the generated `search` column).

The requests run as the application's database role (DATABASE_APP_ROLE, as `make run` starts
the app), under row-level security (issue 17); the raw baseline runs as the owner, without it.

Goal (issue 3): Django's p50 at most 8 times the raw p50.
"""

import os
import statistics
import time
from urllib.parse import urlencode

from _common import django_setup, p50, p95, parse_args, progress, result_line, step, time_pair_ms

DATABASE = "ridgeline_bench_api_list"
GOAL = 8
PAGE_SIZE = 50
SEARCH = "smith"
SEARCH_TSQUERY = "smith:*"  # the prefix query the API builds for ?search=smith (measure() checks the rows agree)
WARMUP = 30

args = parse_args(__doc__.splitlines()[0], iterations=600, small_iterations=200)
database_url = django_setup(DATABASE)

# Django is set up only now, so these imports come after it.
import _data  # noqa: E402
import psycopg  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from contacts.models import Contact  # noqa: E402
from contacts.serializers import ContactSerializer  # noqa: E402
from crm.models import AuthToken, Membership, Role  # noqa: E402


def build() -> tuple[_data.SeededTenant, str]:
    """The tenants and their contacts; returns the big tenant and the token of its owner."""
    big, other = (10_000, 1_000) if args.small else (100_000, 10_000)
    _data.seed(0.42)
    with step(f"tenants and members (1 x {big:,} contacts, 9 x {other:,})"):
        tenants = _data.tenants_create([big] + [other] * 9)
    total = sum(tenant.contacts for tenant in tenants)
    with step(f"contacts ({total:,}, set-based)"):
        done = 0
        for tenant in tenants:
            _data.contacts_create(tenant, on_progress=lambda stop, base=done: progress(f"  contacts {base + stop:,}"))
            done += tenant.contacts
    with step("VACUUM ANALYZE"):
        _data.vacuum_analyze("contacts", "tenants", "tenant_users", "users")

    target = tenants[0]
    owner = Membership.objects.get(tenant_id=target.id, role=Role.OWNER).user
    # Like most staff of a contractor group, the user also works for a second tenant, so the
    # request must name its tenant with X-Tenant.
    Membership.objects.create(tenant_id=tenants[1].id, user=owner, role=Role.MEMBER)
    return target, AuthToken.objects.create(user=owner)[1]


def raw_columns() -> list[str]:
    """The table columns behind the serializer's fields (display_name is computed from them)."""
    fields = ContactSerializer().fields
    names = [name for name, field in fields.items() if name != "display_name" and not field.write_only]
    return [Contact._meta.get_field(name).column for name in names]


def measure(client: APIClient, raw: psycopg.Connection, tenant_id: int, search: bool) -> dict:
    params = {"page_size": PAGE_SIZE} | ({"search": SEARCH} if search else {})
    path = f"/api/v1/contacts/?{urlencode(params)}"
    where = "tenant_id = %(tenant)s AND NOT is_deleted"
    if search:
        where += " AND search @@ to_tsquery('simple', %(query)s)"
    columns = ", ".join(raw_columns())
    list_sql = f"SELECT {columns} FROM contacts WHERE {where} ORDER BY created_at DESC, id DESC LIMIT {PAGE_SIZE}"
    count_sql = f"SELECT count(*) FROM contacts WHERE {where}"
    values = {"tenant": tenant_id, "query": SEARCH_TSQUERY}

    def django_request() -> bytes:
        response = client.get(path)
        assert response.status_code == 200, response.content[:500]
        return response.content

    def raw_query() -> tuple[list, int]:
        rows = raw.execute(list_sql, values).fetchall()
        (count,) = raw.execute(count_sql, values).fetchone()
        return rows, count

    body = client.get(path).json()
    rows, count = raw_query()
    assert body["count"] == count, (body["count"], count)
    assert [row["id"] for row in body["results"]] == [row[0] for row in rows], "Django and raw disagree on the page"
    assert len(rows) == PAGE_SIZE

    with CaptureQueriesContext(connection) as captured:
        django_request()
    queries = [query["sql"] for query in captured.captured_queries]

    sql_ms: list[float] = []

    def timed_execute(execute, sql, params, many, context):
        began = time.perf_counter_ns()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_ms[-1] += (time.perf_counter_ns() - began) / 1e6

    with connection.execute_wrapper(timed_execute):
        for _ in range(min(args.iterations, 200)):
            sql_ms.append(0.0)
            django_request()

    django_ms, raw_ms = time_pair_ms(django_request, raw_query, iterations=args.iterations, warmup=WARMUP)
    return {
        "path": path,
        "count": count,
        "queries": queries,
        "sql_ms": statistics.median(sql_ms),
        "django": django_ms,
        "raw": raw_ms,
    }


def report(title: str, figures: dict) -> None:
    django_ms, raw_ms = figures["django"], figures["raw"]
    print(f"{title}: GET {figures['path']} (count {figures['count']:,})")
    print(
        f"  django  p50 {p50(django_ms):7.3f} ms   p95 {p95(django_ms):7.3f} ms   "
        f"{len(figures['queries'])} queries, {figures['sql_ms']:.3f} ms in SQL (median, measured apart)"
    )
    print(f"  raw     p50 {p50(raw_ms):7.3f} ms   p95 {p95(raw_ms):7.3f} ms   2 queries (page, count)")
    print(f"  ratio   {p50(django_ms) / p50(raw_ms):.2f} (p50; goal <= {GOAL})")
    for number, sql in enumerate(figures["queries"], start=1):
        print(f"    {number}. {sql if len(sql) <= 160 else sql[:100] + ' ... ' + sql[-55:]}")


def as_app_role() -> str:
    """Django's connection from now on: the application's role, with the grants migrate gives it."""
    from django.conf import settings

    from crm.db import grant_app_role
    from scripts.ensure_database import ensure_role

    role = settings.DATABASE_APP_ROLE
    ensure_role(connection.cursor().connection, role)
    grant_app_role(connection)
    connection.close()
    connection.settings_dict["USER"] = role
    return role


def main() -> None:
    tenant, token = build()
    role = as_app_role()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}", HTTP_X_TENANT=tenant.subdomain)
    with psycopg.connect(database_url, autocommit=True) as raw:
        with step(f"timing the list ({args.iterations} requests each side, after {WARMUP} warm-up)"):
            listing = measure(client, raw, tenant.id, search=False)
        with step(f"timing ?search={SEARCH}"):
            searching = measure(client, raw, tenant.id, search=True)

    print(
        f"tenant of {tenant.contacts:,} contacts (+ 9 others), {len(raw_columns()) + 1} fields a row, DEBUG off, "
        f"the API as the role {role} (row-level security), "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work on the machine skews both sides)"
    )
    report("list", listing)
    report("search", searching)
    result_line(
        bench="api_list",
        figure=p50(listing["django"]),
        baseline=p50(listing["raw"]),
        goal=GOAL,
        p95_ms=p95(listing["django"]),
        baseline_p95_ms=p95(listing["raw"]),
        queries=len(listing["queries"]),
        sql_ms=listing["sql_ms"],
        search_figure=p50(searching["django"]),
        search_baseline=p50(searching["raw"]),
        search_ratio=round(p50(searching["django"]) / p50(searching["raw"]), 2),
        search_p95_ms=p95(searching["django"]),
        search_count=searching["count"],
        contacts=tenant.contacts,
        iterations=args.iterations,
    )


main()
