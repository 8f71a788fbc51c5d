"""import_legacy on an old-system database built by psql from the schema file, with generated rows."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from legacy_import.mapping import CHOICES, PARKED_KEY, map_value
from tests.legacy_import.source import CONTACTS, PASSWORD, old_database, server_url

ROOT = Path(__file__).resolve().parents[2]
TENANTS = 2
JSONB = 3802  # the type's oid
ORG_STAGES = {"new": ("lead", "new"), "active": ("customer", "won"), "inactive": ("prospect", "lost")}
DUPLICATE_EMAIL = "21000000-0000-4000-8000-000000000006"  # PERSON1@summit.example, after person1@


@pytest.fixture(scope="module")
def old_url(django_db_setup, django_db_blocker):
    with old_database("legacy_source") as url:
        yield url


def run(url: str, *args: str) -> str:
    out = []

    class Out:
        def write(self, text: str) -> None:
            out.append(text)

        def flush(self) -> None:
            pass

    call_command("import_legacy", "--from", url, *args, stdout=Out(), stderr=Out())
    return "".join(out)


def old_rows(url: str, table: str) -> dict[str, dict[str, Any]]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return {str(row["id"]): row for row in conn.execute(f"SELECT * FROM {table}")}  # noqa: S608


def new_rows(source_table: str, target: str) -> dict[str, dict[str, Any]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT m.old_id::text AS old_id, t.* FROM {target} t "  # noqa: S608
            "JOIN legacy_ids m ON m.source_table = %s AND m.new_id = t.id",
            [source_table],
        )
        names = [column.name for column in cursor.description]
        jsonb = {column.name for column in cursor.description if column.type_code == JSONB}
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    # Django reads jsonb as text (its JSONField decodes it): decode it here.
    return {
        row["old_id"]: {k: json.loads(v) if k in jsonb and v is not None else v for k, v in row.items()} for row in rows
    }


def old_ids() -> dict[tuple[str, int], str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT source_table, new_id, old_id::text FROM legacy_ids")
        return {(table, new): old for table, new, old in cursor.fetchall()}


def snapshot() -> dict[str, str]:
    """Every imported table's rows, as one digest a table."""
    digests = {}
    with connection.cursor() as cursor:
        for table in (
            "users",
            "tenants",
            "tenant_users",
            "status_substatus_configs",
            "contacts",
            "projects",
            "project_contacts",
            "activities",
            "merged_organizations",
            "legacy_ids",
        ):
            cursor.execute(
                f"SELECT count(*), md5(string_agg(to_jsonb(t)::text, ',' ORDER BY to_jsonb(t)::text)) FROM {table} t"  # noqa: S608
            )
            digests[table] = str(cursor.fetchone())
    return digests


def expected(table: str, column: str, value: Any) -> Any:
    return map_value(CHOICES[(table, column)], value).value if (table, column) in CHOICES else value


def compare(url: str, table: str, target: str, columns: dict[str, str], refs: dict[str, tuple[str, str]]) -> int:
    """Every old row of `table` arrived in `target`: each column (through the value maps) and reference."""
    old, new, back = old_rows(url, table), new_rows(table, target), old_ids()
    compared = 0
    for old_id, row in new.items():
        source = old[old_id]
        for old_column, new_column in columns.items():
            want = expected(table.split(".")[-1], old_column, source[old_column])
            if old_column == "email" and old_id == DUPLICATE_EMAIL:
                want = None
            assert row[new_column] == want, (table, old_id, old_column, row[new_column], want)
        for old_column, (new_column, points_at) in refs.items():
            got = back.get((points_at, row[new_column])) if row[new_column] is not None else None
            want = str(source[old_column]) if source[old_column] else None
            if want is None and source.get("organization_id"):
                continue  # the merge gave it its organization's contact (checked by the merge's validation)
            if want is not None and got is None:  # refused: its old id is parked
                assert row["custom_fields"][PARKED_KEY][old_column] == want, (table, old_id, old_column)
            else:
                assert got == want, (table, old_id, old_column)
        compared += 1
    return compared


CONTACT_COLUMNS = [
    "first_name", "last_name", "email", "phone", "address_city", "address_state", "latitude", "longitude", "type",
    "stage", "source_details", "roof_age", "property_value", "deductible", "lead_score", "priority", "tags",
    "is_deleted", "sms_opt_in", "sms_opt_in_date", "timezone", "created_at", "updated_at",
]  # fmt: skip
PROJECT_COLUMNS = [
    "name", "project_number", "status", "type", "estimated_value", "estimated_start", "materials_list",
    "supplements", "crew_assigned", "created_at", "updated_at",
]  # fmt: skip
ACTIVITY_COLUMNS = ["type", "subject", "direction", "duration_seconds", "external_id", "created_at"]


@pytest.mark.django_db
def test_every_row_and_column_arrives_then_the_merge_runs_and_a_second_run_changes_nothing(old_url, tmp_path):
    report_file = tmp_path / "report.json"
    run(old_url, "--report-json", str(report_file), "--batch-size", "100")
    report = json.loads(report_file.read_text())

    users = new_rows("auth.users", "users")
    assert {row["email"]: (row["first_name"], row["last_name"], row["is_active"]) for row in users.values()} == {
        "Dana@Summit.example": ("Dana", "Whitfield", True),
        "luis@summit.example": ("Luis", "de Ortega", False),  # banned until next month
        "pat@peak.example": ("Pat", "Lee", True),  # the ban is over
        "kim@peak.example": ("", "", True),
    }
    assert report["tables"]["tenant_users"] == report["tables"]["tenant_users"] | {"old": 6, "new": 5, "refused": 1}
    contacts = compare(
        old_url,
        "contacts",
        "contacts",
        {column: column for column in CONTACT_COLUMNS},
        {"created_by": ("created_by_id", "auth.users"), "assigned_to": ("assigned_to_id", "auth.users")},
    )
    assert contacts == TENANTS * CONTACTS
    projects = compare(
        old_url,
        "projects",
        "projects",
        {column: column for column in PROJECT_COLUMNS},
        {"contact_id": ("contact_id", "contacts"), "parent_project_id": ("parent_project_id", "projects")},
    )
    assert projects == TENANTS * 60 - 1  # the one pointing at another tenant's contact
    activities = compare(
        old_url,
        "activities",
        "activities",
        {column: column for column in ACTIVITY_COLUMNS},
        {"contact_id": ("contact_id", "contacts"), "performed_by": ("performed_by_id", "auth.users")},
    )
    assert activities == TENANTS * 80 - 1  # the one on the refused project
    conversations = compare(
        old_url,
        "ai_conversations",
        "ai_conversations",
        {"title": "title", "metadata": "metadata", "created_at": "created_at", "updated_at": "updated_at"},
        {"user_id": ("user_id", "auth.users")},
    )
    assert conversations == 1
    messages = compare(
        old_url,
        "ai_messages",
        "ai_messages",
        {"role": "role", "content": "content", "function_call": "function_call", "created_at": "created_at"},
        {"conversation_id": ("conversation_id", "ai_conversations")},
    )
    assert messages == 2

    # The merge ran as migrate runs it: every organization is a company contact with its fields.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT m.old_id::text, c.company, c.phone, c.tags, c.is_deleted, c.contact_category, c.type, c.stage "
            "FROM legacy_ids m JOIN merged_organizations o ON o.organization_id = m.new_id "
            "JOIN contacts c ON c.id = o.contact_id WHERE m.source_table = 'organizations'"
        )
        merged = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute("SELECT count(*) FROM legacy_import_organizations")
        assert cursor.fetchone() == (0,)
        cursor.execute("SELECT count(*) FROM information_schema.columns WHERE column_name = 'organization_id' "
                       "AND table_name = 'projects' AND table_schema = 'public'")  # fmt: skip
        assert cursor.fetchone() == (0,)
    organizations = old_rows(old_url, "organizations")
    assert len(merged) == TENANTS * 6
    for old_id, (company, phone, tags, is_deleted, category, kind, stage) in merged.items():
        org = organizations[old_id]
        assert (company, phone, tags, is_deleted) == (org["name"], org["phone"], org["tags"], bool(org["is_deleted"]))
        assert category == {"real_estate": "real_estate_agent", "developer": "developer"}.get(org["org_type"], "other")
        assert (kind, stage) == {
            "new": ("lead", "new"),
            "active": ("customer", "won"),
            "inactive": ("prospect", "lost"),
        }[org["stage"]]

    before = snapshot()
    again = tmp_path / "again.json"
    run(old_url, "--report-json", str(again))
    assert snapshot() == before
    assert all(table["written"] == 0 for table in json.loads(again.read_text())["tables"].values())


@pytest.mark.django_db
def test_users_log_in_with_their_old_password(old_url):
    run(old_url, "--tenant", "summit")
    client = APIClient()
    response = client.post("/api/v1/auth/token/", {"username": "dana@summit.example", "password": PASSWORD})
    assert response.status_code == 200, response.content
    assert client.post("/api/v1/auth/token/", {"username": "dana@summit.example", "password": "x"}).status_code == 400
    # Banned in the old system: inactive here.
    assert (
        client.post("/api/v1/auth/token/", {"username": "luis@summit.example", "password": PASSWORD}).status_code == 400
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT subdomain FROM tenants")
        assert cursor.fetchall() == [("summit",)]


@pytest.mark.django_db
def test_stray_values_are_mapped_or_parked_and_reported(old_url, tmp_path):
    report_file = tmp_path / "report.json"
    text = run(old_url, "--report-json", str(report_file))
    report = json.loads(report_file.read_text())
    values = {(v["table"], v["column"], v["old"]): (v["new"], v["parked"]) for v in report["values"]}
    assert values[("contacts", "stage", "Won")] == ("won", False)
    assert values[("contacts", "stage", "Lead")] == ("new", True)
    assert values[("contacts", "priority", "URGENT")] == ("urgent", False)
    assert values[("contacts", "substatus", "ghost")] == (None, True)
    assert values[("tenant_users", "role", "Admin")] == ("admin", False)
    assert values[("tenant_users", "role", "boss")] == ("member", True)
    assert values[("projects", "status", "In Progress")] == ("in_progress", False)
    assert values[("projects", "status", "on hold")] == ("estimate", True)
    assert values[("activities", "type", "fax")] == ("note", True)
    assert values[("tenants", "subscription_status", "gold")] == ("trial", True)
    assert "contacts.stage 'Lead': parked, stage set to 'new'" in text

    contacts = new_rows("contacts", "contacts")
    assert contacts["21000000-0000-4000-8000-000000000001"]["custom_fields"] == {
        "gate": "1",
        PARKED_KEY: {"stage": "Lead"},
    }
    assert contacts["21000000-0000-4000-8000-000000000005"]["custom_fields"][PARKED_KEY] == {"substatus": "ghost"}
    assert contacts[DUPLICATE_EMAIL]["custom_fields"][PARKED_KEY] == {"email": "PERSON1@summit.example"}
    projects = new_rows("projects", "projects")
    assert projects["41000000-0000-4000-8000-000000000007"]["custom_fields"] == {PARKED_KEY: {"profit_margin": 12.5}}
    activities = new_rows("activities", "activities")
    assert activities["51000000-0000-4000-8000-000000000002"]["outcome_details"] == {
        "ok": True,
        PARKED_KEY: {"type": "fax"},
    }

    refused = {(r["table"], r["old_id"]): r["reason"] for r in report["refused"]}
    assert refused[("projects", "41000000-0000-4000-8000-000000000009")] == (
        "contact_id 22000000-0000-4000-8000-000000000009 belongs to another tenant"
    )
    assert "not merged" in refused[("auth.users", "00000000-0000-4000-8000-000000000003")]
    # The catalog: one default per status (two were marked for estimate, none for new).
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.entity, c.status, c.key FROM status_substatus_configs c JOIN tenants t ON t.id = c.tenant_id "
            "WHERE t.subdomain = 'summit' AND c.is_default AND (c.entity, c.status) IN (('contact', 'new'), "
            "('project', 'estimate')) ORDER BY 1"
        )
        assert cursor.fetchall() == [("contact", "new", "called"), ("project", "estimate", "sent")]


@pytest.mark.django_db
def test_dry_run_writes_nothing(old_url):
    before = snapshot()
    text = run(old_url, "--dry-run")
    assert "--dry-run: nothing was written" in text
    assert snapshot() == before


@pytest.mark.django_db
def test_strict_stops_at_a_refused_row_and_rolls_its_table_back(old_url):
    with pytest.raises(CommandError, match="--strict: stopped at a refused row") as raised:
        run(old_url, "--strict")
    assert raised.value.returncode == 1
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM legacy_ids WHERE source_table = 'auth.users'")
        assert cursor.fetchone() == (0,)  # the duplicate user stopped the first table


@pytest.mark.django_db
@pytest.mark.parametrize("case", ["unreachable", "not_old_schema", "unmigrated_target"])
def test_a_source_or_target_it_cannot_use_is_refused_and_nothing_is_written(case, old_url):
    before = snapshot()
    if case == "unmigrated_target":
        with connection.cursor() as cursor:  # rolled back with the test
            cursor.execute("DELETE FROM django_migrations WHERE app = 'legacy_import'")
        with pytest.raises(CommandError, match=r"target database is not migrated .* legacy_import.0001") as raised:
            run(old_url)
    elif case == "unreachable":
        with pytest.raises(CommandError, match="cannot connect to the source") as raised:
            run("postgres://root@127.0.0.1:1/nowhere")
    else:
        with old_database("not_old", data=False) as url:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("ALTER TABLE contacts DROP COLUMN priority")
            with pytest.raises(CommandError, match=r"lacks column public.contacts.priority") as raised:
                run(url)
    assert raised.value.returncode == 2
    assert snapshot() == before


@pytest.mark.django_db(transaction=True)
def test_killed_in_the_middle_of_contacts_and_restarted_ends_like_an_uninterrupted_run(old_url):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "crm.settings.test"}
    env["DATABASE_URL"] = server_url(connection.settings_dict["NAME"])
    command = [sys.executable, "manage.py", "import_legacy", "--from", old_url, "--batch-size", "40"]
    try:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as target:
            while process.poll() is None:
                row = target.execute(
                    "SELECT rows_read FROM legacy_import_checkpoints WHERE source_table = 'contacts' AND NOT finished"
                ).fetchone()
                if row and row[0] >= 80:
                    process.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.01)
            process.wait()
            assert process.returncode == -signal.SIGKILL, "the import finished before it could be killed"
            partial = target.execute("SELECT count(*) FROM legacy_ids WHERE source_table = 'contacts'").fetchone()
            assert partial is not None
            assert 0 < partial[0] < TENANTS * CONTACTS
        subprocess.run([*command], cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603
        assert compare(old_url, "contacts", "contacts", {c: c for c in CONTACT_COLUMNS}, {}) == TENANTS * CONTACTS
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM contacts WHERE NOT is_organization")
            assert cursor.fetchone() == (TENANTS * CONTACTS,)
            cursor.execute("SELECT count(*) FROM legacy_import_checkpoints")
            assert cursor.fetchone() == (0,)
        assert compare(old_url, "activities", "activities", {c: c for c in ACTIVITY_COLUMNS}, {}) == TENANTS * 80 - 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA IF EXISTS merge_backups CASCADE")
