"""adopt_database on a database the old system created, built by psql from a SQL file."""

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from crm.schema.shadow import shadow_name

ROOT = Path(__file__).resolve().parents[2]
LEGACY_SCHEMA = ROOT / "tests" / "fixtures" / "legacy_schema.sql"

LEGACY_DATA = """
INSERT INTO users (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active,
                   date_joined)
VALUES (1, '!', false, 'dana', 'Dana', 'Whitfield', 'dana@summit.example', true, true, '2021-03-01 09:00+00'),
       (2, '!', false, 'luis', 'Luis', 'Ortega', '', false, true, '2022-06-15 14:30+00');
INSERT INTO tenants (id, name, subdomain, settings, subscription_status, created_at, updated_at)
VALUES (1, 'Summit Roofing', 'summit', '{"brand": "summit"}', 'active', '2021-03-01 09:00+00', '2024-01-02 10:00+00');
INSERT INTO tenant_users (tenant_id, user_id, role, status, joined_at)
VALUES (1, 1, 'owner', 'active', '2021-03-01 09:00+00'), (1, 2, 'member', 'pending', '2022-06-15 14:30+00');
INSERT INTO contacts (id, tenant_id, first_name, last_name, email, phone, address_city, type, stage, roof_type,
                      insurance_carrier, claim_number, deductible, lead_score, tags, custom_fields, assigned_to_id,
                      is_deleted, created_by_id, created_at, updated_at)
VALUES (1, 1, 'Maggie', 'Smith', 'maggie@example.com', '555-0100', 'Boulder', 'customer', 'won', 'asphalt shingle',
        'State Farm', 'CLM-2291', 1000.00, 80, '{storm,referral}', '{"gate_code": "4411"}', 1, false, 1,
        '2023-04-01 08:00+00', '2023-05-01 08:00+00'),
       (2, 1, 'José', 'Núñez', NULL, NULL, NULL, 'lead', 'new', NULL, NULL, NULL, NULL, 0, '{}', '{}', NULL, true,
        NULL, '2024-02-01 08:00+00', '2024-02-01 08:00+00');
INSERT INTO organizations (id, tenant_id, name, org_type, stage, primary_contact_id, notes, tags, is_deleted,
                           created_at, updated_at)
VALUES (1, 1, 'Front Range Property Management', 'property_manager', 'active', 1, 'Pays net 30', '{hoa}', NULL,
        '2022-01-10 12:00+00', '2022-01-10 12:00+00');
INSERT INTO projects (id, tenant_id, contact_id, organization_id, name, project_number, status, type,
                      estimated_value, materials_list, created_at, updated_at)
VALUES (1, 1, 1, 1, 'Smith re-roof', 'J-1001', 'completed', 'replacement', 18500.00, '[{"item": "shingles"}]',
        '2023-05-02 08:00+00', '2023-07-01 08:00+00'),
       (2, 1, NULL, 1, 'Clubhouse repair', NULL, 'estimate', 'repair', NULL, '[]',
        '2024-03-01 08:00+00', '2024-03-01 08:00+00');
INSERT INTO authtoken_token (key, created, user_id)
VALUES ('9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b', '2024-01-05 10:00+00', 2);
INSERT INTO activities (tenant_id, contact_id, project_id, type, subject, direction, duration_seconds,
                        performed_by_id, created_at)
VALUES (1, 1, 1, 'call', 'Scheduled inspection', 'outbound', 320, 1, '2023-04-02 15:00+00'),
       (1, NULL, 2, 'note', 'Board approves in May', NULL, NULL, 2, '2024-03-02 15:00+00');
"""
LEGACY_TABLES = ["users", "tenants", "tenant_users", "contacts", "organizations", "projects", "activities"]


def url(name: str) -> str:
    settings = connection.settings_dict
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{name}"


def admin() -> psycopg.Connection:
    return psycopg.connect(url(connection.settings_dict["NAME"]), autocommit=True)


@pytest.fixture
def legacy_database(db):
    """A database created the old system's way: psql running a plain SQL file."""
    psql = shutil.which("psql")
    assert psql, "psql (the PostgreSQL client) is needed to build the legacy database"
    name = f"{connection.settings_dict['NAME']}_legacy"
    with admin() as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        subprocess.run(  # noqa: S603 - psql with our own fixture file
            [psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "-f", str(LEGACY_SCHEMA), url(name)],
            check=True,
            capture_output=True,
            text=True,
        )
        yield name
    finally:
        with admin() as server:
            server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def manage(*arguments: str, database: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, str(ROOT / "manage.py"), *arguments],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url(database), "DJANGO_SETTINGS_MODULE": "crm.settings.test"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def query(database: str, statement: str, parameters: tuple = ()) -> list[tuple]:
    with psycopg.connect(url(database)) as session:
        return session.execute(statement, parameters).fetchall()


def rows(database: str, tables: list[str] = LEGACY_TABLES) -> dict[str, list[dict]]:
    """Every row of these tables (the legacy ones by default), as JSON objects, in id order."""
    return {
        table: [row for (row,) in query(database, f"SELECT to_jsonb(t) FROM {table} t ORDER BY id")]  # noqa: S608
        for table in tables
    }


def as_before(now: dict[str, list[dict]], before: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """`now`'s rows with only the columns they had `before` (later migrations add some)."""
    return {
        table: [{column: row[column] for column in old} for row, old in zip(now[table], before[table], strict=True)]
        for table in before
    }


def recorded(database: str) -> list[tuple[str, str]]:
    if query(database, "SELECT to_regclass('django_migrations') IS NULL")[0][0]:
        return []
    return query(database, "SELECT app, name FROM django_migrations ORDER BY id")


def test_adopt_then_migrate_keeps_every_row(legacy_database):
    with psycopg.connect(url(legacy_database)) as session:
        session.execute(LEGACY_DATA)
    before = rows(legacy_database)

    adopted = manage("adopt_database", database=legacy_database)

    assert adopted.returncode == 0, adopted.stderr
    assert "Recorded 21 migrations as applied:\n  contenttypes.0001_initial\n" in adopted.stdout
    assert len(recorded(legacy_database)) == 21
    assert ("crm", "0002_projects_activities") in recorded(legacy_database)
    assert ("crm", "0003_ridgeline_additions") not in recorded(legacy_database)

    migrated = manage("migrate", "--no-input", database=legacy_database)

    assert migrated.returncode == 0, migrated.stderr
    assert "Applying crm.0003_ridgeline_additions... OK" in migrated.stdout
    assert set(recorded(legacy_database)) == set(MigrationLoader(None).graph.nodes)
    # The organizations merge ran: the organization is a company contact now, and the
    # project that had no contact got the organization's primary contact.
    unchanged = ["users", "tenants", "tenant_users", "activities"]
    kept = {table: before[table] for table in unchanged}
    assert as_before(rows(legacy_database, unchanged), kept) == kept
    people = query(legacy_database, "SELECT to_jsonb(t) FROM contacts t WHERE NOT is_organization ORDER BY id")
    assert [
        {column: row[column] for column in old} for (row,), old in zip(people, before["contacts"], strict=True)
    ] == (before["contacts"])
    assert query(
        legacy_database,
        "SELECT m.organization_id, m.org_type, m.stage, c.company, c.notes, c.tags, c.is_deleted, c.contact_category, "
        "c.type, c.stage FROM merged_organizations m JOIN contacts c ON c.id = m.contact_id",
    ) == [
        (1, "property_manager", "active", "Front Range Property Management", "Pays net 30", ["hoa"], False)
        + ("property_manager", "customer", "won")
    ]
    assert query(legacy_database, "SELECT id, contact_id FROM projects ORDER BY id") == [(1, 1), (2, 1)]
    assert query(legacy_database, "SELECT project_id, role FROM project_contacts ORDER BY project_id") == [
        (1, "organization"),
        (2, "organization"),
    ]
    assert query(legacy_database, "SELECT DISTINCT timezone FROM tenants") == [("America/New_York",)]
    # DRF's tokens moved to auth_tokens as digests, ending 14 days after the migration;
    # the table that held them in clear is gone.
    assert query(
        legacy_database,
        "SELECT user_id, token_key, digest = encode(sha512('9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b'), 'hex'), "
        "created, expiry = max_expiry, expiry - now() BETWEEN interval '13 days 23 hours' AND interval '14 days' "
        "FROM auth_tokens",
    ) == [(2, "9944b09199c62bc", True, datetime(2024, 1, 5, 10, tzinfo=UTC), True, True)]
    assert query(legacy_database, "SELECT to_regclass('authtoken_token')") == [(None,)]
    assert query(
        legacy_database,
        "SELECT id FROM contacts WHERE search @@ to_tsquery('simple', 'smith | núñez') ORDER BY id",
    ) == [(1,), (2,)]

    checked = manage("schema_check", database=legacy_database)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[-1].startswith("No drift.")


def test_dry_run_records_nothing(legacy_database):
    result = manage("adopt_database", "--dry-run", database=legacy_database)

    assert result.returncode == 0, result.stderr
    assert "The schema matches; --dry-run: would record 21 migrations as applied:\n" in result.stdout
    assert "  sessions.0001_initial\n" in result.stdout
    assert "authtoken" not in result.stdout
    assert recorded(legacy_database) == []


def test_a_different_schema_is_refused_and_nothing_recorded(legacy_database):
    with psycopg.connect(url(legacy_database)) as session:
        session.execute("ALTER TABLE contacts DROP COLUMN claim_number")
        session.execute("CREATE TABLE door_knock_routes (id bigint PRIMARY KEY, tenant_id bigint NOT NULL)")

    result = manage("adopt_database", database=legacy_database)

    assert result.returncode == 1
    assert (
        "untracked (in the database, not in the migrations): 1\n"
        "  table door_knock_routes\n"
        "\n"
        "missing (in the migrations, not in the database): 1\n"
        "  column contacts.claim_number: character varying(100)\n"
    ) in result.stdout
    assert result.stdout.endswith("Refused: the database differs from the legacy state; nothing was recorded.\n")
    assert recorded(legacy_database) == []
    assert query(legacy_database, "SELECT to_regclass('django_migrations')") == [(None,)]
    assert query(
        connection.settings_dict["NAME"],
        "SELECT count(*) FROM pg_database WHERE datname = %s",
        (shadow_name(legacy_database),),
    ) == [(0,)]


def test_a_database_with_part_of_the_history_is_not_adopted(legacy_database):
    with psycopg.connect(url(legacy_database)) as session:
        session.execute(
            "CREATE TABLE django_migrations (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            "app varchar(255) NOT NULL, name varchar(255) NOT NULL, applied timestamptz NOT NULL)"
        )
        session.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES ('contenttypes', '0001_initial', now())"
        )

    result = manage("adopt_database", database=legacy_database)

    assert result.returncode == 2
    assert result.stderr.startswith(
        "CommandError: adopt_database refused: the database records 1 applied migrations but not the whole legacy state"
    )
    assert recorded(legacy_database) == [("contenttypes", "0001_initial")]


def test_an_adopted_database_needs_nothing(legacy_database):
    assert manage("adopt_database", database=legacy_database).returncode == 0

    again = manage("adopt_database", database=legacy_database)

    assert again.returncode == 0
    assert again.stdout == (
        "Nothing to do: the database already records the legacy state as applied (21 migrations): "
        "run `manage.py migrate`\n"
    )
    assert len(recorded(legacy_database)) == 21
