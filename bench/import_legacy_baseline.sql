-- The baseline of bench/import_legacy.py: the import's mapping by hand, each table in one
-- INSERT ... SELECT over postgres_fdw (no batches, checkpoints, refusals nor report).
-- psql -v source_db=<old database> -f bench/import_legacy_baseline.sql <migrated Ridgeline database>
\set ON_ERROR_STOP 1
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE SERVER old_system FOREIGN DATA WRAPPER postgres_fdw OPTIONS (dbname :'source_db', fetch_size '10000');
CREATE USER MAPPING FOR CURRENT_USER SERVER old_system;
CREATE SCHEMA old;
CREATE SCHEMA old_auth;
IMPORT FOREIGN SCHEMA public LIMIT TO (tenants, tenant_users, contacts, organizations, projects, activities)
    FROM SERVER old_system INTO old;
IMPORT FOREIGN SCHEMA auth LIMIT TO (users) FROM SERVER old_system INTO old_auth;

BEGIN;
CREATE TEMP TABLE m_users AS SELECT id AS old, nextval(pg_get_serial_sequence('users', 'id')) AS new FROM old_auth.users;
INSERT INTO users (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
SELECT m.new, 'bcrypt$' || u.encrypted_password, false, lower(u.email),
       COALESCE(u.raw_user_meta_data ->> 'first_name', ''), COALESCE(u.raw_user_meta_data ->> 'last_name', ''),
       u.email, false, u.banned_until IS NULL OR u.banned_until <= now(), COALESCE(u.created_at, now())
FROM old_auth.users u JOIN m_users m ON m.old = u.id;
INSERT INTO legacy_ids (source_table, old_id, new_id) SELECT 'auth.users', old, new FROM m_users;

CREATE TEMP TABLE m_tenants AS SELECT id AS old, nextval(pg_get_serial_sequence('tenants', 'id')) AS new FROM old.tenants;
INSERT INTO tenants (id, name, subdomain, settings, features, subscription_status, is_active, created_at, updated_at)
SELECT m.new, t.name, t.subdomain, COALESCE(t.settings, '{}'), COALESCE(t.features, '{}'),
       CASE WHEN lower(t.subscription_status) IN ('trial', 'active', 'past_due', 'cancelled', 'suspended')
            THEN lower(t.subscription_status) ELSE 'trial' END,
       COALESCE(t.is_active, true), COALESCE(t.created_at, now()), COALESCE(t.updated_at, now())
FROM old.tenants t JOIN m_tenants m ON m.old = t.id;
INSERT INTO legacy_ids (source_table, old_id, new_id, tenant_id) SELECT 'tenants', old, new, new FROM m_tenants;

INSERT INTO tenant_users (tenant_id, user_id, role, status, joined_at)
SELECT mt.new, mu.new,
       CASE WHEN lower(tu.role) IN ('owner', 'admin', 'manager', 'member', 'viewer') THEN lower(tu.role) ELSE 'member' END,
       COALESCE(tu.status, 'active'), COALESCE(tu.joined_at, now())
FROM old.tenant_users tu JOIN m_tenants mt ON mt.old = tu.tenant_id JOIN m_users mu ON mu.old = tu.user_id;

CREATE TEMP TABLE m_contacts AS
SELECT c.id AS old, nextval(pg_get_serial_sequence('contacts', 'id')) AS new, mt.new AS tenant
FROM old.contacts c JOIN m_tenants mt ON mt.old = c.tenant_id;
ALTER TABLE m_contacts ADD PRIMARY KEY (old);
INSERT INTO contacts (id, tenant_id, first_name, last_name, email, phone, address_city, type, stage, priority,
                      lead_score, source_details, custom_fields, tags, is_deleted, timezone, created_at, updated_at)
SELECT m.new, m.tenant, c.first_name, c.last_name, c.email, c.phone, c.address_city,
       CASE WHEN lower(c.type) IN ('lead', 'customer', 'prospect') THEN lower(c.type) ELSE 'lead' END,
       CASE WHEN lower(c.stage) IN ('new', 'contacted', 'qualified', 'proposal', 'negotiation', 'won', 'lost')
            THEN lower(c.stage) ELSE 'new' END,
       CASE WHEN lower(c.priority) IN ('low', 'normal', 'high', 'urgent') THEN lower(c.priority) ELSE 'normal' END,
       COALESCE(c.lead_score, 0), COALESCE(c.source_details, '{}'),
       CASE WHEN lower(c.stage) IN ('new', 'contacted', 'qualified', 'proposal', 'negotiation', 'won', 'lost')
            THEN COALESCE(c.custom_fields, '{}')
            ELSE COALESCE(c.custom_fields, '{}') || jsonb_build_object('legacy_import', jsonb_build_object('stage', c.stage))
       END,
       COALESCE(c.tags, '{}'), COALESCE(c.is_deleted, false), COALESCE(c.timezone, ''), COALESCE(c.created_at, now()),
       COALESCE(c.updated_at, now())
FROM old.contacts c JOIN m_contacts m ON m.old = c.id;
INSERT INTO legacy_ids (source_table, old_id, new_id, tenant_id) SELECT 'contacts', old, new, tenant FROM m_contacts;

CREATE TEMP TABLE m_organizations AS
SELECT o.id AS old, row_number() OVER (ORDER BY o.id) AS new, mt.new AS tenant
FROM old.organizations o JOIN m_tenants mt ON mt.old = o.tenant_id;
ALTER TABLE m_organizations ADD PRIMARY KEY (old);
INSERT INTO legacy_import_organizations (id, tenant_id, name, org_type, stage, primary_contact_id, tags, is_deleted,
                                         created_at, updated_at)
SELECT m.new, m.tenant, o.name, o.org_type, o.stage, mc.new, o.tags, o.is_deleted, o.created_at, o.updated_at
FROM old.organizations o JOIN m_organizations m ON m.old = o.id LEFT JOIN m_contacts mc ON mc.old = o.primary_contact_id;
INSERT INTO legacy_ids (source_table, old_id, new_id, tenant_id)
SELECT 'organizations', old, new, tenant FROM m_organizations;

CREATE TEMP TABLE m_projects AS
SELECT p.id AS old, nextval(pg_get_serial_sequence('projects', 'id')) AS new, mt.new AS tenant
FROM old.projects p JOIN m_tenants mt ON mt.old = p.tenant_id;
ALTER TABLE m_projects ADD PRIMARY KEY (old);
INSERT INTO projects (id, tenant_id, contact_id, name, status, type, estimated_value, custom_fields, is_deleted,
                      created_at, updated_at)
SELECT m.new, m.tenant, mc.new, p.name,
       CASE WHEN replace(lower(p.status), ' ', '_') IN ('estimate', 'approved', 'scheduled', 'in_progress', 'completed',
                                                        'cancelled') THEN replace(lower(p.status), ' ', '_')
            ELSE 'estimate' END,
       CASE WHEN lower(p.type) IN ('repair', 'replacement', 'maintenance', 'emergency') THEN lower(p.type) END,
       p.estimated_value, COALESCE(p.custom_fields, '{}'), COALESCE(p.is_deleted, false), COALESCE(p.created_at, now()),
       COALESCE(p.updated_at, now())
FROM old.projects p JOIN m_projects m ON m.old = p.id LEFT JOIN m_contacts mc ON mc.old = p.contact_id;
INSERT INTO legacy_ids (source_table, old_id, new_id, tenant_id) SELECT 'projects', old, new, tenant FROM m_projects;
INSERT INTO legacy_import_project_organizations (project_id, organization_id)
SELECT m.new, mo.new FROM old.projects p JOIN m_projects m ON m.old = p.id JOIN m_organizations mo ON mo.old = p.organization_id;

CREATE TEMP TABLE m_activities AS
SELECT a.id AS old, nextval(pg_get_serial_sequence('activities', 'id')) AS new, mt.new AS tenant
FROM old.activities a JOIN m_tenants mt ON mt.old = a.tenant_id;
ALTER TABLE m_activities ADD PRIMARY KEY (old);
INSERT INTO activities (id, tenant_id, contact_id, project_id, type, subject, direction, outcome_details,
                        is_impersonated_action, created_at)
SELECT m.new, m.tenant, mc.new, mp.new,
       CASE WHEN lower(a.type) IN ('call', 'email', 'sms', 'meeting', 'note', 'task', 'door_knock') THEN lower(a.type)
            ELSE 'note' END,
       a.subject, CASE WHEN lower(a.direction) IN ('inbound', 'outbound') THEN lower(a.direction) END,
       COALESCE(a.outcome_details, '{}'), COALESCE(a.is_impersonated_action, false), COALESCE(a.created_at, now())
FROM old.activities a JOIN m_activities m ON m.old = a.id LEFT JOIN m_contacts mc ON mc.old = a.contact_id
LEFT JOIN m_projects mp ON mp.old = a.project_id;
INSERT INTO legacy_ids (source_table, old_id, new_id, tenant_id) SELECT 'activities', old, new, tenant FROM m_activities;
COMMIT;
