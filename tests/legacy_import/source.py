"""An old-system database for the import's tests: psql runs the schema file, SQL generates the rows."""

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import bcrypt
import psycopg
from django.conf import settings
from psycopg import sql

# A copy of the old system's schema as the team received it (shared/legacy/old_system_schema.sql).
SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "old_system_schema.sql"
PASSWORD = "correct horse battery"
CONTACTS = 240  # per tenant

# Two tenants, five users (one banned, one a case-insensitive duplicate), a catalog with two
# defaults in one status and none in another, and per tenant CONTACTS contacts, organizations,
# projects (sub-projects included) and activities; a few rows carry the stray values the
# old system let in, and one project points at the other tenant's contact.
DATA = """
INSERT INTO auth.users (id, email, encrypted_password, raw_user_meta_data, last_sign_in_at, banned_until, created_at)
VALUES ('00000000-0000-4000-8000-000000000001', 'Dana@Summit.example', %(hash)s,
        '{"first_name": "Dana", "last_name": "Whitfield"}', '2024-05-01 08:00+00', NULL, '2021-01-01 09:00+00'),
       ('00000000-0000-4000-8000-000000000002', 'luis@summit.example', %(hash)s, '{"full_name": "Luis de Ortega"}',
        NULL, now() + interval '30 days', '2021-02-01 09:00+00'),
       ('00000000-0000-4000-8000-000000000003', 'DANA@summit.example', %(hash)s, '{}', NULL, NULL,
        '2021-03-01 09:00+00'),
       ('00000000-0000-4000-8000-000000000004', 'pat@peak.example', %(hash)s,
        '{"first_name": "Pat", "last_name": "Lee"}', NULL, '2020-01-01 00:00+00', '2021-04-01 09:00+00'),
       ('00000000-0000-4000-8000-000000000005', 'kim@peak.example', NULL, '{}', NULL, NULL, '2021-05-01 09:00+00');
INSERT INTO tenants (id, name, subdomain, settings, subscription_status, primary_color, created_at, updated_at)
VALUES ('10000000-0000-4000-8000-000000000001', 'Summit Roofing', 'summit', '{"brand": "summit"}', 'Active',
        '#112233', '2021-01-01 09:00+00', '2022-01-01 09:00+00'),
       ('10000000-0000-4000-8000-000000000002', 'Peak Roofing', 'peak', '{}', 'gold', NULL,
        '2021-01-02 09:00+00', '2022-01-02 09:00+00');
INSERT INTO tenant_users (id, tenant_id, user_id, role, status, joined_at)
VALUES ('11000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-000000000001', 'owner', 'active', '2021-01-01 09:00+00'),
       ('11000000-0000-4000-8000-000000000002', '10000000-0000-4000-8000-000000000002',
        '00000000-0000-4000-8000-000000000001', 'Admin', 'active', '2021-01-02 09:00+00'),
       ('11000000-0000-4000-8000-000000000003', '10000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-000000000002', 'boss', 'suspended', '2021-02-01 09:00+00'),
       ('11000000-0000-4000-8000-000000000004', '10000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-000000000003', 'member', 'active', '2021-03-01 09:00+00'),
       ('11000000-0000-4000-8000-000000000005', '10000000-0000-4000-8000-000000000002',
        '00000000-0000-4000-8000-000000000004', 'viewer', 'deactivated', '2021-04-01 09:00+00'),
       ('11000000-0000-4000-8000-000000000006', '10000000-0000-4000-8000-000000000002',
        '00000000-0000-4000-8000-000000000005', 'manager', 'active', '2021-05-01 09:00+00');
INSERT INTO status_substatus_configs (id, tenant_id, entity_type, status_field_name, status_value, substatus_value,
                                      substatus_label, display_order, is_default)
SELECT ('12000000-0000-4000-8000-00000000000' || n)::uuid, t.id, e, f, s, v, initcap(v), o, d
FROM (VALUES (1, 'contacts', 'stage', 'new', 'fresh', 2, false), (2, 'contacts', 'stage', 'new', 'called', 1, false),
             (3, 'projects', 'status', 'estimate', 'drafted', 2, true),
             (4, 'projects', 'status', 'estimate', 'sent', 1, true),
             (5, 'activities', 'type', 'call', 'answered', 1, true)) AS c(n, e, f, s, v, o, d),
     tenants t WHERE t.subdomain = 'summit';
INSERT INTO contacts (id, tenant_id, created_at, updated_at, created_by, is_deleted, first_name, last_name, email,
                      phone, address_city, address_state, latitude, longitude, type, stage, source_details,
                      assigned_to, roof_age, property_value, deductible, lead_score, priority, custom_fields, tags,
                      sms_opt_in, sms_opt_in_date, timezone, substatus)
SELECT ('2' || t.n || '000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, t.id,
       '2023-01-01 00:00+00'::timestamptz + i * interval '1 hour',
       '2024-01-01 00:00+00'::timestamptz + i * interval '1 minute',
       '00000000-0000-4000-8000-000000000001', i % 17 = 0, 'First' || i, 'Last' || i,
       CASE WHEN i % 5 <> 0 THEN 'person' || i || '@' || t.subdomain || '.example' END,
       '555-' || lpad(i::text, 4, '0'), 'Boulder', 'CO', 40.01 + i / 100000.0, -105.27, 'lead',
       CASE WHEN i = 1 THEN 'Lead' WHEN i = 2 THEN 'Won' ELSE (ARRAY['new', 'contacted', 'won'])[i % 3 + 1] END,
       '{"campaign": "spring"}', '00000000-0000-4000-8000-000000000002', i % 40, 1000 * i, 500.50,
       i, CASE WHEN i = 3 THEN 'URGENT' ELSE 'normal' END, ('{"gate": "' || i || '"}')::jsonb, ARRAY['storm', 't' || i],
       i % 2 = 0, CASE WHEN i % 2 = 0 THEN '2023-06-01 00:00+00'::timestamptz END, 'America/Denver',
       CASE WHEN i = 4 THEN 'fresh' WHEN i = 5 THEN 'ghost' END
FROM (SELECT id, subdomain, row_number() OVER (ORDER BY subdomain DESC) AS n FROM tenants) t,
     generate_series(1, %(contacts)s) i;
-- A case-insensitive duplicate of a live person's email (the old UNIQUE was case-sensitive).
UPDATE contacts SET email = 'PERSON1@summit.example' WHERE id = '21000000-0000-4000-8000-000000000006';
INSERT INTO organizations (id, tenant_id, name, org_type, stage, primary_contact_id, phone, tags, default_assignee,
                           created_at, updated_at, is_deleted)
SELECT ('3' || t.n || '000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, t.id, 'Org ' || i,
       (ARRAY['real_estate', 'developer', NULL])[i % 3 + 1], (ARRAY['new', 'active', 'inactive'])[i % 3 + 1],
       CASE WHEN i % 2 = 0 THEN ('2' || t.n || '000000-0000-4000-8000-' || lpad((i + 100)::text, 12, '0'))::uuid END,
       '555-9' || i, ARRAY['org'], '00000000-0000-4000-8000-000000000001',
       '2022-01-01 00:00+00', '2022-02-01 00:00+00', CASE WHEN i = 5 THEN NULL ELSE i = 4 END
FROM (SELECT id, row_number() OVER (ORDER BY subdomain DESC) AS n FROM tenants) t, generate_series(1, 6) i;
INSERT INTO projects (id, tenant_id, created_at, updated_at, created_by, contact_id, organization_id,
                      parent_project_id, name, project_number, status, type, estimated_value, profit_margin,
                      estimated_start, materials_list, supplements, crew_assigned, custom_fields, substatus)
SELECT ('4' || t.n || '000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, t.id,
       '2023-02-01 00:00+00', '2023-03-01 00:00+00', '00000000-0000-4000-8000-000000000001',
       CASE WHEN i % 4 <> 0 THEN ('2' || t.n || '000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid END,
       CASE WHEN i <= 6 THEN ('3' || t.n || '000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid END,
       CASE WHEN i > 40 THEN ('4' || t.n || '000000-0000-4000-8000-' || lpad((i - 40)::text, 12, '0'))::uuid END,
       'Job ' || i, 'J-' || i,
       CASE WHEN i = 1 THEN 'In Progress' WHEN i = 2 THEN 'on hold' ELSE 'estimate' END,
       (ARRAY['repair', 'replacement', NULL])[i % 3 + 1], 1000 + i, CASE WHEN i = 7 THEN 12.5 END,
       '2023-04-01'::date + i, '[{"item": "shingles"}]', '[]', '["crew a"]', '{}',
       CASE WHEN i = 8 THEN 'sent' END
FROM (SELECT id, row_number() OVER (ORDER BY subdomain DESC) AS n FROM tenants) t, generate_series(1, 60) i;
-- One project of summit whose contact belongs to peak: refused.
UPDATE projects SET contact_id = '22000000-0000-4000-8000-000000000009'
WHERE id = '41000000-0000-4000-8000-000000000009';
INSERT INTO activities (id, tenant_id, created_at, created_by, contact_id, project_id, type, subject, direction,
                        duration_seconds, outcome_details, performed_by, external_id)
SELECT ('5' || t.n || '000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, t.id,
       '2023-05-01 00:00+00'::timestamptz + i * interval '1 hour', '00000000-0000-4000-8000-000000000001',
       ('2' || t.n || '000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid,
       CASE WHEN (i % 2 = 0 AND i <= 60) OR i = 9
            THEN ('4' || t.n || '000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid END,
       CASE WHEN i = 1 THEN 'Call' WHEN i = 2 THEN 'fax' ELSE 'note' END, 'Subject ' || i,
       CASE WHEN i % 2 = 0 THEN 'outbound' END, i, '{"ok": true}', '00000000-0000-4000-8000-000000000002',
       'ext-' || i
FROM (SELECT id, row_number() OVER (ORDER BY subdomain DESC) AS n FROM tenants) t, generate_series(1, 80) i;
INSERT INTO ai_conversations (id, tenant_id, user_id, title, created_at, updated_at, metadata)
VALUES ('60000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-000000000001', 'Storm leads', '2024-01-01 10:00+00', '2024-01-02 10:00+00',
        '{"pinned_by": "dana"}');
INSERT INTO ai_messages (id, conversation_id, role, content, function_call, created_at)
VALUES ('61000000-0000-4000-8000-000000000001', '60000000-0000-4000-8000-000000000001', 'user', 'Which leads?', NULL,
        '2024-01-01 10:00+00'),
       ('61000000-0000-4000-8000-000000000002', '60000000-0000-4000-8000-000000000001', 'assistant', 'These.',
        '{"name": "search_contacts"}', '2024-01-01 10:01+00');
-- Saved filters: the old flat format (a user's uuid, a substatus key), a tree already, a field
-- Ridgeline does not filter on (kept, stale), the system filter every tenant has, a second
-- default of one user, one of the refused duplicate user, and a user's filter named as one of
-- the system filters every Ridgeline tenant starts with.
INSERT INTO saved_filters (id, tenant_id, entity_type, name, description, filter_criteria, created_by, is_shared,
                           is_default, is_system, usage_count, last_used_at, created_at, updated_at)
VALUES ('70000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000001', 'contacts', 'Storm leads',
        'Mine, new or called', '{"stage": {"operator": "in", "value": ["new", "contacted"]},
        "assigned_to": {"operator": "equals", "value": "00000000-0000-4000-8000-000000000001"}}',
        '00000000-0000-4000-8000-000000000001', true, true, false, 12, '2024-02-01 10:00+00', '2023-01-01 10:00+00',
        '2023-06-01 10:00+00'),
       ('70000000-0000-4000-8000-000000000002', '10000000-0000-4000-8000-000000000001', 'contacts', 'Fresh ones',
        NULL, '{"substatus": {"operator": "in", "value": ["fresh"]}}', '00000000-0000-4000-8000-000000000002',
        false, false, false, 0, NULL, '2023-01-02 10:00+00', '2023-01-02 10:00+00'),
       ('70000000-0000-4000-8000-000000000003', '10000000-0000-4000-8000-000000000001', 'projects', 'Red roofs',
        NULL, '{"roof_color": {"operator": "equals", "value": "red"}}', '00000000-0000-4000-8000-000000000001',
        false, false, false, 3, NULL, '2023-01-03 10:00+00', '2023-01-03 10:00+00'),
       ('70000000-0000-4000-8000-000000000004', '10000000-0000-4000-8000-000000000001', 'contacts',
        'My Active Leads', 'Open leads assigned to you.',
        '{"stage": {"operator": "in", "value": ["new", "contacted", "qualified", "proposal"]},
          "assigned_to": {"operator": "equals", "value": "me"}}', '00000000-0000-4000-8000-000000000001', true,
        false, true, 40, '2024-03-01 10:00+00', '2021-01-01 09:00+00', '2021-01-01 09:00+00'),
       ('70000000-0000-4000-8000-000000000005', '10000000-0000-4000-8000-000000000001', 'contacts', 'Dup user''s',
        NULL, '{"stage": {"operator": "in", "value": ["won"]}}', '00000000-0000-4000-8000-000000000003', false,
        false, false, 0, NULL, '2023-01-05 10:00+00', '2023-01-05 10:00+00'),
       ('70000000-0000-4000-8000-000000000006', '10000000-0000-4000-8000-000000000001', 'contacts',
        'Second default', NULL, '{"priority": {"operator": "equals", "value": "high"}}',
        '00000000-0000-4000-8000-000000000001', false, true, false, 0, NULL, '2023-01-06 10:00+00',
        '2023-01-06 10:00+00'),
       ('70000000-0000-4000-8000-000000000007', '10000000-0000-4000-8000-000000000002', 'activities', 'Calls',
        NULL, '{"and": [{"field": "type", "op": "in", "value": ["call"]}]}', '00000000-0000-4000-8000-000000000004',
        true, false, false, 1, NULL, '2023-01-07 10:00+00', '2023-01-08 10:00+00'),
       ('70000000-0000-4000-8000-000000000008', '10000000-0000-4000-8000-000000000001', 'contacts',
        'Hot Leads (Score > 70)', NULL, '{"lead_score": {"operator": "greater_than", "value": 80}}',
        '00000000-0000-4000-8000-000000000001', false, false, false, 0, NULL, '2023-01-08 10:00+00',
        '2023-01-08 10:00+00');
-- Impersonation sessions: an ended one, one still "active" of the refused duplicate user, one in peak.
INSERT INTO impersonation_logs (id, tenant_id, admin_user_id, impersonated_user_id, started_at, ended_at, reason,
                                ip_address, user_agent, status, created_at, updated_at)
VALUES ('80000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', '2024-04-01 10:00+00',
        '2024-04-01 10:30+00', 'Ticket 42', '10.0.0.1', 'Mozilla/5.0', 'ended', '2024-04-01 10:00+00',
        '2024-04-01 10:30+00'),
       ('80000000-0000-4000-8000-000000000002', '10000000-0000-4000-8000-000000000001',
        '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000003', '2024-04-02 10:00+00', NULL,
        NULL, NULL, NULL, 'active', '2024-04-02 10:00+00', '2024-04-02 10:00+00'),
       ('80000000-0000-4000-8000-000000000003', '10000000-0000-4000-8000-000000000002',
        '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000004', '2024-04-03 10:00+00',
        '2024-04-03 11:00+00', 'Setup help', '2001:db8::1', 'curl', 'expired', '2024-04-03 10:00+00',
        '2024-04-03 11:00+00');
"""


def server_url(name: str) -> str:
    default = settings.DATABASES["default"]
    return f"postgres://{default['USER']}@{default['HOST']}:{default['PORT']}/{name}"


def source_name(suffix: str) -> str:
    return f"{settings.DATABASES['default']['NAME']}_{suffix}"


def _admin() -> psycopg.Connection:
    return psycopg.connect(server_url("postgres"), autocommit=True)


@contextmanager
def old_database(suffix: str, *, contacts: int = CONTACTS, data: bool = True) -> Iterator[str]:
    """A scratch database built like a customer's: psql runs the schema file; dropped afterwards."""
    psql = shutil.which("psql")
    assert psql, "psql (the PostgreSQL client) builds the old-system database"
    name = source_name(suffix)
    with _admin() as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        subprocess.run(  # noqa: S603 - psql with the shared schema file
            [psql, "--no-psqlrc", "--quiet", "-v", "ON_ERROR_STOP=1", "-f", str(SCHEMA), server_url(name)],
            check=True,
            capture_output=True,
        )
        if data:
            hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4, prefix=b"2a")).decode()
            with psycopg.connect(server_url(name)) as conn:
                rows = DATA.replace("%(hash)s", f"'{hashed}'").replace("%(contacts)s", str(contacts))
                conn.execute(rows.encode())
        yield server_url(name)
    finally:
        with _admin() as server:
            server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
