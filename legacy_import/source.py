"""The old system's database, read-only: connecting, checking its shape, reading it in batches."""

from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

# What the import reads, table by table (also what a source must have to be the old system's).
COLUMNS: dict[str, tuple[str, ...]] = {
    "auth.users": (
        "id",
        "email",
        "encrypted_password",
        "raw_user_meta_data",
        "last_sign_in_at",
        "banned_until",
        "created_at",
    ),
    "public.tenants": (
        "id",
        "created_at",
        "updated_at",
        "name",
        "subdomain",
        "custom_domain",
        "settings",
        "features",
        "subscription_status",
        "subscription_expires_at",
        "logo_url",
        "primary_color",
        "secondary_color",
        "is_active",
    ),
    "public.tenant_users": (
        "id",
        "tenant_id",
        "user_id",
        "role",
        "status",
        "joined_at",
        "deactivated_at",
        "deactivated_by",
        "deactivated_reason",
    ),
    "public.status_substatus_configs": (
        "id",
        "tenant_id",
        "entity_type",
        "status_value",
        "substatus_value",
        "substatus_label",
        "substatus_description",
        "color",
        "icon",
        "display_order",
        "is_active",
        "is_default",
        "is_terminal",
        "auto_transition_to",
        "auto_transition_delay_hours",
        "created_by",
        "created_at",
        "updated_at",
    ),
    "public.contacts": (
        "id",
        "tenant_id",
        "created_at",
        "updated_at",
        "created_by",
        "is_deleted",
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
        "type",
        "stage",
        "source",
        "source_details",
        "assigned_to",
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
        "lead_score",
        "priority",
        "custom_fields",
        "tags",
        "quickbooks_customer_id",
        "sms_opt_in",
        "sms_opt_in_date",
        "sms_opt_out",
        "sms_opt_out_date",
        "sms_opt_out_reason",
        "email_opt_out",
        "email_opt_out_date",
        "email_opt_out_reason",
        "email_invalid",
        "email_invalid_date",
        "email_invalid_reason",
        "timezone",
        "proline_id",
        "substatus",
    ),
    "public.organizations": (
        "id",
        "tenant_id",
        "name",
        "org_type",
        "stage",
        "primary_contact_id",
        "address_street",
        "address_city",
        "address_state",
        "address_zip",
        "phone",
        "email",
        "website",
        "notes",
        "tags",
        "default_assignee",
        "created_at",
        "updated_at",
        "created_by",
        "is_deleted",
    ),
    "public.projects": (
        "id",
        "tenant_id",
        "created_at",
        "updated_at",
        "created_by",
        "is_deleted",
        "contact_id",
        "organization_id",
        "parent_project_id",
        "name",
        "project_number",
        "status",
        "type",
        "estimated_value",
        "approved_value",
        "final_value",
        "materials_cost",
        "labor_cost",
        "overhead_cost",
        "profit_margin",
        "estimated_start",
        "scheduled_start",
        "actual_start",
        "estimated_completion",
        "actual_completion",
        "description",
        "scope_of_work",
        "materials_list",
        "insurance_approved",
        "insurance_approval_amount",
        "deductible_collected",
        "supplements",
        "crew_assigned",
        "weather_delays",
        "quality_score",
        "quickbooks_id",
        "quickbooks_sync_status",
        "custom_fields",
        "substatus",
    ),
    "public.activities": (
        "id",
        "tenant_id",
        "created_at",
        "created_by",
        "contact_id",
        "project_id",
        "type",
        "subtype",
        "subject",
        "content",
        "direction",
        "from_address",
        "to_address",
        "outcome",
        "outcome_details",
        "duration_seconds",
        "recording_url",
        "transcript",
        "scheduled_at",
        "completed_at",
        "reminder_at",
        "external_id",
        "performed_by",
        "on_behalf_of",
        "is_impersonated_action",
    ),
    "public.ai_conversations": (
        "id",
        "tenant_id",
        "user_id",
        "title",
        "created_at",
        "updated_at",
        "is_active",
        "metadata",
    ),
    "public.ai_messages": ("id", "conversation_id", "role", "content", "function_call", "metadata", "created_at"),
    "public.saved_filters": (
        "id",
        "tenant_id",
        "entity_type",
        "name",
        "description",
        "filter_criteria",
        "created_by",
        "is_shared",
        "is_default",
        "is_system",
        "usage_count",
        "last_used_at",
        "created_at",
        "updated_at",
    ),
    "public.impersonation_logs": (
        "id",
        "tenant_id",
        "admin_user_id",
        "impersonated_user_id",
        "started_at",
        "ended_at",
        "duration_seconds",
        "reason",
        "ip_address",
        "user_agent",
        "status",
        "created_at",
        "updated_at",
    ),
}

# Old tables of the feature apps the schema file does not describe (their columns come from
# the campaigns and filters issues): read only to count their rows, which the report lists
# as not imported. A source without them is still the old system's.
UNREAD = (
    "public.campaigns",
    "public.campaign_triggers",
    "public.campaign_steps",
    "public.campaign_enrollments",
    "public.campaign_step_executions",
    "public.campaign_analytics",
    "public.filter_configs",
    "public.filter_usage_logs",
)


class SourceError(Exception):
    """The source cannot be read, or is not the old system's database."""


def without_password(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{parts.username}@{host}" if parts.username else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def connect(url: str) -> psycopg.Connection:
    """A read-only connection holding one snapshot for the whole run (repeatable read)."""
    try:
        connection = psycopg.connect(url, options="-c default_transaction_read_only=on", connect_timeout=10)
    except psycopg.Error as error:
        raise SourceError(f"cannot connect to the source {without_password(url)}: {error}".strip()) from error
    connection.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    connection.read_only = True
    return connection


def missing(connection: psycopg.Connection) -> list[str]:
    """The tables and columns the import reads that the source lacks (empty: it is the old schema)."""
    rows = connection.execute(
        "SELECT table_schema || '.' || table_name, column_name FROM information_schema.columns "
        "WHERE table_schema IN ('public', 'auth')"
    ).fetchall()
    present: dict[str, set[str]] = {}
    for table, column in rows:
        present.setdefault(table, set()).add(column)
    found = []
    for table, columns in COLUMNS.items():
        if table not in present:
            found.append(f"table {table}")
            continue
        found += [f"column {table}.{column}" for column in columns if column not in present[table]]
    return found


def column_types(connection: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """(column, SQL type) of what the import reads from `table`, in COLUMNS order."""
    rows: dict[str, str] = dict(
        connection.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            [table],
        ).fetchall()
    )
    return [(column, rows[column]) for column in COLUMNS[table]]


def tenant_ids(connection: psycopg.Connection, subdomains: Sequence[str]) -> list[str]:
    """The old ids of the tenants asked for; a subdomain the source lacks is an error."""
    rows: dict[str, str] = dict(
        connection.execute("SELECT subdomain, id::text FROM tenants WHERE subdomain = ANY(%s)", [list(subdomains)])
    )
    unknown = [subdomain for subdomain in subdomains if subdomain not in rows]
    if unknown:
        raise SourceError(f"the source has no tenant with subdomain {', '.join(unknown)}")
    return [rows[subdomain] for subdomain in subdomains]


def unread_rows(connection: psycopg.Connection, table: str, tenants: Sequence[str] | None) -> int:
    """Rows of one of the UNREAD tables (of the tenants asked for, when it has a tenant_id); 0 when absent."""
    schema, name = table.split(".")
    columns = {
        column
        for (column,) in connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            [schema, name],
        )
    }
    if not columns:
        return 0
    where: sql.Composable = sql.SQL("true")
    if tenants is not None and "tenant_id" in columns:
        where = sql.SQL("tenant_id = ANY({}::uuid[])").format(sql.Literal(list(tenants)))
    row = connection.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {}").format(sql.Identifier(schema, name), where)
    ).fetchone()
    return int(row[0]) if row else 0


def batch_query(table: str, scope: sql.Composable, after: str | None, limit: int) -> sql.Composed:
    """COPY of the next `limit` rows of `table` in scope, by old id, after `after`."""
    where = sql.SQL("({}) AND id > {}").format(scope, sql.Literal(after)) if after else scope
    schema, name = table.split(".")
    return sql.SQL("COPY (SELECT {} FROM {} WHERE {} ORDER BY id LIMIT {}) TO STDOUT (FORMAT BINARY)").format(
        sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table])),
        sql.Identifier(schema, name),
        where,
        sql.Literal(limit),
    )
