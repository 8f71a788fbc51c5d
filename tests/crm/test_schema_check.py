"""schema_check: the live database compared with a shadow built from the migrations.

Most cases break the test database inside the test's transaction (PostgreSQL DDL is
transactional, so the rollback repairs it) and compare it with a snapshot of the
migrations built once per module; the command tests build their own shadow each time.
"""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from crm.schema.check import snapshot
from crm.schema.comparison import compare
from crm.schema.introspection import SchemaObject, introspect
from crm.schema.shadow import migrate, shadow_database, shadow_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def migrations_snapshot(django_db_setup, django_db_blocker) -> list[SchemaObject]:
    with django_db_blocker.unblock(), shadow_database(DEFAULT_DB_ALIAS) as shadow:
        migrate(shadow, sorted(MigrationLoader(None).graph.leaf_nodes()))
        return snapshot(shadow)


def drift(expected: list[SchemaObject], *statements: str, ignore: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    comparison = compare(expected, snapshot(connection), ignore=ignore)
    return [(difference.status, difference.identifier) for difference in comparison.differences]


def database_url(name: str) -> str:
    settings = connection.settings_dict
    return f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{name}"


def database_exists(name: str) -> bool:
    with psycopg.connect(database_url(connection.settings_dict["NAME"]), autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def run_schema_check(*arguments: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("schema_check", *arguments, stdout=out)
    except SystemExit as exit_:
        code = exit_.code
    else:
        code = 0
    assert isinstance(code, int)
    return code, out.getvalue()


def test_a_migrated_database_compares_clean(db, migrations_snapshot):
    assert drift(migrations_snapshot) == []


@pytest.mark.parametrize(
    ("statements", "expected"),
    [
        pytest.param(
            ["CREATE TABLE campaign_drafts (id bigint PRIMARY KEY, name text NOT NULL)"],
            [("untracked", "table:campaign_drafts")],
            id="table created by hand",
        ),
        pytest.param(
            ["DROP TABLE tenant_users"],
            [("missing", "table:tenant_users")],
            id="table dropped",
        ),
        pytest.param(
            ["ALTER TABLE contacts DROP COLUMN claim_number"],
            [("missing", "column:contacts.claim_number")],
            id="column dropped",
        ),
        pytest.param(
            ["ALTER TABLE contacts ADD COLUMN fax varchar(32)"],
            [("untracked", "column:contacts.fax")],
            id="column added",
        ),
        pytest.param(
            ["ALTER TABLE projects ALTER COLUMN weather_delays TYPE integer"],
            [("different", "column:projects.weather_delays")],
            id="column type",
        ),
        pytest.param(
            ["ALTER TABLE projects ALTER COLUMN name DROP NOT NULL"],
            [("different", "column:projects.name")],
            id="column nullability",
        ),
        pytest.param(
            ["ALTER TABLE contacts ALTER COLUMN source SET DEFAULT 'web'"],
            [("different", "column:contacts.source")],
            id="column default",
        ),
        pytest.param(
            [
                "ALTER TABLE contacts DROP COLUMN search",
                "ALTER TABLE contacts ADD COLUMN search tsvector "
                "GENERATED ALWAYS AS (to_tsvector('simple', first_name)) STORED",
                "CREATE INDEX contacts_search_gin ON contacts USING gin (search)",
            ],
            [("different", "column:contacts.search")],
            id="generated column expression",
        ),
        pytest.param(
            ["ALTER TABLE activities DROP CONSTRAINT activities_contact_or_project"],
            [("missing", "constraint:activities.activities_contact_or_project")],
            id="check constraint dropped",
        ),
        pytest.param(
            [
                "ALTER TABLE contacts DROP CONSTRAINT contacts_type_valid",
                "ALTER TABLE contacts ADD CONSTRAINT contacts_type_valid "
                "CHECK (type IN ('lead', 'customer', 'prospect', 'vip'))",
            ],
            [("different", "constraint:contacts.contacts_type_valid")],
            id="check constraint changed",
        ),
        pytest.param(
            ["ALTER TABLE contacts RENAME CONSTRAINT contacts_type_valid TO contacts_kind_valid"],
            [("different", "constraint:contacts.contacts_type_valid")],
            id="named constraint renamed",
        ),
        pytest.param(
            ["ALTER TABLE projects RENAME CONSTRAINT projects_contact_id_c0a3c75e_fk_contacts_id TO projects_contact"],
            [],
            id="generated foreign key name does not matter",
        ),
        pytest.param(
            ["ALTER TABLE tenant_users DROP CONSTRAINT tenant_users_tenant_id_52a75c9d_fk_tenants_id"],
            [("missing", "constraint:tenant_users.tenant_users_tenant_id_52a75c9d_fk_tenants_id")],
            id="foreign key dropped",
        ),
        pytest.param(
            ["ALTER TABLE tenants DROP CONSTRAINT tenants_subdomain_key"],
            [("missing", "constraint:tenants.tenants_subdomain_key")],
            id="unique constraint dropped",
        ),
        pytest.param(
            ["CREATE INDEX contacts_city_idx ON contacts (address_city)"],
            [("untracked", "index:contacts.contacts_city_idx")],
            id="index created by hand",
        ),
        pytest.param(
            ["DROP INDEX contacts_tenant_stage_idx"],
            [("missing", "index:contacts.contacts_tenant_stage_idx")],
            id="index dropped",
        ),
        pytest.param(
            [
                "DROP INDEX contacts_tenant_recent_idx",
                "CREATE INDEX contacts_tenant_recent_idx ON contacts (tenant_id, created_at DESC, id DESC)",
            ],
            [("different", "index:contacts.contacts_tenant_recent_idx")],
            id="partial index lost its condition",
        ),
        pytest.param(
            [
                "DROP INDEX users_email_unique_ci",
                "CREATE UNIQUE INDEX users_email_unique_ci ON users (email) WHERE NOT (email = '')",
            ],
            [("different", "index:users.users_email_unique_ci")],
            id="expression index lost its expression",
        ),
        pytest.param(
            ["ALTER INDEX contacts_tenant_id_23e151d7 RENAME TO contacts_tenant_id_idx"],
            [],
            id="generated index name does not matter",
        ),
        pytest.param(
            [
                "CREATE FUNCTION contacts_touch() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$",
                "CREATE TRIGGER contacts_touch BEFORE UPDATE ON contacts "
                "FOR EACH ROW EXECUTE FUNCTION contacts_touch()",
            ],
            [("untracked", "trigger:contacts.contacts_touch"), ("untracked", "function:contacts_touch()")],
            id="trigger and its function",
        ),
        pytest.param(
            ["CREATE OR REPLACE FUNCTION app_tenant_id() RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT 1::bigint $$"],
            [("different", "function:app_tenant_id()")],
            id="function body changed",
        ),
        pytest.param(
            ["DROP FUNCTION app_is_impersonating()"],
            [("missing", "function:app_is_impersonating()")],
            id="function dropped",
        ),
        pytest.param(
            ["CREATE VIEW open_projects AS SELECT id, name FROM projects WHERE NOT is_deleted"],
            [("untracked", "view:open_projects")],
            id="view",
        ),
        pytest.param(["CREATE SEQUENCE invoice_numbers"], [("untracked", "sequence:invoice_numbers")], id="sequence"),
        pytest.param(
            ["CREATE TYPE roof_kind AS ENUM ('shingle', 'metal', 'tile')"],
            [("untracked", "type:roof_kind")],
            id="enum type",
        ),
        pytest.param(
            ["CREATE EXTENSION pg_trgm"],
            [("untracked", "extension:pg_trgm")],
            id="extension without its hundred functions",
        ),
    ],
)
def test_each_change_by_hand_is_named(db, migrations_snapshot, statements, expected):
    assert drift(migrations_snapshot, *statements) == expected


def test_a_database_restored_from_pg_dump_compares_clean(db, migrations_snapshot):
    """pg_dump prints varchar IN lists in a form PostgreSQL reads back differently."""
    name = f"{connection.settings_dict['NAME']}_restored"
    with psycopg.connect(database_url(connection.settings_dict["NAME"]), autocommit=True) as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            dump = subprocess.run(  # noqa: S603 - the PostgreSQL client on our own test database
                [
                    shutil.which("pg_dump") or "pg_dump",
                    "--schema-only",
                    "--no-owner",
                    database_url(connection.settings_dict["NAME"]),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            subprocess.run(  # noqa: S603 - the PostgreSQL client on a database this test created
                [shutil.which("psql") or "psql", "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", database_url(name)],
                input=dump.stdout,
                check=True,
                capture_output=True,
                text=True,
            )
            with psycopg.connect(database_url(name)) as restored, restored.cursor() as cursor:
                comparison = compare(migrations_snapshot, introspect(cursor))
        finally:
            server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    assert comparison.differences == []


def test_ignore_patterns_move_differences_aside(db, migrations_snapshot):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE celery_taskmeta (id bigint PRIMARY KEY)")
        cursor.execute("CREATE INDEX contacts_city_idx ON contacts (address_city)")
        cursor.execute("CREATE INDEX celery_taskmeta_idx ON celery_taskmeta (id)")
    comparison = compare(migrations_snapshot, snapshot(connection), ignore=["table:celery_*"])

    assert [difference.identifier for difference in comparison.differences] == ["index:contacts.contacts_city_idx"]
    assert [difference.identifier for difference in comparison.ignored] == ["table:celery_taskmeta"]


def test_done_means_break_by_hand_then_undo(db):
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE campaign_drafts (id bigint PRIMARY KEY, name text NOT NULL)")
        cursor.execute("ALTER TABLE contacts DROP COLUMN claim_number")

    status, output = run_schema_check()

    assert status == 1
    assert "untracked (in the database, not in the migrations): 1\n  table campaign_drafts\n" in output
    assert (
        "missing (in the migrations, not in the database): 1\n  column contacts.claim_number: character varying(100)\n"
    ) in output
    assert re.fullmatch(r"Drift: 2 differences\. \(\d+\.\d s\)", output.splitlines()[-1])

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE campaign_drafts")
        cursor.execute("ALTER TABLE contacts ADD COLUMN claim_number varchar(100)")

    status, output = run_schema_check()

    assert status == 0
    assert "No drift." in output
    assert not database_exists(shadow_name(connection.settings_dict["NAME"]))


def test_json_report(db, settings):
    """sessions is the migration nothing depends on: without its record the shadow lacks
    its table, so the table the database still has is untracked."""
    settings.SCHEMA_CHECK_IGNORE = ["table:celery_*"]
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE celery_taskmeta (id bigint PRIMARY KEY)")
        cursor.execute("ALTER TABLE projects ALTER COLUMN weather_delays TYPE integer")
        cursor.execute("DELETE FROM django_migrations WHERE app = 'sessions'")
        cursor.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('crm', '0099_hotfix', now())")

    status, output = run_schema_check("--format", "json")
    report = json.loads(output)

    assert status == 1
    assert report["clean"] is False
    assert report["untracked"] == [
        {"kind": "table", "object": "django_session", "migrations": None, "database": "table"}
    ]
    assert report["missing"] == []
    assert report["different"] == [
        {
            "kind": "column",
            "object": "projects.weather_delays",
            "migrations": "smallint NOT NULL DEFAULT 0",
            "database": "integer NOT NULL DEFAULT 0",
        }
    ]
    assert report["migration_records"] == {
        "applied_not_in_code": ["crm.0099_hotfix"],
        "not_applied": ["sessions.0001_initial"],
    }
    assert report["ignored"] == [{"status": "untracked", "object": "table:celery_taskmeta"}]


def test_allow_unapplied_reports_pending_migrations_without_failing(db):
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE django_session")
        cursor.execute("DELETE FROM django_migrations WHERE app = 'sessions'")

    status, output = run_schema_check("--allow-unapplied")

    assert status == 0
    assert "migrations in the code, not applied: 1\n  sessions.0001_initial\n" in output
    assert output.splitlines()[-1].startswith("No drift. (")


def test_a_shadow_left_by_a_killed_run_is_replaced(db):
    name = shadow_name(connection.settings_dict["NAME"])
    with psycopg.connect(database_url(connection.settings_dict["NAME"]), autocommit=True) as server:
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(database_url(name), autocommit=True) as leftover:
        leftover.execute("CREATE TABLE half_built (id bigint)")

    status, output = run_schema_check()

    assert status == 0, output
    assert not database_exists(name)


def test_a_second_run_against_the_same_database_is_refused(db):
    name = shadow_name(connection.settings_dict["NAME"])
    with psycopg.connect(database_url(connection.settings_dict["NAME"]), autocommit=True) as other_run:
        other_run.execute("SELECT pg_advisory_lock(hashtext(%s))", [name])
        with pytest.raises(CommandError) as refused:
            call_command("schema_check", stdout=io.StringIO())

    assert refused.value.returncode == 2
    assert str(refused.value) == (
        f"schema_check cannot run: another schema check is using the shadow database {name!r}; "
        "run again when it has finished"
    )


def manage(*arguments: str, database: str) -> subprocess.Popen:
    environment = {**os.environ, "DATABASE_URL": database_url(database), "DJANGO_SETTINGS_MODULE": "crm.settings.test"}
    return subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, str(ROOT / "manage.py"), *arguments],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_an_unreachable_database_exits_2_with_the_reason():
    environment = {
        **os.environ,
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/ridgeline",
        "DJANGO_SETTINGS_MODULE": "crm.settings.test",
    }
    finished = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, str(ROOT / "manage.py"), "schema_check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert finished.returncode == 2
    assert finished.stderr.startswith("CommandError: schema_check cannot run: cannot connect to database 'ridgeline'")
    assert "127.0.0.1" in finished.stderr


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_check_drops_its_shadow(db, signal_number):
    """The check is held on a lock while its shadow exists, then interrupted."""
    name = connection.settings_dict["NAME"]
    shadow = shadow_name(name)
    with psycopg.connect(database_url(name)) as blocker:
        blocker.execute("LOCK TABLE django_migrations IN ACCESS EXCLUSIVE MODE")
        check = manage("schema_check", database=name)
        try:
            deadline = time.monotonic() + 60
            while not (database_exists(shadow) and waiting_on_lock(name)):
                assert check.poll() is None, check.communicate()
                assert time.monotonic() < deadline, "schema_check never reached the lock"
                time.sleep(0.05)
            check.send_signal(signal_number)
            _, stderr = check.communicate(timeout=60)
        finally:
            if check.poll() is None:
                check.kill()
        blocker.rollback()

    assert check.returncode == 2
    assert stderr == "CommandError: schema_check: interrupted; the shadow database was dropped.\n"
    assert not database_exists(shadow)


def waiting_on_lock(database: str) -> bool:
    with psycopg.connect(database_url(database), autocommit=True) as observer:
        row = observer.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock')",
            [database],
        ).fetchone()
    assert row is not None
    return row[0]
