"""Install the filters' SQL: every tenant's defaults (a trigger on tenants) and stale marking.

A frozen copy of `filters/sql.py` as of this migration (migrations never import app code);
a later change is a new migration. Reversing drops the triggers and functions.
"""

from django.db import migrations

INSTALL = r"""
CREATE OR REPLACE FUNCTION filters_default_catalog(tenant bigint) RETURNS void
    LANGUAGE sql VOLATILE
    AS $function$
    INSERT INTO filter_configs (
        tenant_id, entity_type, field_name, field_label, field_type, filter_operator, filter_options,
        display_order, is_quick_filter, is_advanced_filter, is_active, created_at, updated_at
    )
    SELECT tenant, entity_type, field_name, field_label, field_type, filter_operator, filter_options,
           display_order, is_quick_filter, true, true, now(), now()
    FROM (VALUES
        ('contacts', 'stage', 'Stage', 'multi_select', 'in', '[{"value": "new", "label": "New", "color": "blue"}, {"value": "contacted", "label": "Contacted", "color": "cyan"}, {"value": "qualified", "label": "Qualified", "color": "green"}, {"value": "proposal", "label": "Proposal", "color": "yellow"}, {"value": "negotiation", "label": "Negotiation", "color": null}, {"value": "won", "label": "Won", "color": "emerald"}, {"value": "lost", "label": "Lost", "color": "red"}]'::jsonb, 0, true),
        ('contacts', 'assigned_to', 'Assigned to', 'user_select', 'equals', '[]'::jsonb, 1, true),
        ('contacts', 'source', 'Source', 'select', 'equals', '[{"value": "website", "label": "Website", "color": null}, {"value": "referral", "label": "Referral", "color": null}, {"value": "door-knock", "label": "Door knock", "color": null}, {"value": "social-media", "label": "Social media", "color": null}, {"value": "advertisement", "label": "Advertisement", "color": null}]'::jsonb, 2, false),
        ('contacts', 'lead_score', 'Lead score', 'number_range', 'between', '[]'::jsonb, 3, false),
        ('contacts', 'priority', 'Priority', 'select', 'equals', '[{"value": "low", "label": "Low", "color": "gray"}, {"value": "normal", "label": "Normal", "color": "blue"}, {"value": "high", "label": "High", "color": "orange"}, {"value": "urgent", "label": "Urgent", "color": "red"}]'::jsonb, 4, false),
        ('contacts', 'created_at', 'Created', 'date_range', 'between', '[]'::jsonb, 5, false),
        ('contacts', 'type', 'Type', 'select', 'equals', '[{"value": "lead", "label": "Lead", "color": null}, {"value": "customer", "label": "Customer", "color": null}, {"value": "prospect", "label": "Prospect", "color": null}]'::jsonb, 6, false),
        ('contacts', 'substatus', 'Substatus', 'multi_select', 'in', '[]'::jsonb, 7, false),
        ('contacts', 'contact_category', 'Category', 'select', 'equals', '[{"value": "homeowner", "label": "Homeowner", "color": null}, {"value": "adjuster", "label": "Adjuster", "color": null}, {"value": "subcontractor", "label": "Subcontractor", "color": null}, {"value": "property_manager", "label": "Property Manager", "color": null}, {"value": "real_estate_agent", "label": "Real Estate Agent", "color": null}, {"value": "developer", "label": "Developer", "color": null}, {"value": "local_business", "label": "Local Business", "color": null}, {"value": "other", "label": "Other", "color": null}]'::jsonb, 8, false),
        ('contacts', 'is_organization', 'Company', 'boolean', 'equals', '[]'::jsonb, 9, false),
        ('contacts', 'tags', 'Tags', 'tag_select', 'any_of', '[]'::jsonb, 10, false),
        ('contacts', 'address_city', 'City', 'text', 'contains', '[]'::jsonb, 11, false),
        ('contacts', 'insurance_carrier', 'Insurance carrier', 'text', 'contains', '[]'::jsonb, 12, false),
        ('projects', 'status', 'Status', 'multi_select', 'in', '[{"value": "estimate", "label": "Estimate", "color": "gray"}, {"value": "approved", "label": "Approved", "color": "blue"}, {"value": "scheduled", "label": "Scheduled", "color": "purple"}, {"value": "in_progress", "label": "In progress", "color": "yellow"}, {"value": "completed", "label": "Completed", "color": "green"}, {"value": "cancelled", "label": "Cancelled", "color": "red"}]'::jsonb, 0, true),
        ('projects', 'type', 'Type', 'select', 'equals', '[{"value": "repair", "label": "Repair", "color": null}, {"value": "replacement", "label": "Replacement", "color": null}, {"value": "maintenance", "label": "Maintenance", "color": null}, {"value": "emergency", "label": "Emergency", "color": null}]'::jsonb, 1, false),
        ('projects', 'estimated_value', 'Estimated value', 'number_range', 'between', '[]'::jsonb, 2, false),
        ('projects', 'substatus', 'Substatus', 'multi_select', 'in', '[]'::jsonb, 3, false),
        ('projects', 'scheduled_start', 'Scheduled start', 'date_range', 'between', '[]'::jsonb, 4, false),
        ('pipeline', 'status', 'Status', 'multi_select', 'in', '[{"value": "estimate", "label": "Estimate", "color": "gray"}, {"value": "approved", "label": "Approved", "color": "blue"}, {"value": "scheduled", "label": "Scheduled", "color": "purple"}, {"value": "in_progress", "label": "In progress", "color": "yellow"}, {"value": "completed", "label": "Completed", "color": "green"}, {"value": "cancelled", "label": "Cancelled", "color": "red"}]'::jsonb, 0, true),
        ('pipeline', 'type', 'Type', 'select', 'equals', '[{"value": "repair", "label": "Repair", "color": null}, {"value": "replacement", "label": "Replacement", "color": null}, {"value": "maintenance", "label": "Maintenance", "color": null}, {"value": "emergency", "label": "Emergency", "color": null}]'::jsonb, 1, false),
        ('pipeline', 'estimated_value', 'Estimated value', 'number_range', 'between', '[]'::jsonb, 2, false),
        ('pipeline', 'substatus', 'Substatus', 'multi_select', 'in', '[]'::jsonb, 3, false),
        ('pipeline', 'scheduled_start', 'Scheduled start', 'date_range', 'between', '[]'::jsonb, 4, false),
        ('activities', 'type', 'Type', 'multi_select', 'in', '[{"value": "call", "label": "Call", "color": null}, {"value": "email", "label": "Email", "color": null}, {"value": "sms", "label": "SMS", "color": null}, {"value": "meeting", "label": "Meeting", "color": null}, {"value": "note", "label": "Note", "color": null}, {"value": "task", "label": "Task", "color": null}, {"value": "door_knock", "label": "Door Knock", "color": null}]'::jsonb, 0, true),
        ('activities', 'created_at', 'Date', 'date_range', 'between', '[]'::jsonb, 1, false),
        ('activities', 'performed_by', 'Performed by', 'user_select', 'equals', '[]'::jsonb, 2, false)
    ) AS catalog (entity_type, field_name, field_label, field_type, filter_operator, filter_options,
                  display_order, is_quick_filter)
    ON CONFLICT (tenant_id, entity_type, field_name) DO NOTHING
$function$;


CREATE OR REPLACE FUNCTION filters_default_saved_filters(tenant bigint) RETURNS void
    LANGUAGE sql VOLATILE
    AS $function$
    INSERT INTO saved_filters (
        tenant_id, entity_type, name, description, filter_criteria, sort, columns, is_shared, is_default,
        is_system, is_active, is_stale, stale_reason, usage_count, created_at, updated_at
    )
    SELECT tenant, entity_type, name, description, filter_criteria, '', '[]'::jsonb, true, false,
           true, true, false, '', 0, now(), now()
    FROM (VALUES
        ('contacts', 'My Active Leads', 'Open leads assigned to you.', '{"and": [{"field": "stage", "op": "in", "value": ["new", "contacted", "qualified", "proposal"]}, {"field": "assigned_to", "op": "equals", "value": "me"}]}'::jsonb),
        ('contacts', 'Hot Leads (Score > 70)', 'High-scoring leads still open.', '{"and": [{"field": "lead_score", "op": "greater_than", "value": 70}, {"field": "stage", "op": "not_in", "value": ["won", "lost"]}]}'::jsonb),
        ('projects', 'Projects In Progress', 'Jobs approved, scheduled or under way.', '{"and": [{"field": "status", "op": "in", "value": ["approved", "scheduled", "in_progress"]}]}'::jsonb)
    ) AS defaults (entity_type, name, description, filter_criteria)
    ON CONFLICT (tenant_id, entity_type, name) DO NOTHING
$function$;


CREATE OR REPLACE FUNCTION filters_tenant_defaults() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    PERFORM filters_default_catalog(NEW.id);
    PERFORM filters_default_saved_filters(NEW.id);
    RETURN NULL;
END
$function$;


CREATE OR REPLACE FUNCTION filters_mark_saved_filters_stale() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
DECLARE
    reason text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        reason := format('The filter %s (%s) was deleted.', OLD.field_label, OLD.field_name);
    ELSIF OLD.field_name IS DISTINCT FROM NEW.field_name THEN
        reason := format('The filter %s now filters on %s instead of %s.', OLD.field_label, NEW.field_name,
                         OLD.field_name);
    ELSIF OLD.field_type IS DISTINCT FROM NEW.field_type THEN
        reason := format('The filter %s (%s) changed type from %s to %s.', OLD.field_label, OLD.field_name,
                         OLD.field_type, NEW.field_type);
    ELSE
        reason := format('The filter %s (%s) was deactivated.', OLD.field_label, OLD.field_name);
    END IF;
    UPDATE saved_filters
    SET is_stale = true, stale_reason = left(reason, 300), updated_at = now()
    WHERE tenant_id = OLD.tenant_id AND entity_type = OLD.entity_type
      AND jsonb_path_exists(filter_criteria, '$.** ? (@.field == $name)', jsonb_build_object('name', OLD.field_name));
    RETURN NULL;
END
$function$;


CREATE TRIGGER filters_tenant_defaults
    AFTER INSERT ON tenants
    FOR EACH ROW
    EXECUTE FUNCTION filters_tenant_defaults();

CREATE TRIGGER filters_config_changed
    AFTER UPDATE ON filter_configs
    FOR EACH ROW
    WHEN ((OLD.is_active AND NOT NEW.is_active) OR OLD.field_type IS DISTINCT FROM NEW.field_type
          OR OLD.field_name IS DISTINCT FROM NEW.field_name)
    EXECUTE FUNCTION filters_mark_saved_filters_stale();

CREATE TRIGGER filters_config_deleted
    AFTER DELETE ON filter_configs
    FOR EACH ROW
    EXECUTE FUNCTION filters_mark_saved_filters_stale();
"""

UNINSTALL = r"""
DROP TRIGGER IF EXISTS filters_config_deleted ON filter_configs;
DROP TRIGGER IF EXISTS filters_config_changed ON filter_configs;
DROP TRIGGER IF EXISTS filters_tenant_defaults ON tenants;
DROP FUNCTION IF EXISTS filters_mark_saved_filters_stale();
DROP FUNCTION IF EXISTS filters_tenant_defaults();
DROP FUNCTION IF EXISTS filters_default_saved_filters(bigint);
DROP FUNCTION IF EXISTS filters_default_catalog(bigint);
"""


class Migration(migrations.Migration):
    dependencies = [("filters", "0001_initial")]

    operations = [migrations.RunSQL(INSTALL, reverse_sql=UNINSTALL)]
