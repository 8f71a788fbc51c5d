"""import_legacy on an old-system database built by psql from the schema file, with generated rows."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from rest_framework.test import APIClient

from contacts.merge import merge_module
from legacy_import.mapping import CHOICES, PARKED_KEY, map_value, run_key
from legacy_import.models import ImportCheckpoint
from legacy_import.source import without_password
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
            "saved_filters",
            "legacy_import_impersonation_logs",
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


def user_id(old: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT new_id FROM legacy_ids WHERE source_table = 'auth.users' AND old_id = %s", [old])
        return cursor.fetchone()[0]


DANA, LUIS, DUPLICATE_USER = (f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2, 3))


def saved(n: int) -> str:
    return f"70000000-0000-4000-8000-00000000000{n}"


@pytest.mark.django_db
def test_saved_filters_are_converted_to_trees_or_kept_stale_and_reported(old_url, tmp_path):
    report_file = tmp_path / "report.json"
    text = run(old_url, "--report-json", str(report_file))
    report = json.loads(report_file.read_text())
    filters = new_rows("saved_filters", "saved_filters")
    dana = user_id(DANA)

    # The old flat format: an AND tree, the owner's uuid as the imported user's id.
    storm = filters[saved(1)]
    assert storm["filter_criteria"] == {
        "and": [
            {"field": "stage", "op": "in", "value": ["new", "contacted"]},
            {"field": "assigned_to", "op": "equals", "value": dana},
        ]
    }
    assert (storm["created_by_id"], storm["is_shared"], storm["is_default"], storm["is_stale"]) == (
        dana,
        True,
        True,
        False,
    )
    assert (storm["name"], storm["description"], storm["usage_count"]) == ("Storm leads", "Mine, new or called", 12)
    # A substatus key: the tenant's substatus id.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id FROM status_substatus_configs c JOIN tenants t ON t.id = c.tenant_id "
            "WHERE t.subdomain = 'summit' AND c.entity = 'contact' AND c.key = 'fresh'"
        )
        (fresh,) = cursor.fetchone()
    assert filters[saved(2)]["filter_criteria"] == {"and": [{"field": "substatus", "op": "in", "value": [fresh]}]}
    assert filters[saved(2)]["created_by_id"] == user_id(LUIS)
    # A field Ridgeline does not filter on: imported, stale, its old criteria as they were.
    red = filters[saved(3)]
    assert red["is_stale"] is True
    assert red["filter_criteria"] == {"roof_color": {"operator": "equals", "value": "red"}}
    assert "unknown field 'roof_color' for projects" in red["stale_reason"]
    assert [r["old_id"] for r in report["parked_rows"]] == [saved(3)]
    assert f"saved_filters {saved(3)}: stale, its criteria kept as they were" in text
    # The old system filter takes over the one every Ridgeline tenant starts with.
    system = filters[saved(4)]
    assert (system["is_system"], system["created_by_id"], system["is_shared"], system["usage_count"]) == (
        True,
        None,
        True,
        40,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM saved_filters f JOIN tenants t ON t.id = f.tenant_id "
            "WHERE t.subdomain = 'summit' AND f.name = 'My Active Leads'"
        )
        assert cursor.fetchone() == (1,)
    # Its owner was refused (a duplicate email): refused too, and said why.
    refused = {(r["table"], r["old_id"]): r["reason"] for r in report["refused"]}
    assert refused[("saved_filters", saved(5))] == f"created_by {DUPLICATE_USER} was not imported"
    assert saved(5) not in filters
    # A second default of one user for one entity: an ordinary filter.
    assert filters[saved(6)]["is_default"] is False
    assert filters[saved(6)]["filter_criteria"] == {"and": [{"field": "priority", "op": "equals", "value": "high"}]}
    # A tree already: as it was.
    assert filters[saved(7)]["filter_criteria"] == {"and": [{"field": "type", "op": "in", "value": ["call"]}]}
    # A user's filter named as a system filter the tenant has: renamed, reported.
    assert filters[saved(8)]["name"] == "Hot Leads (Score > 70) (imported)"
    assert filters[saved(8)]["is_system"] is False
    assert "saved_filters.name 'Hot Leads (Score > 70)': mapped to 'Hot Leads (Score > 70) (imported)'" in text
    # Through the API: a converted filter applies, a stale one answers 409 with its reasons.
    client = APIClient()
    client.force_authenticate(get_user_model().objects.get(pk=dana))
    client.credentials(HTTP_X_TENANT="summit")
    response = client.get(f"/api/v1/contacts/?saved_filter={filters[saved(8)]['id']}")
    assert response.status_code == 200, response.content
    scores = [item["lead_score"] for item in response.json()["results"]]
    assert scores
    assert min(scores) > 80
    response = client.get(f"/api/v1/projects/?saved_filter={red['id']}")
    assert response.status_code == 409, response.content
    assert "unknown field 'roof_color' for projects" in response.content.decode()
    assert report["tables"]["saved_filters"] | {"seconds": 0} == {
        "old": 8,
        "new": 7,
        "read": 8,
        "written": 7,
        "skipped": 0,
        "refused": 1,
        "seconds": 0,
    }


@pytest.mark.django_db
def test_a_saved_filters_checkpoint_is_where_the_next_run_continues(old_url, tmp_path):
    run(old_url)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH gone AS (DELETE FROM legacy_ids WHERE source_table = 'saved_filters' AND old_id > %s "
            "RETURNING new_id) DELETE FROM saved_filters WHERE id IN (SELECT new_id FROM gone)",
            [saved(5)],
        )
        assert cursor.rowcount == 3
    # As a run killed after the batch that ended at the fifth filter leaves it.
    ImportCheckpoint.objects.create(
        run_key=run_key(without_password(old_url), []), source_table="saved_filters", last_old_id=saved(5), rows_read=5
    )
    report_file = tmp_path / "report.json"
    run(old_url, "--report-json", str(report_file))
    stats = json.loads(report_file.read_text())["tables"]["saved_filters"]
    assert (stats["read"], stats["written"], stats["new"]) == (3, 3, 7)
    assert set(new_rows("saved_filters", "saved_filters")) == {saved(n) for n in (1, 2, 3, 4, 6, 7, 8)}
    assert not ImportCheckpoint.objects.exists()


@pytest.mark.django_db
def test_impersonation_sessions_are_kept_as_history_not_as_sessions(old_url, tmp_path):
    report_file = tmp_path / "report.json"
    run(old_url, "--report-json", str(report_file))
    logs = new_rows("impersonation_logs", "legacy_import_impersonation_logs")
    ended = logs["80000000-0000-4000-8000-000000000001"]
    assert (ended["admin_user_id"], ended["impersonated_user_id"]) == (user_id(DANA), user_id(LUIS))
    assert (ended["duration_seconds"], ended["ip_address"], ended["user_agent"], ended["reason"], ended["status"]) == (
        1800,
        "10.0.0.1",
        "Mozilla/5.0",
        "Ticket 42",
        "ended",
    )
    # The impersonated user was refused: the old uuid stays, the session stays what it was.
    open_one = logs["80000000-0000-4000-8000-000000000002"]
    assert (open_one["impersonated_user_id"], str(open_one["old_impersonated_user_id"]), open_one["status"]) == (
        None,
        DUPLICATE_USER,
        "active",
    )
    assert logs["80000000-0000-4000-8000-000000000003"]["ip_address"] == "2001:db8::1"
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM impersonation_logs")
        assert cursor.fetchone() == (0,)  # no live session, no invented credential
    stats = json.loads(report_file.read_text())["tables"]["impersonation_logs"]
    assert (stats["old"], stats["new"], stats["refused"]) == (3, 3, 0)


@pytest.mark.django_db
def test_old_tables_the_import_does_not_read_are_counted_in_the_report(tmp_path):
    with old_database("legacy_unread", contacts=110) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE campaigns (id uuid PRIMARY KEY, tenant_id uuid, name text)")
            conn.execute(
                "INSERT INTO campaigns VALUES (gen_random_uuid(), '10000000-0000-4000-8000-000000000001', 'Spring'), "
                "(gen_random_uuid(), '10000000-0000-4000-8000-000000000002', 'Fall')"
            )
            conn.execute("CREATE TABLE filter_configs (id uuid PRIMARY KEY)")
        report_file = tmp_path / "report.json"
        text = run(url, "--tenant", "summit", "--report-json", str(report_file))
    report = json.loads(report_file.read_text())
    assert report["tables"]["campaigns"]["old"] == 1
    assert report["tables"]["campaigns"]["new"] == 0
    assert "filter_configs" not in report["tables"]  # empty: nothing to keep
    assert "public.campaigns: 1 rows not imported" in text


NEW_ORGANIZATION = "39000000-0000-4000-8000-000000000001"
NEW_PROJECT = "49000000-0000-4000-8000-000000000001"


@pytest.mark.django_db
def test_a_second_import_merges_the_new_organizations_and_reversing_restores_both_imports(tmp_path):
    with old_database("legacy_second", contacts=110) as url:
        run(url)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO organizations (id, tenant_id, name, org_type, stage, primary_contact_id) VALUES "
                "(%s, '10000000-0000-4000-8000-000000000001', 'Late Org', 'developer', 'active', "
                "'21000000-0000-4000-8000-000000000010')",
                [NEW_ORGANIZATION],
            )
            conn.execute(
                "INSERT INTO projects (id, tenant_id, organization_id, name) "
                "VALUES (%s, '10000000-0000-4000-8000-000000000001', %s, 'Late job')",
                [NEW_PROJECT, NEW_ORGANIZATION],
            )
        report_file = tmp_path / "report.json"
        run(url, "--report-json", str(report_file))
        organizations, projects = old_rows(url, "organizations"), old_rows(url, "projects")
    report = json.loads(report_file.read_text())
    assert report["tables"]["organizations"]["written"] == 1
    assert any("were folded into merge_backups" in note for note in report["notes"])
    back = {(table, old): new for (table, new), old in old_ids().items()}
    late = back[("organizations", NEW_ORGANIZATION)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT contact_id FROM merged_organizations WHERE organization_id = %s", [late])
        (company,) = cursor.fetchone()
        cursor.execute("SELECT contact_id FROM projects WHERE id = %s", [back[("projects", NEW_PROJECT)]])
        assert cursor.fetchone() == (back[("contacts", "21000000-0000-4000-8000-000000000010")],)
        cursor.execute(
            "SELECT role FROM project_contacts WHERE project_id = %s AND contact_id = %s",
            [back[("projects", NEW_PROJECT)], company],
        )
        assert cursor.fetchall() == [("organization",)]
        # One set of backups holding both merges: reversing restores every organization.
        cursor.execute("SELECT count(*) FROM merge_backups.organizations")
        assert cursor.fetchone() == (TENANTS * 6 + 1,)
        cursor.execute(
            "SELECT organization_id FROM merge_backups.projects WHERE id = %s",
            [back[("projects", "41000000-0000-4000-8000-000000000001")]],
        )
        assert cursor.fetchone() == (back[("organizations", "31000000-0000-4000-8000-000000000001")],)
        cursor.execute(
            "SELECT organization_id, contact_id FROM merge_backups.projects WHERE id = %s",
            [back[("projects", NEW_PROJECT)]],
        )
        assert cursor.fetchone() == (late, None)
        cursor.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'merge_backups%%'")
        assert cursor.fetchall() == [("merge_backups",)]

    # Reversing, as `migrate contacts 0003` does once the legacy table and column are back,
    # restores the organizations of both imports and every linked project's contact.
    data = merge_module(connection, ("contacts", "0006_merge_organizations"))
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE organizations AS SELECT * FROM merge_backups.organizations WITH NO DATA; "
            "ALTER TABLE projects ADD COLUMN organization_id bigint"
        )
        data.unmerge(None, SimpleNamespace(connection=connection))
        cursor.execute("SELECT id, name FROM organizations ORDER BY id")
        restored = dict(cursor.fetchall())
        cursor.execute("SELECT id, organization_id, contact_id FROM projects WHERE organization_id IS NOT NULL")
        linked = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute("SELECT count(*) FROM contacts WHERE is_organization")
        assert cursor.fetchone() == (0,)
    assert restored == {back[("organizations", old)]: org["name"] for old, org in organizations.items()}
    assert linked == {
        back[("projects", old)]: (
            back[("organizations", str(project["organization_id"]))],
            back.get(("contacts", str(project["contact_id"]))),
        )
        for old, project in projects.items()
        if project["organization_id"] and ("projects", old) in back
    }
