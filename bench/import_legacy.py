"""import_legacy: `manage.py import_legacy` against a hand-written INSERT ... SELECT over postgres_fdw.

Builds an old-system database (psql runs tests/fixtures/old_system_schema.sql, then set-based
SQL) with 20 tenants, 200 users, 1,000,000 contacts, 100,000 organizations, 500,000 projects
and 2,000,000 activities, one row in a thousand with a stray value (`--small`: a tenth). Two
copies of a migrated Ridgeline database (CREATE DATABASE ... TEMPLATE) receive it: one
through bench/import_legacy_baseline.sql with psql (the baseline: the same mapping in plain
SQL over postgres_fdw, every table at once, no batches, no checkpoints, no report), the other
through `manage.py import_legacy` as a subprocess (its peak RSS read with wait4). The figure is
the sum of the command's per-table seconds (the import without the organizations merge, as
the baseline); the command's whole run, merge included, is printed too. Both copies must
hold the same number of rows per table.

Goals (issue 18): at most 1.5 times the baseline, at most 300 MB of peak memory.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, _database_url, django_setup, progress, result_line, step

DATABASE = "ridgeline_bench_import_legacy"
SOURCE = f"{DATABASE}_source"
BASELINE_COPY = f"{DATABASE}_sql"
TENANTS = 20
GOAL = 1.5
RSS_GOAL_MB = 300
SCHEMA = REPO / "tests" / "fixtures" / "old_system_schema.sql"
BASELINE = Path(__file__).resolve().parent / "import_legacy_baseline.sql"
# Rows per table in both copies (the import's merge adds company contacts: people only).
COUNTS = {
    "users": "SELECT count(*) FROM users",
    "tenants": "SELECT count(*) FROM tenants",
    "tenant_users": "SELECT count(*) FROM tenant_users",
    "contacts": "SELECT count(*) FROM contacts WHERE NOT is_organization",
    "projects": "SELECT count(*) FROM projects",
    "activities": "SELECT count(*) FROM activities",
    "legacy_ids": "SELECT count(*) FROM legacy_ids WHERE source_table <> 'tenant_users'",
}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--small", action="store_true", help="a quick run on a tenth of the data")
args = parser.parse_args()
scale = 10 if args.small else 1
CONTACTS, ORGANIZATIONS = 1_000_000 // scale, 100_000 // scale
PROJECTS, ACTIVITIES = 500_000 // scale, 2_000_000 // scale
django_setup(DATABASE)

import psycopg  # noqa: E402
from django.db import connection  # noqa: E402

connection.close()  # CREATE DATABASE ... TEMPLATE needs the migrated database to itself

DATA = f"""
INSERT INTO tenants (id, name, subdomain, subscription_status)
SELECT uuid_generate_v4(), 'Tenant ' || t, 'tenant-' || t, CASE WHEN t = 1 THEN 'Active' ELSE 'active' END
FROM generate_series(1, {TENANTS}) t;
CREATE TEMP TABLE numbered AS SELECT id, row_number() OVER (ORDER BY subdomain) AS n FROM tenants;
INSERT INTO auth.users (id, email, encrypted_password, raw_user_meta_data, created_at)
SELECT uuid_generate_v4(), 'user' || u || '@example.com',
       '$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy',
       jsonb_build_object('first_name', 'User', 'last_name', u::text), now()
FROM generate_series(1, {TENANTS * 10}) u;
INSERT INTO tenant_users (tenant_id, user_id, role, joined_at)
SELECT t.id, u.id, CASE WHEN u.n % 10 = 1 THEN 'owner' WHEN u.n % 10 = 2 THEN 'Admin' ELSE 'member' END, now()
FROM (SELECT id, row_number() OVER (ORDER BY email) AS n FROM auth.users) u
JOIN numbered t ON t.n = (u.n - 1) / 10 + 1;
INSERT INTO contacts (id, tenant_id, first_name, last_name, email, phone, address_city, type, stage, priority,
                      lead_score, custom_fields, tags, created_at, updated_at)
SELECT uuid_generate_v4(), t.id, 'First' || i, 'Last' || i, 'c' || i || '@example.com', '555-' || (i % 10000),
       'Denver', 'lead', CASE WHEN i % 1000 = 0 THEN 'Lead' ELSE (ARRAY['new', 'contacted', 'won'])[i % 3 + 1] END,
       CASE WHEN i % 1000 = 1 THEN 'URGENT' ELSE 'normal' END, i % 100, jsonb_build_object('n', i),
       ARRAY['storm'], now(), now()
FROM generate_series(1, {CONTACTS}) i JOIN numbered t ON t.n = i % {TENANTS} + 1;
CREATE TEMP TABLE contact_pick AS
    SELECT id, tenant_id, row_number() OVER (PARTITION BY tenant_id ORDER BY id) AS k FROM contacts;
CREATE INDEX ON contact_pick (tenant_id, k);
ANALYZE contact_pick;
INSERT INTO organizations (id, tenant_id, name, org_type, stage, primary_contact_id, created_at, updated_at)
SELECT uuid_generate_v4(), t.id, 'Org ' || i, (ARRAY['real_estate', 'developer', NULL])[i % 3 + 1], 'active',
       CASE WHEN i % 3 = 0 THEN (SELECT c.id FROM contact_pick c WHERE c.tenant_id = t.id AND c.k = i / {TENANTS} + 1)
       END, now(), now()
FROM generate_series(1, {ORGANIZATIONS}) i JOIN numbered t ON t.n = i % {TENANTS} + 1;
CREATE TEMP TABLE org_pick AS
    SELECT id, tenant_id, row_number() OVER (PARTITION BY tenant_id ORDER BY id) AS k FROM organizations;
CREATE INDEX ON org_pick (tenant_id, k);
ANALYZE org_pick;
INSERT INTO projects (id, tenant_id, contact_id, organization_id, name, status, type, estimated_value, created_at,
                      updated_at)
SELECT uuid_generate_v4(), t.id, c.id, CASE WHEN i % 5 = 0 THEN o.id END, 'Job ' || i,
       CASE WHEN i % 1000 = 0 THEN 'In Progress' ELSE 'estimate' END, 'repair', i % 50000, now(), now()
FROM generate_series(1, {PROJECTS}) i JOIN numbered t ON t.n = i % {TENANTS} + 1
JOIN contact_pick c ON c.tenant_id = t.id AND c.k = i / {TENANTS} + 1
LEFT JOIN org_pick o ON o.tenant_id = t.id AND o.k = (i / {TENANTS}) % {ORGANIZATIONS // TENANTS} + 1;
CREATE TEMP TABLE project_pick AS
    SELECT id, tenant_id, contact_id, row_number() OVER (PARTITION BY tenant_id ORDER BY id) AS k FROM projects;
CREATE INDEX ON project_pick (tenant_id, k);
ANALYZE project_pick;
INSERT INTO activities (id, tenant_id, contact_id, project_id, type, subject, direction, created_at)
SELECT uuid_generate_v4(), p.tenant_id, p.contact_id, p.id, CASE WHEN i % 1000 = 0 THEN 'Call' ELSE 'note' END,
       'Subject ' || i, 'outbound', now()
FROM generate_series(1, {ACTIVITIES}) i JOIN numbered t ON t.n = i % {TENANTS} + 1
JOIN project_pick p ON p.tenant_id = t.id AND p.k = (i / {TENANTS}) % {PROJECTS // TENANTS} + 1;
"""


def url(name: str) -> str:
    return _database_url(name)[0]


def build() -> None:
    psql = shutil.which("psql")
    if psql is None:
        raise SystemExit("psql (the PostgreSQL client) is needed to build the old-system database")
    with psycopg.connect(_database_url(DATABASE)[1], autocommit=True) as server:
        for name in (SOURCE, BASELINE_COPY):
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        server.execute(f'CREATE DATABASE "{SOURCE}"')
        with step(f"copy the migrated target: {BASELINE_COPY}"):
            server.execute(f'CREATE DATABASE "{BASELINE_COPY}" TEMPLATE "{DATABASE}"')
    subprocess.run(  # noqa: S603 - psql with the schema file of the repository
        [psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "-f", str(SCHEMA), url(SOURCE)],
        check=True,
        capture_output=True,
    )
    with (
        step(
            f"old-system database: {TENANTS} tenants, {CONTACTS} contacts, {ORGANIZATIONS} organizations, "
            f"{PROJECTS} projects, {ACTIVITIES} activities"
        ),
        psycopg.connect(url(SOURCE)) as session,
    ):
        session.execute(DATA.encode())
        session.commit()
        session.autocommit = True
        session.execute("VACUUM ANALYZE")


def run_baseline() -> float:
    psql = shutil.which("psql")
    assert psql is not None
    began = time.perf_counter()
    subprocess.run(  # noqa: S603 - psql with our own baseline script
        [psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "-v", f"source_db={SOURCE}", "-f", str(BASELINE),
         url(BASELINE_COPY)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - began


def run_import() -> tuple[float, float, float, dict[str, float]]:
    """(seconds of the tables, seconds of the whole run, peak RSS in MB, seconds per table)."""
    report = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-import-legacy-{os.getpid()}.json"  # noqa: S108
    env = {**os.environ, "DATABASE_URL": url(DATABASE), "DJANGO_SETTINGS_MODULE": "crm.settings.base"}
    command = [sys.executable, str(REPO / "manage.py"), "import_legacy", "--from", url(SOURCE)]
    began = time.perf_counter()
    process = subprocess.Popen([*command, "--report-json", str(report)], cwd=REPO, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
    _, status, usage = os.wait4(process.pid, 0)
    whole = time.perf_counter() - began
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("manage.py import_legacy failed (its progress is above)")
    tables = {name: table["seconds"] for name, table in json.loads(report.read_text())["tables"].items()}
    report.unlink()
    return sum(tables.values()), whole, usage.ru_maxrss / 1024, tables


def counts(database: str) -> dict[str, int]:
    with psycopg.connect(url(database)) as session:
        return {name: session.execute(query).fetchone()[0] for name, query in COUNTS.items()}  # type: ignore[index]


build()
with step("baseline: bench/import_legacy_baseline.sql with psql (postgres_fdw)"):
    baseline = run_baseline()
with step("figure: manage.py import_legacy"):
    figure, whole, peak_rss_mb, per_table = run_import()
same = counts(BASELINE_COPY), counts(DATABASE)
progress(f"rows: {same[1]}")
if same[0] != same[1]:
    raise SystemExit(f"The baseline and the import disagree: {same[0]} != {same[1]}")
with psycopg.connect(_database_url(DATABASE)[1], autocommit=True) as server:
    for name in (SOURCE, BASELINE_COPY):
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

progress(f"import {figure:.1f} s (whole run {whole:.1f} s), baseline {baseline:.1f} s, peak RSS {peak_rss_mb:.0f} MB")
result_line(
    bench="import_legacy",
    figure=figure,
    baseline=baseline,
    goal=GOAL,
    whole_run_s=whole,
    peak_rss_mb=peak_rss_mb,
    peak_rss_goal_mb=RSS_GOAL_MB,
    tables={name: round(seconds, 2) for name, seconds in per_table.items()},
    tenants=TENANTS,
    contacts=CONTACTS,
    organizations=ORGANIZATIONS,
    projects=PROJECTS,
    activities=ACTIVITIES,
)
