"""`import_legacy`'s I/O: batches read from the old database, written with set-based SQL.

Each batch: the source's rows (COPY, binary) land in a temporary staging table of the
source's own column types; rows an earlier run imported are dropped from it (legacy_ids);
stray values are mapped or parked (legacy_import.mapping decides); old ids of references
are resolved through legacy_ids and rows whose references cannot be honoured are refused;
new ids are drawn from the target table's sequence; one INSERT ... SELECT writes the batch
and one more records old id -> new id. The batch, its mapping rows and its checkpoint
commit together, so a run killed at any point continues from its last committed batch.
When a batch's INSERT fails (a constraint of Ridgeline's the old data breaks), the batch is
written again row by row, each in a savepoint, and the failing rows are refused with the
database's message.

Two small tables are decided in Python instead, with the same legacy_ids and checkpoints: the
substatus catalog (a valid catalog is a decision over all of a tenant's rows) and saved
filters (each one's criteria converted and validated as the filters app does, batch by batch).
"""

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import psycopg
from django.core.management.base import OutputWrapper
from django.db import DatabaseError, connection, transaction
from django.db.backends.utils import CursorWrapper
from psycopg import sql

from contacts.merge import merge_module
from filters.language import CatalogField
from legacy_import import source
from legacy_import.mapping import (
    CHOICES,
    ENTITIES,
    PARKED_KEY,
    CatalogRow,
    Mapped,
    Report,
    TenantFilterContext,
    catalog_defaults,
    convert_filter,
    map_value,
)
from legacy_import.models import ImportCheckpoint

BATCH = 5000
EARLIER_BACKUPS = "merge_backups_earlier_import"  # only inside the merge's transaction
LOCK = 7_318_004  # pg_advisory_lock key: one import at a time per target database


class StrictStop(Exception):
    """--strict: a row was refused; the current table is rolled back."""


@dataclass(frozen=True)
class Ref:
    """An old uuid column resolved through legacy_ids into `_<name>` (and `_<name>_tenant`)."""

    column: str
    table: str  # the old table it points at
    must_exist: bool = False  # refuse the row when the referenced row was not imported
    same_tenant: bool = False  # refuse the row when the referenced row is of another tenant
    park: bool = False  # keep the old uuid among the parked values when it does not resolve

    @property
    def into(self) -> str:
        return f"_{self.column}"


@dataclass(frozen=True)
class Table:
    name: str  # the old table (legacy_ids.source_table and the report's name)
    source: str  # its qualified name in the old database
    target: str  # the Ridgeline table its ids are drawn from
    refs: tuple[Ref, ...] = ()
    choices: tuple[str, ...] = ()
    insert: str = ""  # INSERT ... SELECT ... FROM {stage} s WHERE {rows}
    parked_in: str | None = None  # the JSON column parked values go to
    unhomed: tuple[str, ...] = ()  # old columns Ridgeline has no column for: parked when set
    prepare: Callable[["Run", CursorWrapper, str], None] | None = None
    finish: str = ""  # run after the rows are written: SQL over {stage}
    tenant_column: str = "tenant_id"


def _parked(column: str) -> str:
    """The JSON column, with the row's parked values under PARKED_KEY when it has any."""
    return (
        f"CASE WHEN s._parked = jsonb_build_object() THEN COALESCE(s.{column}, jsonb_build_object()) "
        f"ELSE COALESCE(s.{column}, jsonb_build_object()) || jsonb_build_object('{PARKED_KEY}', s._parked) END"
    )


USERS_INSERT = """
INSERT INTO users (id, password, last_login, is_superuser, username, first_name, last_name, email, is_staff,
                   is_active, date_joined)
SELECT s._new_id,
       CASE WHEN s.encrypted_password ~ '^[$]2[abxy][$][0-9][0-9][$]' AND length(s.encrypted_password) = 60
            THEN 'bcrypt$' || s.encrypted_password
            ELSE '!' || md5(random()::text) END,
       s.last_sign_in_at, false,
       CASE WHEN COALESCE(s.email, '') = '' THEN 'legacy-' || s.id ELSE lower(s.email) END,
       left(COALESCE(s.raw_user_meta_data ->> 'first_name',
                     split_part(s.raw_user_meta_data ->> 'full_name', ' ', 1), ''), 150),
       left(COALESCE(s.raw_user_meta_data ->> 'last_name',
                     nullif(substr(s.raw_user_meta_data ->> 'full_name',
                                   length(split_part(s.raw_user_meta_data ->> 'full_name', ' ', 1)) + 2), ''),
                     ''), 150),
       COALESCE(s.email, ''), false, s.banned_until IS NULL OR s.banned_until <= now(), COALESCE(s.created_at, now())
FROM {stage} s WHERE {rows}
"""

TENANTS_INSERT = f"""
INSERT INTO tenants (id, name, subdomain, custom_domain, settings, features, subscription_status,
                     subscription_expires_at, logo_url, primary_color, secondary_color, is_active, created_at,
                     updated_at)
SELECT s._new_id, s.name, s.subdomain, s.custom_domain, {_parked("settings")},
       COALESCE(s.features, jsonb_build_object()),
       COALESCE(s.subscription_status, 'trial'), s.subscription_expires_at, s.logo_url, s.primary_color,
       s.secondary_color, COALESCE(s.is_active, true), COALESCE(s.created_at, now()), COALESCE(s.updated_at, now())
FROM {{stage}} s WHERE {{rows}}
"""

MEMBERSHIPS_INSERT = """
INSERT INTO tenant_users (id, tenant_id, user_id, role, status, joined_at, deactivated_at, deactivated_by_id,
                          deactivated_reason)
SELECT s._new_id, s._tenant, s._user_id, COALESCE(s.role, 'member'), COALESCE(s.status, 'active'),
       COALESCE(s.joined_at, now()), s.deactivated_at, s._deactivated_by, s.deactivated_reason
FROM {stage} s WHERE {rows}
"""

CONTACT_COLUMNS = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "mobile_phone",
    "address_street",
    "address_city",
    "address_state",
    "address_zip",
    "latitude",
    "longitude",
    "source",
    "property_type",
    "roof_type",
    "roof_age",
    "last_inspection_date",
    "property_value",
    "square_footage",
    "stories",
    "insurance_carrier",
    "policy_number",
    "claim_number",
    "deductible",
    "quickbooks_customer_id",
    "sms_opt_in_date",
    "sms_opt_out_date",
    "sms_opt_out_reason",
    "email_opt_out_date",
    "email_opt_out_reason",
    "email_invalid_date",
    "email_invalid_reason",
    "proline_id",
]
CONTACTS_INSERT = f"""
INSERT INTO contacts (id, tenant_id, created_by_id, assigned_to_id, substatus_id, {", ".join(CONTACT_COLUMNS)},
                      type, stage, priority, lead_score, source_details, custom_fields, tags, is_deleted,
                      sms_opt_in, sms_opt_out, email_opt_out, email_invalid, timezone, created_at, updated_at)
SELECT s._new_id, s._tenant, s._created_by, s._assigned_to, s._substatus,
       {", ".join(f"s.{c}" for c in CONTACT_COLUMNS)},
       COALESCE(s.type, 'lead'), COALESCE(s.stage, 'new'), COALESCE(s.priority, 'normal'), COALESCE(s.lead_score, 0),
       COALESCE(s.source_details, jsonb_build_object()), {_parked("custom_fields")}, COALESCE(s.tags, ARRAY[]::text[]),
       COALESCE(s.is_deleted, false), COALESCE(s.sms_opt_in, false), COALESCE(s.sms_opt_out, false),
       COALESCE(s.email_opt_out, false), COALESCE(s.email_invalid, false), COALESCE(s.timezone, ''),
       COALESCE(s.created_at, now()), COALESCE(s.updated_at, now())
FROM {{stage}} s WHERE {{rows}}
"""

ORGANIZATIONS_INSERT = """
INSERT INTO legacy_import_organizations (id, tenant_id, name, org_type, stage, primary_contact_id, address_street,
    address_city, address_state, address_zip, phone, email, website, notes, tags, default_assignee_id, is_deleted,
    created_by_id, created_at, updated_at)
SELECT s._new_id, s._tenant, s.name, s.org_type, s.stage, s._primary_contact_id, s.address_street, s.address_city,
       s.address_state, s.address_zip, s.phone, s.email, s.website, s.notes, s.tags, s._default_assignee, s.is_deleted,
       s._created_by, s.created_at, s.updated_at
FROM {stage} s WHERE {rows}
"""

PROJECT_COLUMNS = [
    "name",
    "project_number",
    "type",
    "estimated_value",
    "approved_value",
    "final_value",
    "materials_cost",
    "labor_cost",
    "overhead_cost",
    "estimated_start",
    "scheduled_start",
    "actual_start",
    "estimated_completion",
    "actual_completion",
    "description",
    "scope_of_work",
    "insurance_approval_amount",
    "quality_score",
    "quickbooks_id",
    "quickbooks_sync_status",
]
PROJECTS_INSERT = f"""
INSERT INTO projects (id, tenant_id, created_by_id, contact_id, substatus_id, {", ".join(PROJECT_COLUMNS)}, status,
                      materials_list, insurance_approved, deductible_collected, supplements, crew_assigned,
                      weather_delays, custom_fields, is_deleted, created_at, updated_at)
SELECT s._new_id, s._tenant, s._created_by, s._contact_id, s._substatus, {", ".join(f"s.{c}" for c in PROJECT_COLUMNS)},
       COALESCE(s.status, 'estimate'), COALESCE(s.materials_list, jsonb_build_array()),
       COALESCE(s.insurance_approved, false), COALESCE(s.deductible_collected, false),
       COALESCE(s.supplements, jsonb_build_array()), COALESCE(s.crew_assigned, jsonb_build_array()),
       COALESCE(s.weather_delays, 0), {_parked("custom_fields")}, COALESCE(s.is_deleted, false),
       COALESCE(s.created_at, now()), COALESCE(s.updated_at, now())
FROM {{stage}} s WHERE {{rows}}
"""

ACTIVITY_COLUMNS = [
    "subtype",
    "subject",
    "content",
    "direction",
    "from_address",
    "to_address",
    "outcome",
    "duration_seconds",
    "recording_url",
    "transcript",
    "scheduled_at",
    "completed_at",
    "reminder_at",
    "external_id",
]
ACTIVITIES_INSERT = f"""
INSERT INTO activities (id, tenant_id, contact_id, project_id, created_by_id, performed_by_id, on_behalf_of_id,
                        type, {", ".join(ACTIVITY_COLUMNS)}, outcome_details, is_impersonated_action, created_at)
SELECT s._new_id, s._tenant, s._contact_id, s._project_id, s._created_by, s._performed_by, s._on_behalf_of,
       s.type, {", ".join(f"s.{c}" for c in ACTIVITY_COLUMNS)}, {_parked("outcome_details")},
       COALESCE(s.is_impersonated_action, false), COALESCE(s.created_at, now())
FROM {{stage}} s WHERE {{rows}}
"""


NON_EMPTY = "email <> ''"

AI_CONVERSATIONS_INSERT = """
INSERT INTO ai_conversations (id, tenant_id, user_id, title, is_active, metadata, created_at, updated_at)
SELECT s._new_id, s._tenant, s._user_id, left(COALESCE(s.title, ''), 255), COALESCE(s.is_active, true),
       COALESCE(s.metadata, jsonb_build_object()), s.created_at, s.updated_at
FROM {stage} s WHERE {rows}
"""

# A message of the user is the conversation's user's; the others (assistant, system, function) no one's.
AI_MESSAGES_INSERT = """
INSERT INTO ai_messages (id, tenant_id, conversation_id, user_id, role, content, function_call, metadata, created_at)
SELECT s._new_id, s._tenant, s._conversation_id, CASE WHEN s.role = 'user' THEN c.user_id END, s.role, s.content,
       s.function_call, COALESCE(s.metadata, jsonb_build_object()), s.created_at
FROM {stage} s JOIN ai_conversations c ON c.id = s._conversation_id WHERE {rows}
"""

# Old impersonation sessions are history, not sessions: see LegacyImpersonationLog.
IMPERSONATION_INSERT = """
INSERT INTO legacy_import_impersonation_logs (id, tenant_id, admin_user_id, impersonated_user_id, old_admin_user_id,
    old_impersonated_user_id, started_at, ended_at, duration_seconds, reason, ip_address, user_agent, status,
    created_at, updated_at)
SELECT s._new_id, s._tenant, s._admin_user_id, s._impersonated_user_id, s.admin_user_id, s.impersonated_user_id,
       s.started_at, s.ended_at, s.duration_seconds, s.reason, s.ip_address, s.user_agent, s.status, s.created_at,
       s.updated_at
FROM {stage} s WHERE {rows}
"""


def _prepare_messages(run: "Run", cursor: CursorWrapper, stage: str) -> None:
    """A message's tenant is its conversation's."""
    cursor.execute(f"UPDATE {stage} SET _tenant = _conversation_id_tenant")


def _prepare_users(run: "Run", cursor: CursorWrapper, stage: str) -> None:
    """Two users with one email (case-insensitive) are not merged: the later one is refused."""
    run.refuse_where(
        cursor,
        stage,
        "s.email <> '' AND (EXISTS (SELECT 1 FROM users u WHERE lower(u.email) = lower(s.email) AND u.email <> '') "
        f"OR s.id IN ({_later_duplicates(stage, 'lower(email)', NON_EMPTY)}))",
        "its email '|| s.email ||' is already the email of another user (case-insensitive): not merged, "
        "import or rename it by hand",
    )


def _later_duplicates(stage: str, key: str, where: str) -> str:
    """The ids of the staged rows whose `key` an earlier staged row (by old id) already has."""
    return (
        f"SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY {key} ORDER BY id) AS rank "
        f"FROM {stage} WHERE {where}) ranked WHERE rank > 1"
    )


def _prepare_tenants(run: "Run", cursor: CursorWrapper, stage: str) -> None:
    run.refuse_where(
        cursor,
        stage,
        "EXISTS (SELECT 1 FROM tenants t WHERE t.subdomain = s.subdomain)",
        "subdomain '|| s.subdomain ||' is taken by a tenant Ridgeline already has",
    )


def _substatus(entity: str, status: str) -> Callable[["Run", CursorWrapper, str], None]:
    """Resolve the old substatus value in the tenant's catalog; park it when the catalog lacks it."""

    def prepare(run: "Run", cursor: CursorWrapper, stage: str) -> None:
        cursor.execute(
            f"UPDATE {stage} s SET _substatus = c.id FROM status_substatus_configs c "
            f"WHERE c.tenant_id = s._tenant AND c.entity = %s AND c.status = s.{status} AND c.key = s.substatus",
            [entity],
        )
        cursor.execute(
            f"SELECT substatus, count(*) FROM {stage} WHERE substatus IS NOT NULL AND _substatus IS NULL GROUP BY 1"
        )
        for raw, rows in cursor.fetchall():
            run.report.value(run.table.name, "substatus", raw, Mapped(None, parked=True), rows)
        cursor.execute(
            f"UPDATE {stage} SET _parked = _parked || jsonb_build_object('substatus', substatus) "
            "WHERE substatus IS NOT NULL AND _substatus IS NULL"
        )

    return prepare


def _prepare_contacts(run: "Run", cursor: CursorWrapper, stage: str) -> None:
    _substatus("contact", "stage")(run, cursor, stage)
    # Ridgeline's email rule is case-insensitive among live people; the old one was not.
    live = "email <> '' AND NOT COALESCE(is_deleted, false)"
    # The contacts side repeats contacts_email_unique_per_tenant's predicate, so that index answers.
    duplicate = (
        "s.email <> '' AND NOT COALESCE(s.is_deleted, false) AND ("
        "EXISTS (SELECT 1 FROM contacts c WHERE lower(c.email) = lower(s.email) AND c.tenant_id = s._tenant "
        "AND NOT c.is_deleted AND NOT c.is_organization AND c.email IS NOT NULL "
        "AND NOT (c.email = '' AND c.email IS NOT NULL)) "
        f"OR s.id IN ({_later_duplicates(stage, 'tenant_id, lower(email)', live)}))"
    )
    cursor.execute(f"SELECT count(*) FROM {stage} s WHERE {duplicate}")
    (rows,) = cursor.fetchone()
    if rows:
        run.report.value("contacts", "email", "(another live contact's, case-insensitive)", Mapped(None, True), rows)
        cursor.execute(
            f"UPDATE {stage} s SET _parked = s._parked || jsonb_build_object('email', s.email), email = NULL "
            f"WHERE {duplicate}"
        )


def _prepare_organizations(run: "Run", cursor: CursorWrapper, stage: str) -> None:
    """Legacy organization ids (bigint) follow the highest the target knows."""
    cursor.execute(
        f"UPDATE {stage} s SET _new_id = n.base + n.row FROM ("
        "SELECT id, row_number() OVER (ORDER BY id) AS row, GREATEST("
        "(SELECT COALESCE(max(organization_id), 0) FROM merged_organizations), "
        f"(SELECT COALESCE(max(id), 0) FROM legacy_import_organizations)) AS base FROM {stage}) n WHERE n.id = s.id"
    )


def _prepare_projects(run: "Run", cursor: CursorWrapper, stage: str) -> None:
    _substatus("project", "status")(run, cursor, stage)


USER_REFS = ("created_by",)

TABLES: tuple[Table, ...] = (
    Table("auth.users", "auth.users", "users", insert=USERS_INSERT, prepare=_prepare_users, tenant_column=""),
    Table(
        "tenants",
        "public.tenants",
        "tenants",
        choices=("subscription_status",),
        insert=TENANTS_INSERT,
        parked_in="settings",
        prepare=_prepare_tenants,
        tenant_column="",
    ),
    Table(
        "tenant_users",
        "public.tenant_users",
        "tenant_users",
        refs=(
            Ref("user_id", "auth.users", must_exist=True),
            Ref("deactivated_by", "auth.users"),
        ),
        choices=("role",),
        insert=MEMBERSHIPS_INSERT,
    ),
    Table(
        "contacts",
        "public.contacts",
        "contacts",
        refs=(Ref("created_by", "auth.users", park=True), Ref("assigned_to", "auth.users", park=True)),
        choices=("type", "stage", "priority"),
        insert=CONTACTS_INSERT,
        parked_in="custom_fields",
        prepare=_prepare_contacts,
    ),
    Table(
        "organizations",
        "public.organizations",
        "legacy_import_organizations",
        refs=(
            Ref("primary_contact_id", "contacts", must_exist=True, same_tenant=True),
            Ref("default_assignee", "auth.users"),
            Ref("created_by", "auth.users"),
        ),
        insert=ORGANIZATIONS_INSERT,
        prepare=_prepare_organizations,
    ),
    Table(
        "projects",
        "public.projects",
        "projects",
        refs=(
            Ref("contact_id", "contacts", must_exist=True, same_tenant=True),
            Ref("organization_id", "organizations", must_exist=True, same_tenant=True),
            Ref("created_by", "auth.users", park=True),
        ),
        choices=("status", "type"),
        insert=PROJECTS_INSERT,
        parked_in="custom_fields",
        unhomed=("profit_margin",),
        prepare=_prepare_projects,
        finish=(
            "INSERT INTO legacy_import_project_organizations (project_id, organization_id) "
            "SELECT s._new_id, s._organization_id FROM {stage} s WHERE s._organization_id IS NOT NULL"
        ),
    ),
    Table(
        "activities",
        "public.activities",
        "activities",
        refs=(
            Ref("contact_id", "contacts", must_exist=True, same_tenant=True),
            Ref("project_id", "projects", must_exist=True, same_tenant=True),
            Ref("created_by", "auth.users", park=True),
            Ref("performed_by", "auth.users", park=True),
            Ref("on_behalf_of", "auth.users", park=True),
        ),
        choices=("type", "direction"),
        insert=ACTIVITIES_INSERT,
        parked_in="outcome_details",
    ),
    Table(
        "ai_conversations",
        "public.ai_conversations",
        "ai_conversations",
        refs=(Ref("user_id", "auth.users", must_exist=True),),
        insert=AI_CONVERSATIONS_INSERT,
    ),
    Table(
        "ai_messages",
        "public.ai_messages",
        "ai_messages",
        refs=(Ref("conversation_id", "ai_conversations", must_exist=True),),
        insert=AI_MESSAGES_INSERT,
        prepare=_prepare_messages,
        tenant_column="",
    ),
    Table(
        "impersonation_logs",
        "public.impersonation_logs",
        "legacy_import_impersonation_logs",
        refs=(Ref("admin_user_id", "auth.users"), Ref("impersonated_user_id", "auth.users")),
        insert=IMPERSONATION_INSERT,
    ),
)
CATALOG = "status_substatus_configs"
SAVED_FILTERS = "saved_filters"
RENAMED = " (imported)"  # after the name of an old saved filter whose name the tenant already uses
# A saved filter's entity -> the substatus entity its substatus conditions name.
FILTER_SUBSTATUS_ENTITIES = {"contacts": "contact", "projects": "project", "pipeline": "project"}
ORDER = (
    "auth.users",
    "tenants",
    "tenant_users",
    CATALOG,
    "contacts",
    "organizations",
    "projects",
    "activities",
    "ai_conversations",
    "ai_messages",
    SAVED_FILTERS,
    "impersonation_logs",
)


@dataclass
class Run:
    """One import run: the source, the target's checkpoints for it, and its report."""

    source: psycopg.Connection
    run_key: str
    tenants: list[str] | None  # old tenant ids, None for all
    report: Report
    strict: bool = False
    batch: int = BATCH
    progress: OutputWrapper | None = None
    table: Table = field(default=TABLES[0])

    def scope(self, table: str) -> sql.Composable:
        if self.tenants is None:
            return sql.SQL("true")
        ids = sql.SQL("{}::uuid[]").format(sql.Literal(self.tenants))
        if table == "auth.users":
            return sql.SQL("id IN (SELECT user_id FROM public.tenant_users WHERE tenant_id = ANY({}))").format(ids)
        if table == "public.tenants":
            return sql.SQL("id = ANY({})").format(ids)
        if table == "public.ai_messages":
            return sql.SQL(
                "conversation_id IN (SELECT id FROM public.ai_conversations WHERE tenant_id = ANY({}))"
            ).format(ids)
        return sql.SQL("tenant_id = ANY({})").format(ids)

    def say(self, line: str) -> None:
        if self.progress is not None:
            self.progress.write(line)

    def refuse_where(self, cursor: CursorWrapper, stage: str, condition: str, reason: str) -> None:
        """Refuse (report, and drop from the batch) the staged rows matching `condition`.

        `reason` is the inside of a SQL string literal: `'|| expression ||'` splices a value in.
        """
        cursor.execute(f"DELETE FROM {stage} s WHERE {condition} RETURNING s.id::text, '{reason}'")
        for old_id, why in cursor.fetchall():
            self.refuse(old_id, why)

    def refuse(self, old_id: str, reason: str) -> None:
        self.report.table(self.table.name).refused += 1
        self.report.refuse(self.table.name, old_id, reason)
        if self.strict:
            raise StrictStop(f"{self.table.name} {old_id}: {reason}")

    # -- one table ---------------------------------------------------------------------------

    def checkpoint(self, name: str) -> ImportCheckpoint:
        checkpoint, _ = ImportCheckpoint.objects.get_or_create(run_key=self.run_key, source_table=name)
        return checkpoint

    def import_table(self, table: Table) -> None:
        self.table = table
        checkpoint = self.checkpoint(table.name)
        stats = self.report.table(table.name)
        if checkpoint.finished:
            self.say(f"{table.name:<26} done by the interrupted run")
            return
        stage = f"legacy_stage_{table.name.replace('.', '_')}"
        with connection.cursor() as cursor:
            types = source.column_types(self.source, table.source)
            cursor.execute(f"DROP TABLE IF EXISTS pg_temp.{stage}")
            cursor.execute(
                f"CREATE TEMP TABLE {stage} ("
                + ", ".join(f"{column} {kind}" for column, kind in types)
                + ", _new_id bigint, _tenant bigint, _parked jsonb NOT NULL DEFAULT '{}', _substatus bigint"
                + "".join(f", {ref.into} bigint, {ref.into}_tenant bigint" for ref in table.refs)
                + ")"
            )
        began = time.monotonic()
        with transaction.atomic() if self.strict else nullcontext():
            while True:
                with transaction.atomic():
                    read = self.import_batch(table, stage, checkpoint)
                stats.seconds = time.monotonic() - began
                if read:
                    self.say(stats.progress())
                if read < self.batch:
                    break
            checkpoint.finished = True
            checkpoint.save(update_fields=["finished"])

    def import_batch(self, table: Table, stage: str, checkpoint: ImportCheckpoint) -> int:
        stats = self.report.table(table.name)
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {stage}")
            query = source.batch_query(
                table.source,
                self.scope(table.source),
                str(checkpoint.last_old_id) if checkpoint.last_old_id else None,
                self.batch,
            )
            copy_in = f"COPY {stage} ({', '.join(source.COLUMNS[table.source])}) FROM STDIN (FORMAT BINARY)"
            with self.source.cursor().copy(query) as rows_in, cursor.copy(copy_in) as rows_out:
                for block in rows_in:
                    rows_out.write(block)
            cursor.execute(f"SELECT count(*), (SELECT id FROM {stage} ORDER BY id DESC LIMIT 1) FROM {stage}")
            read, last = cursor.fetchone()
            if not read:
                return 0
            cursor.execute(f"ANALYZE {stage}")  # temporary tables are never analyzed on their own
            stats.read += read
            cursor.execute(
                f"DELETE FROM {stage} s USING legacy_ids m WHERE m.source_table = %s AND m.old_id = s.id", [table.name]
            )
            skipped = cursor.rowcount
            stats.skipped += skipped
            self.resolve(cursor, table, stage)
            self.map_values(cursor, table, stage)
            if table.prepare is not None:
                table.prepare(self, cursor, stage)
            written = self.write(cursor, table, stage)
            stats.written += written
            checkpoint.last_old_id = last
            checkpoint.rows_read += read
            checkpoint.rows_written += written
            checkpoint.rows_skipped += skipped
            checkpoint.rows_refused = stats.refused
            checkpoint.save()
        return read

    def resolve(self, cursor: CursorWrapper, table: Table, stage: str) -> None:
        if table.tenant_column:
            cursor.execute(
                f"UPDATE {stage} s SET _tenant = m.new_id FROM legacy_ids m "
                f"WHERE m.source_table = 'tenants' AND m.old_id = s.{table.tenant_column}"
            )
            self.refuse_where(cursor, stage, "s._tenant IS NULL", "its tenant '|| s.tenant_id ||' was not imported")
        for ref in table.refs:
            cursor.execute(
                f"UPDATE {stage} s SET {ref.into} = m.new_id, {ref.into}_tenant = m.tenant_id FROM legacy_ids m "
                f"WHERE m.source_table = %s AND m.old_id = s.{ref.column}",
                [ref.table],
            )
            if ref.must_exist:
                self.refuse_where(
                    cursor,
                    stage,
                    f"s.{ref.column} IS NOT NULL AND s.{ref.into} IS NULL",
                    f"{ref.column} '|| s.{ref.column} ||' was not imported",
                )
            if ref.same_tenant:
                self.refuse_where(
                    cursor,
                    stage,
                    f"s.{ref.into}_tenant <> s._tenant",
                    f"{ref.column} '|| s.{ref.column} ||' belongs to another tenant",
                )
            if ref.park:
                cursor.execute(
                    f"UPDATE {stage} s SET _parked = s._parked || jsonb_build_object('{ref.column}', s.{ref.column}) "
                    f"WHERE s.{ref.column} IS NOT NULL AND s.{ref.into} IS NULL"
                )
        for column in table.unhomed:
            cursor.execute(
                f"UPDATE {stage} s SET _parked = s._parked || jsonb_build_object('{column}', s.{column}) "
                f"WHERE s.{column} IS NOT NULL"
            )

    def map_values(self, cursor: CursorWrapper, table: Table, stage: str) -> None:
        for column in table.choices:
            choice = CHOICES[(table.name, column)]
            cursor.execute(
                f"SELECT {column}, count(*) FROM {stage} WHERE {column} IS NOT NULL "
                f"AND NOT ({column} = ANY(%s)) GROUP BY 1",
                [list(choice.values)],
            )
            for raw, rows in cursor.fetchall():
                mapped = map_value(choice, raw)
                self.report.value(table.name, column, raw, mapped, rows)
                parked = (
                    f", _parked = _parked || jsonb_build_object('{column}', {column})"
                    if mapped.parked and table.parked_in
                    else ""
                )
                cursor.execute(f"UPDATE {stage} SET {column} = %s{parked} WHERE {column} = %s", [mapped.value, raw])

    def write(self, cursor: CursorWrapper, table: Table, stage: str) -> int:
        if table.name != "organizations":
            cursor.execute(f"UPDATE {stage} SET _new_id = nextval(pg_get_serial_sequence(%s, 'id'))", [table.target])
        try:
            with transaction.atomic():
                cursor.execute(table.insert.format(stage=stage, rows="true"))
        except DatabaseError:
            cursor.execute(f"SELECT id::text FROM {stage} ORDER BY id")
            for (old_id,) in cursor.fetchall():
                try:
                    with transaction.atomic():
                        cursor.execute(table.insert.format(stage=stage, rows="s.id = %s"), [old_id])
                except DatabaseError as error:
                    cursor.execute(f"DELETE FROM {stage} WHERE id = %s", [old_id])
                    self.refuse(old_id, str(error).splitlines()[0])
        tenant = "s._new_id" if table.name == "tenants" else "s._tenant"
        cursor.execute(
            f"INSERT INTO legacy_ids (source_table, old_id, new_id, tenant_id) "
            f"SELECT %s, s.id, s._new_id, {tenant} FROM {stage} s",
            [table.name],
        )
        written = cursor.rowcount
        if table.finish:
            cursor.execute(table.finish.format(stage=stage))
        return written

    # -- the substatus catalog: small, decided in Python as a whole ---------------------------

    def import_catalog(self) -> None:
        self.table = Table(CATALOG, f"public.{CATALOG}", CATALOG)
        checkpoint = self.checkpoint(CATALOG)
        stats = self.report.table(CATALOG)
        if checkpoint.finished:
            return
        began = time.monotonic()
        columns = source.COLUMNS[self.table.source]
        query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY id").format(
            sql.SQL(", ").join(
                sql.SQL("{}::text").format(sql.Identifier(c)) if c == "id" else sql.Identifier(c) for c in columns
            ),
            sql.Identifier("public", CATALOG),
            self.scope(self.table.source),
        )
        rows = [dict(zip(columns, row, strict=True)) for row in self.source.execute(query)]
        stats.read = len(rows)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT old_id::text, new_id FROM legacy_ids WHERE source_table IN ('tenants', 'auth.users', %s)",
                [CATALOG],
            )
            known = dict(cursor.fetchall())
            kept: list[tuple[dict[str, Any], CatalogRow]] = []
            for row in rows:
                entity = ENTITIES.get(row["entity_type"])
                if str(row["tenant_id"]) not in known:
                    self.refuse(row["id"], f"its tenant {row['tenant_id']} was not imported")
                    continue
                if entity is None:
                    self.refuse(row["id"], f"entity {row['entity_type']} has no substatuses in Ridgeline")
                    continue
                status_choice = CHOICES[(row["entity_type"], "stage" if entity == "contact" else "status")]
                status = map_value(status_choice, row["status_value"])
                if status.parked:
                    self.refuse(row["id"], f"status {row['status_value']!r} is not a {entity} status")
                    continue
                if status.value != row["status_value"]:
                    self.report.value(CATALOG, "status_value", row["status_value"], status, 1)
                kept.append(
                    (
                        row,
                        CatalogRow(
                            row["id"],
                            str(row["tenant_id"]),
                            entity,
                            status.value or "",
                            row["substatus_value"],
                            row["display_order"] or 0,
                            bool(row["is_default"]),
                            row["is_active"] is not False,
                        ),
                    )
                )
            new = [(row, item) for row, item in kept if item.old_id not in known]
            stats.skipped = len(kept) - len(new)
            for row, item in new:
                self.write_config(cursor, row, item, known)
            stats.written = len(new)
            touched = {(item.tenant, item.entity, item.status) for _, item in new}
            for decision in catalog_defaults(item for _, item in kept):
                if (decision.tenant, decision.entity, decision.status) not in touched:
                    continue
                tenant = known[decision.tenant]
                cursor.execute(
                    "UPDATE status_substatus_configs SET is_default = false "
                    "WHERE tenant_id = %s AND entity = %s AND status = %s AND is_default",
                    [tenant, decision.entity, decision.status],
                )
                cursor.execute(
                    "UPDATE status_substatus_configs SET is_default = true, is_active = true WHERE id = %s",
                    [known[decision.default_old_id]],
                )
                self.report.notes.append(f"substatus catalog of tenant {decision.tenant}: {decision.describe()}")
            for row, item in new:
                self.link_transition(cursor, row, item, known)
            checkpoint.finished = True
            checkpoint.save(update_fields=["finished"])
        stats.seconds = time.monotonic() - began
        self.say(stats.progress())

    def write_config(self, cursor: CursorWrapper, row: dict[str, Any], item: CatalogRow, known: dict[str, int]) -> None:
        """Insert the config, or take over the tenant's default-catalog row with the same key."""
        values = [
            row["substatus_label"][:100],
            row["substatus_description"] or "",
            (row["color"] or "")[:7],
            (row["icon"] or "")[:50],
            max(item.display_order, 0),
            item.is_active,
            bool(row["is_terminal"]),
        ]
        tenant = known[item.tenant]
        cursor.execute(
            "UPDATE status_substatus_configs SET label = %s, description = %s, color = %s, icon = %s, position = %s, "
            "is_active = %s OR is_default, is_terminal = %s AND auto_transition_to_id IS NULL, updated_at = now() "
            "WHERE tenant_id = %s AND entity = %s AND status = %s AND key = %s RETURNING id",
            [*values, tenant, item.entity, item.status, item.key],
        )
        found = cursor.fetchone()
        if found is None:
            cursor.execute(
                "INSERT INTO status_substatus_configs (tenant_id, entity, status, key, label, description, color, "
                "icon, position, is_active, is_terminal, is_default, created_by_id, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, false, %s, %s, %s) RETURNING id",
                [
                    tenant,
                    item.entity,
                    item.status,
                    item.key[:50],
                    *values,
                    known.get(str(row["created_by"])),
                    row["created_at"],
                    row["updated_at"],
                ],
            )
            found = cursor.fetchone()
        known[item.old_id] = found[0]
        cursor.execute(
            "INSERT INTO legacy_ids (source_table, old_id, new_id, tenant_id) VALUES (%s, %s, %s, %s)",
            [CATALOG, item.old_id, found[0], tenant],
        )

    def link_transition(
        self, cursor: CursorWrapper, row: dict[str, Any], item: CatalogRow, known: dict[str, int]
    ) -> None:
        target, hours = row["auto_transition_to"], row["auto_transition_delay_hours"]
        if not target:
            return
        cursor.execute(
            "UPDATE status_substatus_configs c SET auto_transition_to_id = t.id, auto_transition_delay_hours = %s "
            "FROM status_substatus_configs t WHERE c.id = %s AND NOT c.is_terminal AND %s >= 1 "
            "AND t.tenant_id = c.tenant_id AND t.entity = c.entity AND t.status = c.status AND t.key = %s "
            "AND t.id <> c.id",
            [hours, known[item.old_id], hours or 0, target],
        )
        if cursor.rowcount == 0:
            self.report.notes.append(
                f"substatus {item.old_id} ({item.entity} {item.status} {item.key}): automatic transition to "
                f"{target!r} after {hours} h not kept (no such substatus in its status, a terminal one, or no delay)"
            )

    # -- saved filters: each one's criteria converted and validated in Python, batch by batch --

    def import_saved_filters(self) -> None:
        self.table = Table(SAVED_FILTERS, f"public.{SAVED_FILTERS}", SAVED_FILTERS)
        checkpoint = self.checkpoint(SAVED_FILTERS)
        stats = self.report.table(SAVED_FILTERS)
        if checkpoint.finished:
            self.say(f"{SAVED_FILTERS:<26} done by the interrupted run")
            return
        began = time.monotonic()
        columns = source.COLUMNS[self.table.source]
        texts = {"id", "tenant_id", "created_by"}
        with transaction.atomic() if self.strict else nullcontext():
            while True:
                scope = self.scope(self.table.source)
                if checkpoint.last_old_id:
                    scope = sql.SQL("({}) AND id > {}").format(scope, sql.Literal(str(checkpoint.last_old_id)))
                query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY id LIMIT {}").format(
                    sql.SQL(", ").join(
                        sql.SQL("{}::text").format(sql.Identifier(c)) if c in texts else sql.Identifier(c)
                        for c in columns
                    ),
                    sql.Identifier("public", SAVED_FILTERS),
                    scope,
                    sql.Literal(self.batch),
                )
                rows = [dict(zip(columns, row, strict=True)) for row in self.source.execute(query)]
                if not rows:
                    break
                with transaction.atomic(), connection.cursor() as cursor:
                    written, skipped = self.saved_filter_batch(cursor, rows)
                    stats.read += len(rows)
                    stats.written += written
                    stats.skipped += skipped
                    checkpoint.last_old_id = rows[-1]["id"]
                    checkpoint.rows_read += len(rows)
                    checkpoint.rows_written += written
                    checkpoint.rows_skipped += skipped
                    checkpoint.rows_refused = stats.refused
                    checkpoint.save()
                stats.seconds = time.monotonic() - began
                self.say(stats.progress())
                if len(rows) < self.batch:
                    break
            checkpoint.finished = True
            checkpoint.save(update_fields=["finished"])

    def saved_filter_batch(self, cursor: CursorWrapper, rows: list[dict[str, Any]]) -> tuple[int, int]:
        """Write one batch of old saved filters; (written, skipped as imported before)."""
        cursor.execute(
            "SELECT old_id::text FROM legacy_ids WHERE source_table = %s AND old_id = ANY(%s::uuid[])",
            [SAVED_FILTERS, [row["id"] for row in rows]],
        )
        done = {old_id for (old_id,) in cursor.fetchall()}
        cursor.execute(
            "SELECT source_table, old_id::text, new_id FROM legacy_ids WHERE source_table = 'auth.users' "
            "OR (source_table = 'tenants' AND old_id = ANY(%s::uuid[]))",
            [list({row["tenant_id"] for row in rows})],
        )
        known: dict[tuple[str, str], int] = {(table, old): new for table, old, new in cursor.fetchall()}
        users = {old: new for (table, old), new in known.items() if table == "auth.users"}
        contexts: dict[tuple[int, str], TenantFilterContext] = {}
        written = 0
        for row in rows:
            if row["id"] in done:
                continue
            tenant = known.get(("tenants", row["tenant_id"]))
            if tenant is None:
                self.refuse(row["id"], f"its tenant {row['tenant_id']} was not imported")
                continue
            owner = users.get(row["created_by"])
            if owner is None and not row["is_system"]:
                self.refuse(row["id"], f"created_by {row['created_by']} was not imported")
                continue
            key = (tenant, row["entity_type"])
            if key not in contexts:
                contexts[key] = self.filter_context(cursor, tenant, row["entity_type"], users)
            new_id = self.write_saved_filter(cursor, row, tenant, owner, contexts[key])
            if new_id is None:
                continue
            cursor.execute(
                "INSERT INTO legacy_ids (source_table, old_id, new_id, tenant_id) VALUES (%s, %s, %s, %s)",
                [SAVED_FILTERS, row["id"], new_id, tenant],
            )
            written += 1
        return written, len(done)

    def filter_context(
        self, cursor: CursorWrapper, tenant: int, entity_type: str, users: dict[str, int]
    ) -> TenantFilterContext:
        cursor.execute(
            "SELECT id, field_name, field_label, field_type, is_active FROM filter_configs "
            "WHERE tenant_id = %s AND entity_type = %s",
            [tenant, entity_type],
        )
        catalog = {row[1]: CatalogField(*row) for row in cursor.fetchall()}
        cursor.execute("SELECT user_id FROM tenant_users WHERE tenant_id = %s", [tenant])
        members = frozenset(user_id for (user_id,) in cursor.fetchall())
        substatuses: dict[str, list[int]] = {}
        entity = FILTER_SUBSTATUS_ENTITIES.get(entity_type)
        if entity is not None:
            cursor.execute(
                "SELECT key, id FROM status_substatus_configs WHERE tenant_id = %s AND entity = %s ORDER BY id",
                [tenant, entity],
            )
            for key, substatus_id in cursor.fetchall():
                substatuses.setdefault(key, []).append(substatus_id)
        return TenantFilterContext(catalog=catalog, users=users, members=members, substatuses=substatuses)

    def write_saved_filter(
        self, cursor: CursorWrapper, row: dict[str, Any], tenant: int, owner: int | None, context: TenantFilterContext
    ) -> int | None:
        """Insert the filter (a system one takes over the tenant's default of the same name); its new id.

        Criteria that do not convert are kept as they were, the filter marked stale with the
        reasons: it stays listed, applying it answers 409 with them, and saving a valid tree
        over it clears the mark (filters.services). None when the row is refused.
        """
        old_id = row["id"]
        tree, errors = convert_filter(row["filter_criteria"], row["entity_type"], context)
        stale = bool(errors)
        reason = ""
        if stale:
            tree = row["filter_criteria"]
            reason = ("the old system's criteria did not convert: " + "; ".join(errors))[:300]
            self.report.park_row(SAVED_FILTERS, old_id, "stale, its criteria kept as they were: " + "; ".join(errors))
        system = bool(row["is_system"])
        default = bool(row["is_default"]) and not system
        if default:
            cursor.execute(
                "SELECT 1 FROM saved_filters WHERE tenant_id = %s AND created_by_id = %s AND entity_type = %s "
                "AND is_default",
                [tenant, owner, row["entity_type"]],
            )
            if cursor.fetchone() is not None:
                default = False
                self.report.notes.append(
                    f"saved filter {old_id}: not its owner's default for {row['entity_type']} (an earlier one is)"
                )
        values = [
            row["description"] or "",
            json.dumps(tree),
            None if system else owner,
            True if system else bool(row["is_shared"]),
            default,
            system,
            stale,
            reason,
            max(row["usage_count"] or 0, 0),
            row["last_used_at"],
            row["created_at"],
            row["updated_at"],
        ]
        try:
            with transaction.atomic():
                if system:
                    cursor.execute(
                        "UPDATE saved_filters SET description = %s, filter_criteria = %s, created_by_id = %s, "
                        "is_shared = %s, is_default = %s, is_system = %s, is_stale = %s, stale_reason = %s, "
                        "usage_count = %s, last_used_at = %s, created_at = %s, updated_at = %s "
                        "WHERE tenant_id = %s AND entity_type = %s AND name = %s AND is_system "
                        "AND NOT EXISTS (SELECT 1 FROM legacy_ids m WHERE m.source_table = 'saved_filters' "
                        "AND m.new_id = saved_filters.id) RETURNING id",
                        [*values, tenant, row["entity_type"], row["name"]],
                    )
                    found = cursor.fetchone()
                    if found is not None:
                        self.report.notes.append(
                            f"saved filter {old_id} ({row['entity_type']} {row['name']!r}): took over Ridgeline's "
                            "system filter of the same name"
                        )
                        return int(found[0])
                name = self.saved_filter_name(cursor, row, tenant)
                cursor.execute(
                    "INSERT INTO saved_filters (tenant_id, entity_type, name, description, filter_criteria, "
                    "created_by_id, is_shared, is_default, is_system, is_stale, stale_reason, usage_count, "
                    "last_used_at, created_at, updated_at, sort, columns, is_active) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '', '[]', true) RETURNING id",
                    [tenant, row["entity_type"], name, *values],
                )
                return int(cursor.fetchone()[0])
        except DatabaseError as error:
            self.refuse(old_id, str(error).splitlines()[0])
            return None

    def saved_filter_name(self, cursor: CursorWrapper, row: dict[str, Any], tenant: int) -> str:
        """The old name, unless Ridgeline's 100 characters or a filter the tenant already has forbid it."""
        name = row["name"][:100]
        cursor.execute(
            "SELECT 1 FROM saved_filters WHERE tenant_id = %s AND entity_type = %s AND name = %s",
            [tenant, row["entity_type"], name],
        )
        if cursor.fetchone() is not None:
            name = f"{row['name'][: 100 - len(RENAMED)]}{RENAMED}"
        if name != row["name"]:
            self.report.value(SAVED_FILTERS, "name", row["name"], Mapped(name, parked=False), 1)
        return name

    # -- after the tables --------------------------------------------------------------------

    def link_parents(self) -> None:
        """Sub-projects point at their parent once every project of the run is in."""
        scope = self.scope("public.projects")
        query = sql.SQL(
            "COPY (SELECT id, parent_project_id FROM public.projects WHERE ({}) AND parent_project_id IS NOT NULL) "
            "TO STDOUT (FORMAT BINARY)"
        ).format(scope)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS pg_temp.legacy_parents")
            cursor.execute("CREATE TEMP TABLE legacy_parents (id uuid, parent uuid)")
            with (
                self.source.cursor().copy(query) as rows_in,
                cursor.copy("COPY legacy_parents FROM STDIN (FORMAT BINARY)") as rows_out,
            ):
                for block in rows_in:
                    rows_out.write(block)
            cursor.execute(
                "UPDATE projects p SET parent_project_id = mp.new_id FROM legacy_parents l "
                "JOIN legacy_ids m ON m.source_table = 'projects' AND m.old_id = l.id "
                "JOIN legacy_ids mp ON mp.source_table = 'projects' AND mp.old_id = l.parent "
                "WHERE p.id = m.new_id AND mp.tenant_id = m.tenant_id "
                "AND p.parent_project_id IS DISTINCT FROM mp.new_id"
            )
            if cursor.rowcount:
                self.report.notes.append(f"{cursor.rowcount} sub-projects linked to their parent project")
            # A parent that was refused (or is of another tenant): the old id is parked.
            cursor.execute(
                f"UPDATE projects p SET custom_fields = p.custom_fields || jsonb_build_object('{PARKED_KEY}', "
                f"COALESCE(p.custom_fields -> '{PARKED_KEY}', jsonb_build_object()) "
                "|| jsonb_build_object('parent_project_id', l.parent)) "
                "FROM legacy_parents l JOIN legacy_ids m ON m.source_table = 'projects' AND m.old_id = l.id "
                "WHERE p.id = m.new_id AND p.parent_project_id IS NULL "
                f"AND NOT COALESCE(p.custom_fields -> '{PARKED_KEY}' ? 'parent_project_id', false)"
            )
            if cursor.rowcount:
                self.report.notes.append(
                    f"{cursor.rowcount} sub-projects whose parent was not imported: its old id is parked"
                )

    def restore_conversation_times(self) -> None:
        """Importing messages touches their conversation (its roll-up trigger): the old updated_at wins."""
        query = sql.SQL(
            "COPY (SELECT id, updated_at FROM public.ai_conversations WHERE {}) TO STDOUT (FORMAT BINARY)"
        ).format(self.scope("public.ai_conversations"))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS pg_temp.legacy_conversation_times")
            cursor.execute("CREATE TEMP TABLE legacy_conversation_times (id uuid, updated_at timestamptz)")
            with (
                self.source.cursor().copy(query) as rows_in,
                cursor.copy("COPY legacy_conversation_times FROM STDIN (FORMAT BINARY)") as rows_out,
            ):
                for block in rows_in:
                    rows_out.write(block)
            cursor.execute(
                "UPDATE ai_conversations c SET updated_at = l.updated_at FROM legacy_conversation_times l "
                "JOIN legacy_ids m ON m.source_table = 'ai_conversations' AND m.old_id = l.id "
                "WHERE c.id = m.new_id AND c.updated_at IS DISTINCT FROM l.updated_at"
            )

    def merge(self, out: OutputWrapper | None) -> None:
        """The organizations merge of `migrate` (contacts 0004 and 0006: same checks, backups, validation).

        The merge reads the legacy `organizations` table and `projects.organization_id`; Ridgeline's
        migrated schema has neither, so for the merge's transaction the staged organizations stand
        in as a temporary `organizations` table and projects get their legacy column back.
        """
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM legacy_import_organizations")
            (staged,) = cursor.fetchone()
        if not staged:
            return
        columns = merge_module(connection, ("contacts", "0006_merge_organizations")).ORGANIZATION_COLUMNS
        preflight = merge_module(connection, ("contacts", "0004_merge_preflight"))
        data = merge_module(connection, ("contacts", "0006_merge_organizations"))
        editor = SimpleNamespace(connection=connection)
        connection.migrate_stdout = out  # type: ignore[attr-defined]
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                earlier = data.backups_present(cursor)
                if earlier:
                    # An earlier merge's backups: set aside, folded into this merge's below.
                    cursor.execute(f"ALTER SCHEMA {data.BACKUP_SCHEMA} RENAME TO {EARLIER_BACKUPS}")
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                cursor.execute(
                    f"CREATE TEMP TABLE organizations AS SELECT {', '.join(columns)} FROM legacy_import_organizations"
                )
                cursor.execute("ALTER TABLE projects ADD COLUMN organization_id bigint")
                cursor.execute(
                    "UPDATE projects p SET organization_id = s.organization_id "
                    "FROM legacy_import_project_organizations s WHERE p.id = s.project_id"
                )
                preflight.check_legacy_data(None, editor)
                data.merge(None, editor)
                if earlier:
                    self.fold_backups(cursor, data.BACKUP_SCHEMA)
                cursor.execute("ALTER TABLE projects DROP COLUMN organization_id")
                cursor.execute("DROP TABLE pg_temp.organizations")
                cursor.execute("DELETE FROM legacy_import_project_organizations")
                cursor.execute("DELETE FROM legacy_import_organizations")
        finally:
            del connection.migrate_stdout  # type: ignore[attr-defined]
        self.report.notes.append(f"organizations merge: {staged} organizations became company contacts")

    def fold_backups(self, cursor: CursorWrapper, schema: str) -> None:
        """One set of backups for every merge the imports ran, so reversing restores them all.

        The organizations of the two merges are disjoint (legacy ids follow the highest merged
        one); a project linked to an organization keeps the row of the merge that linked it
        (its contact before that merge), any other the newest row.
        """
        cursor.execute(f"INSERT INTO {schema}.organizations SELECT * FROM {EARLIER_BACKUPS}.organizations")
        folded = cursor.rowcount
        cursor.execute(
            f"UPDATE {schema}.projects n SET tenant_id = o.tenant_id, contact_id = o.contact_id, "
            f"organization_id = o.organization_id FROM {EARLIER_BACKUPS}.projects o "
            "WHERE n.id = o.id AND o.organization_id IS NOT NULL"
        )
        cursor.execute(
            f"INSERT INTO {schema}.projects SELECT o.* FROM {EARLIER_BACKUPS}.projects o "
            f"WHERE NOT EXISTS (SELECT 1 FROM {schema}.projects n WHERE n.id = o.id)"
        )
        cursor.execute(f"DROP SCHEMA {EARLIER_BACKUPS} CASCADE")
        self.report.notes.append(
            f"organizations merge: the backups of the earlier merge ({folded} organizations) were folded into "
            f"{schema}: reversing the merge restores the organizations of both"
        )

    def count(self) -> None:
        """Old and new row counts per table, for the report."""
        with connection.cursor() as cursor:
            for name in ORDER:
                table = next((t for t in TABLES if t.name == name), None)
                qualified = table.source if table else f"public.{name}"
                schema, relation = qualified.split(".")
                row = self.source.execute(
                    sql.SQL("SELECT count(*) FROM {} WHERE {}").format(
                        sql.Identifier(schema, relation), self.scope(qualified)
                    )
                ).fetchone()
                cursor.execute("SELECT count(*) FROM legacy_ids WHERE source_table = %s", [name])
                stats = self.report.table(name)
                stats.source_rows = row[0] if row else 0
                stats.target_rows = cursor.fetchone()[0]
        for qualified in source.UNREAD:
            rows = source.unread_rows(self.source, qualified, self.tenants)
            if rows:
                self.report.table(qualified.split(".")[1]).source_rows = rows
                self.report.notes.append(
                    f"{qualified}: {rows} rows not imported (the import does not know this table's old columns); "
                    "keep a dump of it"
                )


@contextmanager
def import_lock() -> Iterator[bool]:
    """One import at a time on the target (a session advisory lock)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK])
        (locked,) = cursor.fetchone()
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK])


def import_run(run: Run, *, dry_run: bool, out: OutputWrapper | None) -> Report:
    """Every table in order, the parents of sub-projects, the organizations merge; then the counts.

    Precondition: the caller holds import_lock and checked the source and the target.
    """
    with transaction.atomic() if dry_run else nullcontext():
        for name in ORDER:
            if name == CATALOG:
                run.import_catalog()
            elif name == SAVED_FILTERS:
                run.import_saved_filters()
            else:
                run.import_table(next(t for t in TABLES if t.name == name))
        run.link_parents()
        run.restore_conversation_times()
        run.merge(out)
        run.count()
        ImportCheckpoint.objects.filter(run_key=run.run_key).delete()
        if dry_run:
            run.report.dry_run = True
            transaction.set_rollback(True)
    return run.report


def target_pending() -> list[str]:
    """Migrations not applied to the target (empty: it is migrated)."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def tenants_for(run_source: psycopg.Connection, subdomains: Sequence[str]) -> list[str] | None:
    return source.tenant_ids(run_source, subdomains) if subdomains else None
