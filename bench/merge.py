"""The organizations merge: `manage.py migrate` against a hand-written pure-SQL script.

Builds, at the state before the merge, 20 tenants with 1,000,000 contacts, 100,000
organizations (30% with a primary contact, 5% soft-deleted and 1% with is_deleted NULL) and
500,000 projects (40% linked to an organization, half of those with a contact of their own),
set-based (`--small`: a tenth). Then copies that database twice (CREATE DATABASE ... TEMPLATE)
and, on one copy, runs bench/merge_baseline.sql with psql (the baseline: the same work in
plain SQL), on the other `manage.py migrate contacts 0007_merge_finish -v 2` as a
subprocess, timing each and reading the migrate process's peak RSS. The migrate applies the
merge's migrations and nothing else (checked: the later migrations, such as the legacy
columns', are not the merge's work and the baseline does not do them). Both copies must end
with the same rows. Finally it times the backward migration (`migrate contacts <the
migration before the merge>`).

Goals (issue 5): migrate at most 1.5 times the baseline, and at most 300 MB of peak memory.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import REPO, _database_url, django_setup, progress, result_line, step

DATABASE = "ridgeline_bench_merge"
COPIES = {"sql": f"{DATABASE}_sql", "django": f"{DATABASE}_django"}
TENANTS = 20
GOAL = 1.5
RSS_GOAL_MB = 300
BASELINE = Path(__file__).resolve().parent / "merge_baseline.sql"
MERGE_END = ("contacts", "0007_merge_finish")
MERGE_MIGRATIONS = {
    "contacts.0004_merge_preflight",
    "contacts.0005_merge_schema",
    "crm.0006_project_contacts",
    "contacts.0006_merge_organizations",
    "crm.0007_remove_project_organization",
    "contacts.0007_merge_finish",
}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--small", action="store_true", help="a quick run on a tenth of the data")
args = parser.parse_args()
scale = 10 if args.small else 1
CONTACTS, ORGANIZATIONS, PROJECTS = 1_000_000 // scale, 100_000 // scale, 500_000 // scale
django_setup(DATABASE, migrate=False)

# Django is set up only now, so these imports come after it.
import _data  # noqa: E402
import psycopg  # noqa: E402
from django.db import connection  # noqa: E402

from crm.legacy import contacts_before_merge, migrate_to, pre_merge_state  # noqa: E402

PRE_MERGE = pre_merge_state()
CONTACTS_BEFORE_MERGE = contacts_before_merge()

ORGANIZATIONS_SQL = """
WITH staff AS (SELECT array_agg(user_id ORDER BY user_id) AS ids FROM tenant_users WHERE tenant_id = %(tenant)s)
INSERT INTO organizations (tenant_id, name, org_type, stage, primary_contact_id, address_street, address_city,
                           address_state, address_zip, phone, email, website, notes, tags, default_assignee_id,
                           is_deleted, created_by_id, created_at, updated_at)
SELECT %(tenant)s,
       (ARRAY['Summit', 'Prairie', 'Lone Star', 'Cedar', 'Harbor', 'Frontier', 'Maple', 'Red River'])[1 + mod(g, 8)]
           || ' ' || (ARRAY['Property Management', 'Realty', 'Builders', 'Holdings', 'HOA', 'Supply'])[1 + mod(g, 6)]
           || ' ' || g,
       (ARRAY['real_estate', 'developer', 'property_manager', 'local_business', 'other', NULL])[1 + mod(g * 7, 6)],
       (ARRAY['new', 'active', 'inactive', NULL])[1 + mod(g * 11, 4)],
       CASE WHEN random() < 0.30 THEN %(first_contact)s + floor(random() * %(contacts)s)::bigint END,
       (100 + mod(g * 37, 9800)) || ' Commerce Blvd', 'Dallas', 'TX', '752' || lpad(mod(g, 100)::text, 2, '0'),
       '(214) ' || (200 + mod(g, 800)) || '-' || lpad(mod(g * 7919, 10000)::text, 4, '0'),
       CASE WHEN random() < 0.8 THEN 'office' || g || '@org' || %(tenant)s || '.example' END,
       CASE WHEN random() < 0.6 THEN 'https://www.org' || g || '-' || %(tenant)s || '.example/' END,
       CASE WHEN random() < 0.5 THEN 'Net-30 invoices; call the office manager before sending a crew.' END,
       CASE WHEN random() < 0.5 THEN ARRAY['commercial', 'referral-partner']::varchar[] END,
       CASE WHEN random() < 0.7 THEN (SELECT ids[1 + floor(random() * cardinality(ids))::int] FROM staff) END,
       CASE WHEN mod(g, 100) < 5 THEN true WHEN mod(g, 100) = 5 THEN NULL ELSE false END,
       (SELECT ids[1 + floor(random() * cardinality(ids))::int] FROM staff),
       timestamptz '2019-01-01 00:00+00' + g * interval '1 hour',
       timestamptz '2019-01-01 00:00+00' + g * interval '1 hour' + random() * interval '300 days'
FROM generate_series(1, %(count)s) g
"""

PROJECTS_SQL = """
WITH staff AS (SELECT array_agg(user_id ORDER BY user_id) AS ids FROM tenant_users WHERE tenant_id = %(tenant)s),
draw AS MATERIALIZED (
    SELECT g, random() AS r_linked, random() AS r_contact, random() AS r_status FROM generate_series(1, %(count)s) g
)
INSERT INTO projects (tenant_id, contact_id, organization_id, name, project_number, status, type, estimated_value,
                      description, created_by_id, created_at, updated_at, is_deleted)
SELECT %(tenant)s,
       CASE WHEN (r_linked < 0.4 AND r_contact < 0.5) OR (r_linked >= 0.4 AND r_contact < 0.9)
            THEN %(first_contact)s + floor(random() * %(contacts)s)::bigint END,
       CASE WHEN r_linked < 0.4 THEN %(first_organization)s + floor(random() * %(organizations)s)::bigint END,
       'Roof job ' || g,
       'J-' || %(tenant)s || '-' || g,
       (ARRAY['estimate', 'approved', 'scheduled', 'in_progress', 'completed', 'cancelled'])
           [1 + floor(r_status * 6)::int],
       (ARRAY['repair', 'replacement', 'maintenance', 'emergency'])[1 + mod(g, 4)],
       round((500 + random() * 30000)::numeric, 2),
       'Tear off and replace after hail damage.',
       (SELECT ids[1 + floor(random() * cardinality(ids))::int] FROM staff),
       timestamptz '2021-01-01 00:00+00' + g * interval '30 minutes',
       timestamptz '2021-01-01 00:00+00' + g * interval '30 minutes' + random() * interval '90 days',
       random() < 0.03
FROM draw
"""


def id_range(table: str, tenant: int) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(id), count(*) FROM {table} WHERE tenant_id = %s", [tenant])
        return cursor.fetchone()


def build() -> None:
    with step(f"migrate to the state before the merge ({', '.join(f'{app} {name}' for app, name in PRE_MERGE)})"):
        migrate_to(PRE_MERGE)
    _data.seed(0.5)
    with step(f"{TENANTS} tenants and their members"):
        tenants = _data.tenants_create([CONTACTS // TENANTS] * TENANTS)
    with step(f"contacts ({CONTACTS:,}), organizations ({ORGANIZATIONS:,}), projects ({PROJECTS:,}), set-based"):
        for number, tenant in enumerate(tenants, start=1):
            _data.contacts_create(tenant)
            first_contact, contacts = id_range("contacts", tenant.id)
            with connection.cursor() as cursor:
                cursor.execute(
                    ORGANIZATIONS_SQL,
                    {
                        "tenant": tenant.id,
                        "count": ORGANIZATIONS // TENANTS,
                        "first_contact": first_contact,
                        "contacts": contacts,
                    },
                )
                first_organization, organizations = id_range("organizations", tenant.id)
                cursor.execute(
                    PROJECTS_SQL,
                    {
                        "tenant": tenant.id,
                        "count": PROJECTS // TENANTS,
                        "first_contact": first_contact,
                        "contacts": contacts,
                        "first_organization": first_organization,
                        "organizations": organizations,
                    },
                )
            progress(f"  tenant {number}/{TENANTS}: {number * CONTACTS // TENANTS:,} contacts")
    with step("VACUUM ANALYZE"):
        _data.vacuum_analyze("contacts", "organizations", "projects", "tenants", "tenant_users", "users")
    connection.close()


def url(database: str) -> str:
    return _database_url(database)[0]


def copy_database() -> None:
    with psycopg.connect(_database_url(DATABASE)[1], autocommit=True) as server:
        for copy in COPIES.values():
            with step(f"copy to {copy} (CREATE DATABASE ... TEMPLATE)"):
                server.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
                server.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{DATABASE}" STRATEGY FILE_COPY')
        server.execute(f'DROP DATABASE "{DATABASE}" WITH (FORCE)')
        server.execute("CHECKPOINT")


def run_baseline() -> float:
    psql = shutil.which("psql")
    if psql is None:
        raise SystemExit("psql (PostgreSQL's client) runs the baseline script: install it or put it on PATH.")
    began = time.perf_counter()
    subprocess.run(  # noqa: S603 - psql with our own script
        [psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "-f", str(BASELINE), url(COPIES["sql"])],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - began


def run_manage(*arguments: str) -> tuple[float, float, str]:
    """Run manage.py on the Django copy: (seconds, peak RSS in MB, stdout)."""
    env = {
        **os.environ,
        "DATABASE_URL": url(COPIES["django"]),
        "DJANGO_SETTINGS_MODULE": "crm.settings.base",
        "DEBUG": "false",
    }
    output = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-merge-{os.getpid()}.out"  # noqa: S108
    with output.open("w+") as out:
        began = time.perf_counter()
        process = subprocess.Popen(  # noqa: S603 - our own manage.py
            [sys.executable, str(REPO / "manage.py"), *arguments], cwd=REPO, env=env, stdout=out, stderr=out
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - began
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
    output.unlink()
    if process.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(arguments)} failed:\n{text}")
    return seconds, usage.ru_maxrss / 1024, text


def outcome(database: str) -> dict[str, int]:
    """What the merge produced, to check both copies did the same work."""
    queries = {
        "contacts": "SELECT count(*) FROM contacts",
        "companies": "SELECT count(*) FROM contacts WHERE is_organization",
        "deleted companies": "SELECT count(*) FROM contacts WHERE is_organization AND is_deleted",
        "people working for a company": "SELECT count(*) FROM contacts WHERE company_contact_id IS NOT NULL",
        "projects without a contact": "SELECT count(*) FROM projects WHERE contact_id IS NULL",
        "project parties": "SELECT count(*) FROM project_contacts",
        "mapping rows": "SELECT count(*) FROM merged_organizations",
        "backed-up projects": "SELECT count(*) FROM merge_backups.projects",
        "search vectors": "SELECT count(*) FROM contacts WHERE search @@ to_tsquery('simple', 'office')",
    }
    with psycopg.connect(url(database)) as session:
        return {name: session.execute(sql).fetchone()[0] for name, sql in queries.items()}


def merge_lines(text: str) -> list[str]:
    """The lines of migrate's output about the merge (not the other apps' or the post-migrate noise)."""
    lines, inside = [], False
    for line in text.splitlines():
        if re.match(r"\s*(Applying|Unapplying) |Running post-migrate", line):
            inside = any(name in line for name in MERGE_MIGRATIONS)
        if inside:
            lines.append(line)
    return lines


def applied(text: str) -> set[str]:
    return set(re.findall(r"^\s*Applying ([\w.]+)\.\.\.", text, flags=re.MULTILINE))


def phases(text: str) -> dict[str, float]:
    """Seconds of each merge migration (from `-v 2`) and of each phase of its data step."""
    found: dict[str, float] = {}
    migration = None
    for line in text.splitlines():
        if applying := re.match(r"\s*Applying ([\w.]+)\.\.\.", line):
            migration = applying[1]
        if (done := re.search(r"OK \(([\d.]+)s\)$", line)) and migration in MERGE_MIGRATIONS:
            found[migration] = float(done[1])
        if phase := re.match(r"^ {4}(\w[\w ]*?) {2,}.*\(([\d.]+) s\)$", line):
            found[f"{migration}: {phase[1]}"] = float(phase[2])
    return found


build()
copy_database()
with step("baseline: bench/merge_baseline.sql with psql"):
    baseline = run_baseline()
with step(f"figure: manage.py migrate {' '.join(MERGE_END)} -v 2"):
    figure, peak_rss_mb, forward_output = run_manage("migrate", *MERGE_END, "-v", "2", "--no-input")
progress("\n".join(merge_lines(forward_output)))
if applied(forward_output) != MERGE_MIGRATIONS:
    raise SystemExit(f"migrate applied {sorted(applied(forward_output))}, not only the merge's migrations")
same = outcome(COPIES["sql"]), outcome(COPIES["django"])
progress(f"outcome: {same[1]}")
if same[0] != same[1]:
    raise SystemExit(f"The baseline and the migration disagree: {same[0]} != {same[1]}")
with step(f"backward: manage.py migrate contacts {CONTACTS_BEFORE_MERGE}"):
    backward, backward_rss_mb, backward_output = run_manage(
        "migrate", "contacts", CONTACTS_BEFORE_MERGE, "-v", "2", "--no-input"
    )
progress("\n".join(merge_lines(backward_output)))
with psycopg.connect(url(COPIES["django"])) as session:
    restored = session.execute("SELECT count(*) FROM organizations").fetchone()[0]
if restored != ORGANIZATIONS:
    raise SystemExit(f"The backward migration restored {restored} organizations, not {ORGANIZATIONS}")
with psycopg.connect(_database_url(DATABASE)[1], autocommit=True) as server:
    for copy in COPIES.values():
        server.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')

progress(f"migrate {figure:.1f} s, baseline {baseline:.1f} s, peak RSS {peak_rss_mb:.0f} MB, backward {backward:.1f} s")
result_line(
    bench="merge",
    figure=figure,
    baseline=baseline,
    goal=GOAL,
    peak_rss_mb=peak_rss_mb,
    peak_rss_goal_mb=RSS_GOAL_MB,
    backward_s=backward,
    backward_peak_rss_mb=backward_rss_mb,
    organizations=ORGANIZATIONS,
    contacts=CONTACTS,
    projects=PROJECTS,
    tenants=TENANTS,
    phases=phases(forward_output),
)
