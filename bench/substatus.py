"""One UPDATE changing the status of 100,000 of 200,000 projects, with the substatus triggers vs without.

Builds a tenant with 200,000 projects (`--small`: 20,000) and a year of their history, five
changes each: 1,000,000 `substatus_history` rows, generated set-based. Then times, in
alternating rounds, the same statement

    UPDATE projects SET status = 'scheduled', updated_at = now() WHERE id BETWEEN ... (100,000 rows)

committed, once with the substatus and history triggers enabled (each row gets the new
status's default substatus and its `substatus_since`; one history row each, with the actor
published as a service does) and once with them disabled (the baseline). Between rounds
the rows are put back and both tables vacuumed, so every round starts alike.

Goal (issue 4): with the triggers, at most 2.5 times the baseline: the history row is real
work, nothing else should be. Then rolls the history up into the analytics' stays (what
Celery beat does every minute, `substatus_stays_refresh`: the stays and their day, month and
hour counts; timed), and times GET
/api/v1/substatus/analytics/?entity=project through Django's full request path over those
1,000,000 history rows: the default window (the last 30 days), a whole year and two years, each
against the same request for a window after the last change (no history to read: the fixed
cost), in alternating rounds. Goal (issue 10): p50 <= 300 ms for any window up to two years.
"""

import datetime as dt
import os
import statistics
import time

from _common import django_setup, p50, parse_args, progress, result_line, step, time_pair_ms

DATABASE = "ridgeline_bench_substatus"
GOAL = 2.5
ANALYTICS_GOAL_MS = 300  # p50 of any window up to two years (issue 10)
CHANGES_PER_PROJECT = 5
RECORD_TRIGGERS = (
    "substatus_before_insert",
    "substatus_before_update",
    "substatus_history_insert",
    "substatus_history_update",
)

args = parse_args(__doc__.splitlines()[0], iterations=30, small_iterations=20)
database_url = django_setup(DATABASE)

# Django is set up only now, so these imports come after it.
import _data  # noqa: E402
import psycopg  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from crm.models import AuthToken, Membership, Role  # noqa: E402
from substatus.models import SubstatusConfig  # noqa: E402
from substatus.services import substatus_stays_refresh  # noqa: E402

PROJECTS = 20_000 if args.small else 200_000
CHANGED = PROJECTS // 2
ROUNDS = 3 if args.small else 5
CHUNK = 50_000

# Each project's year: estimate (site visit, measurements, quote), then approved (contract
# signed, deposit received); one in ten is cancelled instead of the deposit. The last row is
# where the project is now.
TIMELINE = [
    (None, None, "estimate", "site_visit_pending"),
    ("estimate", "site_visit_pending", "estimate", "measurements_taken"),
    ("estimate", "measurements_taken", "estimate", "quote_prepared"),
    ("estimate", "quote_prepared", "approved", "contract_signed"),
    ("approved", "contract_signed", "approved|cancelled", "deposit_received|customer_cancelled"),
]


def triggers(connection: psycopg.Connection, *, enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    connection.execute("ALTER TABLE projects " + ", ".join(f"{verb} TRIGGER {name}" for name in RECORD_TRIGGERS))


def build(connection: psycopg.Connection) -> tuple[int, int, str]:
    """The tenant, its projects and their history; returns (tenant id, owner id, owner's token)."""
    _data.seed(0.4)
    with step("tenant and members (its default substatus catalog comes from the trigger on tenants)"):
        (tenant,) = _data.tenants_create([PROJECTS])
    owner = Membership.objects.get(tenant_id=tenant.id, role=Role.OWNER).user
    substatus = dict(SubstatusConfig.objects.filter(tenant_id=tenant.id, entity="project").values_list("key", "id"))
    staff = list(Membership.objects.filter(tenant_id=tenant.id).values_list("user_id", flat=True))
    connection.execute("SELECT setseed(0.4)")
    with step(f"timelines of {PROJECTS:,} projects over the last year"):
        # Per project: the five instants of its changes (days apart), and whether it ends cancelled.
        connection.execute(
            """
            CREATE TABLE bench_timeline AS
            SELECT g, at0, at1, at2, at3, at3 + (1 + random() * 7) * interval '1 day' AS at4,
                   mod(g, 10) = 0 AS cancelled
            FROM (
                SELECT g, at0, at1, at2, at2 + (2 + random() * 10) * interval '1 day' AS at3
                FROM (
                    SELECT g, at0, at1, at1 + (1 + random() * 5) * interval '1 day' AS at2
                    FROM (
                        SELECT g, at0, at0 + (1 + random() * 3) * interval '1 day' AS at1
                        FROM (
                            SELECT g, now() - interval '365 days' + g * %(step)s * interval '1 second' AS at0
                            FROM generate_series(1, %(projects)s) g
                        ) starts
                    ) one
                ) two
            ) three
            """,
            {"projects": PROJECTS, "step": 330 * 86400 / PROJECTS},
        )
        connection.execute("CREATE UNIQUE INDEX ON bench_timeline (g)")
    # The projects are loaded where their timelines end, the triggers off: the history below
    # is their story (a trigger would log each insert as happening now).
    triggers(connection, enabled=False)
    for start in range(1, PROJECTS + 1, CHUNK):
        stop = min(start + CHUNK - 1, PROJECTS)
        connection.execute(
            """
            INSERT INTO projects (tenant_id, name, project_number, status, type, estimated_value, approved_value,
                                  scheduled_start, description, substatus_id, substatus_since, created_by_id,
                                  created_at, updated_at)
            SELECT %(tenant)s, 'Roof replacement ' || g, 'J-' || lpad(g::text, 7, '0'),
                   CASE WHEN cancelled THEN 'cancelled' ELSE 'approved' END,
                   (ARRAY['repair', 'replacement', 'replacement', 'maintenance', 'emergency'])[1 + mod(g, 5)],
                   round((4000 + random() * 36000)::numeric, 2), round((4000 + random() * 30000)::numeric, 2),
                   (at4 + interval '14 days')::date, 'Tear-off and re-roof, ' || (15 + mod(g, 40)) || ' squares',
                   CASE WHEN cancelled THEN %(cancelled)s ELSE %(deposit)s END, at4,
                   (%(staff)s::bigint[])[1 + mod(g, %(staff_count)s)], at0, at4
            FROM bench_timeline WHERE g BETWEEN %(start)s AND %(stop)s ORDER BY g
            """,
            {
                "tenant": tenant.id,
                "cancelled": substatus["customer_cancelled"],
                "deposit": substatus["deposit_received"],
                "staff": staff,
                "staff_count": len(staff),
                "start": start,
                "stop": stop,
            },
        )
        progress(f"  projects {stop:,}")
    triggers(connection, enabled=True)
    steps = ", ".join(
        f"({k}, {from_status and repr(from_status)}, {from_key and substatus[from_key]}, "
        f"'{to_status.split('|')[0]}', '{to_status.split('|')[-1]}', "
        f"{substatus[to_key.split('|')[0]]}, {substatus[to_key.split('|')[-1]]})".replace("None", "NULL")
        for k, (from_status, from_key, to_status, to_key) in enumerate(TIMELINE)
    )
    for start in range(1, PROJECTS + 1, CHUNK):
        stop = min(start + CHUNK - 1, PROJECTS)
        connection.execute(
            f"""
            INSERT INTO substatus_history (tenant_id, entity, record_id, from_status, to_status,
                                           from_substatus_id, to_substatus_id, before, after, changed_by_id,
                                           impersonated_by_id, reason, source, changed_at)
            SELECT %(tenant)s, 'project', project.id, change.from_status, new.status, change.from_substatus,
                   new.substatus,
                   CASE WHEN change.from_status IS NOT NULL
                        THEN jsonb_build_object('status', change.from_status, 'substatus', change.from_substatus) END,
                   jsonb_build_object('status', new.status, 'substatus', new.substatus),
                   project.created_by_id, NULL, '', 'api',
                   (ARRAY[at0, at1, at2, at3, at4])[1 + change.k]
            FROM bench_timeline
            JOIN projects AS project
              ON project.tenant_id = %(tenant)s AND project.project_number = 'J-' || lpad(g::text, 7, '0')
            CROSS JOIN (VALUES {steps}) AS change (k, from_status, from_substatus, to_status, to_status_cancelled,
                                                  to_substatus, to_substatus_cancelled)
            CROSS JOIN LATERAL (
                SELECT CASE WHEN cancelled THEN change.to_status_cancelled ELSE change.to_status END AS status,
                       CASE WHEN cancelled THEN change.to_substatus_cancelled ELSE change.to_substatus END AS substatus
            ) AS new
            WHERE g BETWEEN %(start)s AND %(stop)s
            ORDER BY g, change.k
            """,  # noqa: S608 (ids and constants only)
            {"tenant": tenant.id, "start": start, "stop": stop},
        )
        progress(f"  history rows {stop * CHANGES_PER_PROJECT:,}")
    connection.execute("DROP TABLE bench_timeline")
    with step("VACUUM ANALYZE"):
        _data.vacuum_analyze("projects", "substatus_history", "status_substatus_configs", "tenants", "tenant_users")
    return tenant.id, owner.pk, AuthToken.objects.create(user=owner)[1]


def measure_update(connection: psycopg.Connection, tenant_id: int, owner_id: int) -> dict:
    first = connection.execute("SELECT min(id) FROM projects WHERE tenant_id = %s", [tenant_id]).fetchone()[0]
    update = (
        "UPDATE projects SET status = 'scheduled', updated_at = now() "
        f"WHERE tenant_id = {tenant_id} AND id BETWEEN {first} AND {first + CHANGED - 1}"
    )
    # What a service publishes (crm.actor.publish_actor) inside its transaction.
    publish = (
        f"SELECT set_config('app.tenant_id', '{tenant_id}', true), set_config('app.user_id', '{owner_id}', true), "
        f"set_config('app.real_user_id', '{owner_id}', true), set_config('app.change_source', 'api', true), "
        "set_config('app.change_reason', 'Crews booked for the season', true)"
    )
    connection.execute(
        "CREATE TABLE bench_before AS SELECT id, status, substatus_id, substatus_since, updated_at FROM projects "
        f"WHERE tenant_id = {tenant_id} AND id BETWEEN {first} AND {first + CHANGED - 1}"
    )
    last_history = connection.execute("SELECT max(id) FROM substatus_history").fetchone()[0]

    def put_back() -> None:
        triggers(connection, enabled=False)
        connection.execute(
            "UPDATE projects SET status = before.status, substatus_id = before.substatus_id, "
            "substatus_since = before.substatus_since, updated_at = before.updated_at "
            "FROM bench_before AS before WHERE projects.id = before.id"
        )
        connection.execute("ALTER TABLE substatus_history DISABLE TRIGGER substatus_append_only")
        connection.execute("DELETE FROM substatus_history WHERE id > %s", [last_history])
        connection.execute("ALTER TABLE substatus_history ENABLE TRIGGER substatus_append_only")
        triggers(connection, enabled=True)
        connection.execute("VACUUM ANALYZE projects")
        connection.execute("VACUUM ANALYZE substatus_history")

    def timed(enabled: bool) -> float:
        triggers(connection, enabled=enabled)
        began = time.perf_counter()
        with connection.transaction():  # committed: the deferred foreign-key checks count too
            connection.execute(publish)
            changed = connection.execute(update).rowcount
        elapsed = time.perf_counter() - began
        assert changed == CHANGED, changed
        if enabled:
            logged = connection.execute("SELECT count(*) FROM substatus_history WHERE id > %s", [last_history])
            assert logged.fetchone()[0] == CHANGED, "one history row per changed project"
            defaults = connection.execute(
                "SELECT count(*) FROM projects JOIN status_substatus_configs AS config ON config.id = substatus_id "
                f"WHERE projects.id BETWEEN {first} AND {first + CHANGED - 1} AND config.key = 'crew_assigned'"
            )
            assert defaults.fetchone()[0] == CHANGED, "every changed project has the new status's default"
        put_back()
        return elapsed

    samples: dict[bool, list[float]] = {True: [], False: []}
    for round_number in range(ROUNDS):
        order = (True, False) if round_number % 2 == 0 else (False, True)
        for enabled in order:
            samples[enabled].append(timed(enabled))
        progress(
            f"  round {round_number + 1}/{ROUNDS}: triggers {samples[True][-1]:.3f} s, "
            f"without {samples[False][-1]:.3f} s"
        )
    # Where the time goes, once (EXPLAIN ANALYZE reports each trigger; rolled back).
    with connection.transaction(force_rollback=True):
        connection.execute(publish)
        connection.execute("SET CONSTRAINTS ALL IMMEDIATE")
        plan = [row[0] for row in connection.execute("EXPLAIN (ANALYZE, COSTS OFF) " + update)]
    put_back()
    connection.execute("DROP TABLE bench_before")
    return {"with": samples[True], "without": samples[False], "statement": update, "plan": plan}


def measure_analytics(token: str) -> dict[str, tuple[list[float], list[float]]]:
    """Each window's request timed against the same request for a window without history (the
    baseline: tenant, current counts, serialization), in alternating rounds."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    today = dt.datetime.now(tz=dt.UTC).date()
    # After the last change: no history row to read (a window in the past still reads every
    # later row, for the stays that end after it).
    later = today + dt.timedelta(days=365)
    empty = {"from": later.isoformat(), "to": (later + dt.timedelta(days=29)).isoformat()}
    figures = {}
    # (name, query, timed requests, rounds); each round after the first warms up again with 3
    # untimed requests.
    windows = (
        ("30 days", {}, args.iterations, 10),
        ("365 days", {"from": (today - dt.timedelta(days=364)).isoformat()}, args.iterations, 4),
        ("731 days", {"from": (today - dt.timedelta(days=730)).isoformat()}, args.iterations, 4),
    )
    for name, query, iterations, rounds in windows:

        def request(query: dict = query) -> None:
            response = client.get("/api/v1/substatus/analytics/", {"entity": "project", **query})
            assert response.status_code == 200, response.content[:500]

        with step(f"analytics, {name} vs a window without history ({iterations} requests each after warm-up)"):
            figures[name] = time_pair_ms(
                request, lambda: request(empty), iterations=iterations, warmup=2, rounds=rounds
            )
    return figures


def main() -> None:
    with psycopg.connect(database_url, autocommit=True) as connection:
        tenant_id, owner_id, token = build(connection)
        history = connection.execute("SELECT count(*) FROM substatus_history").fetchone()[0]
        with step(f"timing the UPDATE of {CHANGED:,} of {PROJECTS:,} projects ({ROUNDS} rounds each way)"):
            update = measure_update(connection, tenant_id, owner_id)
    began = time.perf_counter()
    with step("roll the history up into the analytics' stays (substatus_stays_refresh, as beat does)"):
        substatus_stays_refresh()
        with psycopg.connect(database_url, autocommit=True) as connection:
            for table in (
                "substatus_stays",
                "substatus_stay_counts",
                "substatus_stay_buckets",
                "substatus_open_stay_counts",
                "substatus_open_stay_day_counts",
            ):
                connection.execute(f"VACUUM ANALYZE {table}")
    rollup_seconds = time.perf_counter() - began
    analytics = measure_analytics(token)

    figure, baseline = statistics.median(update["with"]), statistics.median(update["without"])
    print(
        f"{PROJECTS:,} projects, {history:,} history rows, load average {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} CPUs (other work on the machine skews both sides)"
    )
    print(f"  {update['statement']}")
    print(f"  with the triggers     median {figure:.3f} s   runs {[round(s, 3) for s in update['with']]}")
    print(f"  triggers disabled     median {baseline:.3f} s   runs {[round(s, 3) for s in update['without']]}")
    print(f"  ratio                 {figure / baseline:.2f} (goal <= {GOAL})")
    print("  where the time goes (EXPLAIN ANALYZE, constraints immediate):")
    for line in update["plan"]:
        print(f"    {line}")
    print(f"  roll-up of the whole history (first run, then VACUUM ANALYZE)   {rollup_seconds:.1f} s")
    for name, (samples, empty) in analytics.items():
        print(
            f"  analytics ({name:8})  p50 {p50(samples):7.1f} ms   max {max(samples):7.1f} ms   "
            f"window without history p50 {p50(empty):.1f} ms   ratio {p50(samples) / p50(empty):.1f} "
            f"(goal p50 <= {ANALYTICS_GOAL_MS} ms)"
        )
    result_line(
        bench="substatus",
        figure=figure,
        baseline=baseline,
        goal=GOAL,
        unit="s",
        projects=PROJECTS,
        changed=CHANGED,
        history_rows=history,
        rounds=ROUNDS,
        analytics_p50_ms=p50(analytics["30 days"][0]),
        analytics_year_p50_ms=p50(analytics["365 days"][0]),
        analytics_two_years_p50_ms=p50(analytics["731 days"][0]),
        analytics_baseline_p50_ms=p50([sample for _, empty in analytics.values() for sample in empty]),
        rollup_seconds=round(rollup_seconds, 1),
        analytics_goal_ms=ANALYTICS_GOAL_MS,
    )


main()
