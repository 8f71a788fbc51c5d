"""Install the substatus rules: the functions and triggers of `substatus/triggers.py`.

A frozen copy of that module's SQL as of this migration (migrations never import app code);
a later change to the triggers is a new migration. Reversing drops them all.
"""

from django.db import migrations

INSTALL = r"""
CREATE OR REPLACE FUNCTION substatus_default_catalog() RETURNS TABLE (entity varchar, status varchar, key varchar, label varchar, color varchar, "position" smallint, is_default boolean, is_terminal boolean)
    LANGUAGE sql IMMUTABLE
    AS $function$
    SELECT entity::varchar, status::varchar, key::varchar, label::varchar, color::varchar,
           "position"::smallint, is_default, is_terminal
    FROM (VALUES
        ('contact', 'new', 'uncontacted', 'Uncontacted', '#64748b', 0, true, false),
        ('contact', 'new', 'attempting_contact', 'Attempting contact', '#64748b', 1, false, false),
        ('contact', 'contacted', 'follow_up_needed', 'Follow-up needed', '#0ea5e9', 0, true, false),
        ('contact', 'contacted', 'call_scheduled', 'Call scheduled', '#0ea5e9', 1, false, false),
        ('contact', 'qualified', 'decision_maker_identified', 'Decision maker identified', '#6366f1', 0, true, false),
        ('contact', 'qualified', 'budget_approved', 'Budget approved', '#6366f1', 1, false, false),
        ('contact', 'qualified', 'timeline_confirmed', 'Timeline confirmed', '#6366f1', 2, false, false),
        ('contact', 'proposal', 'estimate_sent', 'Estimate sent', '#8b5cf6', 0, true, false),
        ('contact', 'proposal', 'negotiating', 'Negotiating', '#8b5cf6', 1, false, false),
        ('contact', 'proposal', 'verbal_agreement', 'Verbal agreement', '#8b5cf6', 2, false, false),
        ('contact', 'negotiation', 'price_discussion', 'Discussing price', '#f59e0b', 0, true, false),
        ('contact', 'negotiation', 'insurance_review', 'Waiting on insurance', '#f59e0b', 1, false, false),
        ('contact', 'negotiation', 'contract_sent', 'Contract sent', '#f59e0b', 2, false, false),
        ('contact', 'won', 'contract_signed', 'Contract signed', '#16a34a', 0, true, true),
        ('contact', 'won', 'handed_to_production', 'Handed to production', '#16a34a', 1, false, true),
        ('contact', 'lost', 'no_reason_given', 'No reason given', '#dc2626', 0, true, true),
        ('contact', 'lost', 'price', 'Price', '#dc2626', 1, false, true),
        ('contact', 'lost', 'went_with_competitor', 'Went with a competitor', '#dc2626', 2, false, true),
        ('contact', 'lost', 'no_response', 'No response', '#dc2626', 3, false, true),
        ('contact', 'lost', 'insurance_denied', 'Insurance denied', '#dc2626', 4, false, true),
        ('project', 'estimate', 'site_visit_pending', 'Site visit pending', '#64748b', 0, true, false),
        ('project', 'estimate', 'measurements_taken', 'Measurements taken', '#64748b', 1, false, false),
        ('project', 'estimate', 'quote_prepared', 'Quote prepared', '#64748b', 2, false, false),
        ('project', 'approved', 'contract_signed', 'Contract signed', '#0ea5e9', 0, true, false),
        ('project', 'approved', 'deposit_received', 'Deposit received', '#0ea5e9', 1, false, false),
        ('project', 'approved', 'materials_ordered', 'Materials ordered', '#0ea5e9', 2, false, false),
        ('project', 'scheduled', 'crew_assigned', 'Crew assigned', '#6366f1', 0, true, false),
        ('project', 'scheduled', 'permits_obtained', 'Permits obtained', '#6366f1', 1, false, false),
        ('project', 'in_progress', 'tear_off', 'Tear-off', '#f59e0b', 0, true, false),
        ('project', 'in_progress', 'installation', 'Installation', '#f59e0b', 1, false, false),
        ('project', 'in_progress', 'final_inspection', 'Final inspection', '#f59e0b', 2, false, false),
        ('project', 'completed', 'final_payment_received', 'Final payment received', '#16a34a', 0, true, false),
        ('project', 'completed', 'warranty_issued', 'Warranty issued', '#16a34a', 1, false, true),
        ('project', 'cancelled', 'customer_cancelled', 'Customer cancelled', '#dc2626', 0, true, true),
        ('project', 'cancelled', 'insurance_denied', 'Insurance denied', '#dc2626', 1, false, true),
        ('project', 'cancelled', 'went_with_competitor', 'Went with a competitor', '#dc2626', 2, false, true),
        ('project', 'cancelled', 'duplicate', 'Duplicate job', '#dc2626', 3, false, true)
    ) AS catalog (entity, status, key, label, color, "position", is_default, is_terminal)
$function$;

CREATE OR REPLACE FUNCTION substatus_install_default_catalog() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    INSERT INTO status_substatus_configs (
        tenant_id, entity, status, key, label, color, "position", is_default, is_terminal
    )
    SELECT tenant.id, catalog.entity, catalog.status, catalog.key, catalog.label, catalog.color,
           catalog."position", catalog.is_default, catalog.is_terminal
    FROM new_tenants AS tenant CROSS JOIN substatus_default_catalog() AS catalog;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_change_context() RETURNS TABLE (changed_by_id bigint, impersonated_by_id bigint, reason text, source varchar)
    LANGUAGE sql STABLE
    AS $function$
    SELECT app_effective_user_id(),
           CASE WHEN app_is_impersonating() THEN app_real_user_id() END,
           COALESCE(current_setting('app.change_reason', true), ''),
           COALESCE(NULLIF(current_setting('app.change_source', true), ''), 'sql')::varchar
$function$;

CREATE OR REPLACE FUNCTION substatus_check(substatus bigint, record_tenant bigint, record_entity text, record_status text, record_table text) RETURNS void
    LANGUAGE plpgsql STABLE
    AS $function$
DECLARE
    config status_substatus_configs%ROWTYPE;
    status_word text := CASE record_entity WHEN 'contact' THEN 'stage' ELSE 'status' END;
BEGIN
    SELECT * INTO config FROM status_substatus_configs WHERE id = substatus;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'substatus % does not exist', substatus
            USING ERRCODE = 'check_violation', CONSTRAINT = record_table || '_substatus_unknown';
    END IF;
    IF config.tenant_id <> record_tenant THEN
        RAISE EXCEPTION 'substatus % belongs to another tenant', substatus
            USING ERRCODE = 'check_violation', CONSTRAINT = record_table || '_substatus_other_tenant';
    END IF;
    IF config.entity <> record_entity THEN
        RAISE EXCEPTION 'substatus % is a % substatus, not a % one', substatus, config.entity, record_entity
            USING ERRCODE = 'check_violation', CONSTRAINT = record_table || '_substatus_other_entity';
    END IF;
    IF config.status IS DISTINCT FROM record_status THEN
        RAISE EXCEPTION 'substatus % belongs to % "%", not "%"', substatus, status_word, config.status, record_status
            USING ERRCODE = 'check_violation', CONSTRAINT = record_table || '_substatus_other_' || status_word;
    END IF;
    IF NOT config.is_active THEN
        RAISE EXCEPTION 'substatus % is inactive', substatus
            USING ERRCODE = 'check_violation', CONSTRAINT = record_table || '_substatus_inactive';
    END IF;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_contacts_before_insert() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    IF NEW.substatus_id IS NULL THEN
        NEW.substatus_id := (
            SELECT id FROM status_substatus_configs
            WHERE tenant_id = NEW.tenant_id AND entity = 'contact' AND status = NEW.stage AND is_default
        );
    ELSE
        PERFORM substatus_check(NEW.substatus_id, NEW.tenant_id, 'contact', NEW.stage, 'contacts');
    END IF;
    NEW.substatus_since := CASE WHEN NEW.substatus_id IS NOT NULL THEN statement_timestamp() END;
    RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_contacts_before_update() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    IF NEW.substatus_id IS NULL OR NEW.substatus_id = OLD.substatus_id THEN
        -- No substatus named: it stays while the stage stays, else the new stage's default.
        IF NEW.stage IS DISTINCT FROM OLD.stage OR NEW.substatus_id IS NULL THEN
            NEW.substatus_id := (
            SELECT id FROM status_substatus_configs
            WHERE tenant_id = NEW.tenant_id AND entity = 'contact' AND status = NEW.stage AND is_default
        );
        END IF;
    ELSE
        PERFORM substatus_check(NEW.substatus_id, NEW.tenant_id, 'contact', NEW.stage, 'contacts');
    END IF;
    IF NEW.substatus_id IS DISTINCT FROM OLD.substatus_id THEN
        NEW.substatus_since := CASE WHEN NEW.substatus_id IS NOT NULL THEN statement_timestamp() END;
    END IF;
    RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_contacts_history_insert() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    INSERT INTO substatus_history (
        tenant_id, entity, record_id, from_status, to_status, from_substatus_id, to_substatus_id,
        before, after, changed_by_id, impersonated_by_id, reason, source, changed_at
    )
    SELECT new_row.tenant_id, 'contact', new_row.id, NULL, new_row.stage, NULL, new_row.substatus_id,
           NULL, jsonb_build_object('stage', new_row.stage, 'substatus', new_row.substatus_id),
           context.changed_by_id, context.impersonated_by_id, context.reason, context.source,
           statement_timestamp()
    FROM new_rows AS new_row CROSS JOIN substatus_change_context() AS context;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_contacts_history_update() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    INSERT INTO substatus_history (
        tenant_id, entity, record_id, from_status, to_status, from_substatus_id, to_substatus_id,
        before, after, changed_by_id, impersonated_by_id, reason, source, changed_at
    )
    SELECT new_row.tenant_id, 'contact', new_row.id, old_row.stage, new_row.stage,
           old_row.substatus_id, new_row.substatus_id,
           jsonb_build_object('stage', old_row.stage, 'substatus', old_row.substatus_id),
           jsonb_build_object('stage', new_row.stage, 'substatus', new_row.substatus_id),
           context.changed_by_id, context.impersonated_by_id, context.reason, context.source,
           statement_timestamp()
    FROM new_rows AS new_row
    JOIN old_rows AS old_row ON old_row.id = new_row.id
    CROSS JOIN substatus_change_context() AS context
    WHERE new_row.stage IS DISTINCT FROM old_row.stage
       OR new_row.substatus_id IS DISTINCT FROM old_row.substatus_id;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_projects_before_insert() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    IF NEW.substatus_id IS NULL THEN
        NEW.substatus_id := (
            SELECT id FROM status_substatus_configs
            WHERE tenant_id = NEW.tenant_id AND entity = 'project' AND status = NEW.status AND is_default
        );
    ELSE
        PERFORM substatus_check(NEW.substatus_id, NEW.tenant_id, 'project', NEW.status, 'projects');
    END IF;
    NEW.substatus_since := CASE WHEN NEW.substatus_id IS NOT NULL THEN statement_timestamp() END;
    RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_projects_before_update() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    IF NEW.substatus_id IS NULL OR NEW.substatus_id = OLD.substatus_id THEN
        -- No substatus named: it stays while the status stays, else the new status's default.
        IF NEW.status IS DISTINCT FROM OLD.status OR NEW.substatus_id IS NULL THEN
            NEW.substatus_id := (
            SELECT id FROM status_substatus_configs
            WHERE tenant_id = NEW.tenant_id AND entity = 'project' AND status = NEW.status AND is_default
        );
        END IF;
    ELSE
        PERFORM substatus_check(NEW.substatus_id, NEW.tenant_id, 'project', NEW.status, 'projects');
    END IF;
    IF NEW.substatus_id IS DISTINCT FROM OLD.substatus_id THEN
        NEW.substatus_since := CASE WHEN NEW.substatus_id IS NOT NULL THEN statement_timestamp() END;
    END IF;
    RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_projects_history_insert() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    INSERT INTO substatus_history (
        tenant_id, entity, record_id, from_status, to_status, from_substatus_id, to_substatus_id,
        before, after, changed_by_id, impersonated_by_id, reason, source, changed_at
    )
    SELECT new_row.tenant_id, 'project', new_row.id, NULL, new_row.status, NULL, new_row.substatus_id,
           NULL, jsonb_build_object('status', new_row.status, 'substatus', new_row.substatus_id),
           context.changed_by_id, context.impersonated_by_id, context.reason, context.source,
           statement_timestamp()
    FROM new_rows AS new_row CROSS JOIN substatus_change_context() AS context;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_projects_history_update() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    INSERT INTO substatus_history (
        tenant_id, entity, record_id, from_status, to_status, from_substatus_id, to_substatus_id,
        before, after, changed_by_id, impersonated_by_id, reason, source, changed_at
    )
    SELECT new_row.tenant_id, 'project', new_row.id, old_row.status, new_row.status,
           old_row.substatus_id, new_row.substatus_id,
           jsonb_build_object('status', old_row.status, 'substatus', old_row.substatus_id),
           jsonb_build_object('status', new_row.status, 'substatus', new_row.substatus_id),
           context.changed_by_id, context.impersonated_by_id, context.reason, context.source,
           statement_timestamp()
    FROM new_rows AS new_row
    JOIN old_rows AS old_row ON old_row.id = new_row.id
    CROSS JOIN substatus_change_context() AS context
    WHERE new_row.status IS DISTINCT FROM old_row.status
       OR new_row.substatus_id IS DISTINCT FROM old_row.substatus_id;
    RETURN NULL;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_configs_check_target() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM status_substatus_configs AS target
        WHERE target.id = NEW.auto_transition_to_id
          AND target.tenant_id = NEW.tenant_id AND target.entity = NEW.entity AND target.status = NEW.status
    ) THEN
        RAISE EXCEPTION 'substatus % cannot transition to substatus %: not one of the same status',
            NEW.id, NEW.auto_transition_to_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'substatus_configs_transition_target';
    END IF;
    RETURN NEW;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_configs_parent_fixed() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    RAISE EXCEPTION 'substatus % cannot move to another tenant, entity or status', OLD.id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'substatus_configs_parent_fixed';
END
$function$;

CREATE OR REPLACE FUNCTION substatus_configs_protect_history() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    IF EXISTS (
        SELECT 1 FROM substatus_history AS history
        WHERE history.tenant_id = OLD.tenant_id AND history.entity = OLD.entity
          AND (history.to_substatus_id = OLD.id OR history.from_substatus_id = OLD.id)
    ) THEN
        RAISE EXCEPTION 'substatus % appears in the substatus history: deactivate it instead', OLD.id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'substatus_configs_in_history';
    END IF;
    RETURN OLD;
END
$function$;

CREATE OR REPLACE FUNCTION substatus_history_append_only() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    RAISE EXCEPTION 'substatus history is append-only (% refused)', TG_OP
        USING ERRCODE = 'check_violation', CONSTRAINT = 'substatus_history_append_only';
END
$function$;

CREATE TRIGGER substatus_before_insert
    BEFORE INSERT ON contacts
    FOR EACH ROW
    EXECUTE FUNCTION substatus_contacts_before_insert();

CREATE TRIGGER substatus_before_update
    BEFORE UPDATE OF stage, substatus_id ON contacts
    FOR EACH ROW
    WHEN (OLD.stage IS DISTINCT FROM NEW.stage OR OLD.substatus_id IS DISTINCT FROM NEW.substatus_id)
    EXECUTE FUNCTION substatus_contacts_before_update();

CREATE TRIGGER substatus_history_insert
    AFTER INSERT ON contacts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION substatus_contacts_history_insert();

CREATE TRIGGER substatus_history_update
    AFTER UPDATE ON contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION substatus_contacts_history_update();

CREATE TRIGGER substatus_before_insert
    BEFORE INSERT ON projects
    FOR EACH ROW
    EXECUTE FUNCTION substatus_projects_before_insert();

CREATE TRIGGER substatus_before_update
    BEFORE UPDATE OF status, substatus_id ON projects
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.substatus_id IS DISTINCT FROM NEW.substatus_id)
    EXECUTE FUNCTION substatus_projects_before_update();

CREATE TRIGGER substatus_history_insert
    AFTER INSERT ON projects
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION substatus_projects_history_insert();

CREATE TRIGGER substatus_history_update
    AFTER UPDATE ON projects
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION substatus_projects_history_update();

CREATE TRIGGER substatus_check_target
    BEFORE INSERT OR UPDATE OF auto_transition_to_id ON status_substatus_configs
    FOR EACH ROW
    WHEN (NEW.auto_transition_to_id IS NOT NULL)
    EXECUTE FUNCTION substatus_configs_check_target();

CREATE TRIGGER substatus_parent_fixed
    BEFORE UPDATE ON status_substatus_configs
    FOR EACH ROW
    WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id OR OLD.entity IS DISTINCT FROM NEW.entity OR OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION substatus_configs_parent_fixed();

CREATE TRIGGER substatus_protect_history
    BEFORE DELETE ON status_substatus_configs
    FOR EACH ROW
    EXECUTE FUNCTION substatus_configs_protect_history();

CREATE TRIGGER substatus_append_only
    BEFORE UPDATE OR DELETE ON substatus_history
    FOR EACH STATEMENT
    EXECUTE FUNCTION substatus_history_append_only();

CREATE TRIGGER substatus_install_default_catalog
    AFTER INSERT ON tenants
    REFERENCING NEW TABLE AS new_tenants
    FOR EACH STATEMENT
    EXECUTE FUNCTION substatus_install_default_catalog();
"""

UNINSTALL = r"""
DROP TRIGGER IF EXISTS substatus_install_default_catalog ON tenants;
DROP TRIGGER IF EXISTS substatus_append_only ON substatus_history;
DROP TRIGGER IF EXISTS substatus_protect_history ON status_substatus_configs;
DROP TRIGGER IF EXISTS substatus_parent_fixed ON status_substatus_configs;
DROP TRIGGER IF EXISTS substatus_check_target ON status_substatus_configs;
DROP TRIGGER IF EXISTS substatus_history_update ON projects;
DROP TRIGGER IF EXISTS substatus_history_insert ON projects;
DROP TRIGGER IF EXISTS substatus_before_update ON projects;
DROP TRIGGER IF EXISTS substatus_before_insert ON projects;
DROP TRIGGER IF EXISTS substatus_history_update ON contacts;
DROP TRIGGER IF EXISTS substatus_history_insert ON contacts;
DROP TRIGGER IF EXISTS substatus_before_update ON contacts;
DROP TRIGGER IF EXISTS substatus_before_insert ON contacts;
DROP FUNCTION IF EXISTS substatus_history_append_only();
DROP FUNCTION IF EXISTS substatus_configs_protect_history();
DROP FUNCTION IF EXISTS substatus_configs_parent_fixed();
DROP FUNCTION IF EXISTS substatus_configs_check_target();
DROP FUNCTION IF EXISTS substatus_projects_history_update();
DROP FUNCTION IF EXISTS substatus_projects_history_insert();
DROP FUNCTION IF EXISTS substatus_projects_before_update();
DROP FUNCTION IF EXISTS substatus_projects_before_insert();
DROP FUNCTION IF EXISTS substatus_contacts_history_update();
DROP FUNCTION IF EXISTS substatus_contacts_history_insert();
DROP FUNCTION IF EXISTS substatus_contacts_before_update();
DROP FUNCTION IF EXISTS substatus_contacts_before_insert();
DROP FUNCTION IF EXISTS substatus_check(bigint, bigint, text, text, text);
DROP FUNCTION IF EXISTS substatus_change_context();
DROP FUNCTION IF EXISTS substatus_install_default_catalog();
DROP FUNCTION IF EXISTS substatus_default_catalog();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("substatus", "0001_initial"),
        ("contacts", "0003_contact_substatus"),
        ("crm", "0005_project_substatus"),
    ]

    operations = [migrations.RunSQL(INSTALL, reverse_sql=UNINSTALL)]
