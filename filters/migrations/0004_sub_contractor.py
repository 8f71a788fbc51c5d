"""The contacts' category `subcontractor` is now `sub_contractor` (contacts 0011): the default
catalog function offers the new value, and existing catalogs' Category options follow.

Reversing restores the function and the option as 0002 and 0003 wrote them.
"""

from django.db import migrations

NEW_FUNCTION = r"""CREATE OR REPLACE FUNCTION filters_default_catalog(tenant bigint) RETURNS void
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
        ('contacts', 'contact_category', 'Category', 'select', 'equals', '[{"value": "homeowner", "label": "Homeowner", "color": null}, {"value": "adjuster", "label": "Adjuster", "color": null}, {"value": "sub_contractor", "label": "Sub-contractor", "color": null}, {"value": "property_manager", "label": "Property Manager", "color": null}, {"value": "real_estate_agent", "label": "Real Estate Agent", "color": null}, {"value": "developer", "label": "Developer", "color": null}, {"value": "local_business", "label": "Local Business", "color": null}, {"value": "other", "label": "Other", "color": null}]'::jsonb, 8, false),
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
$function$;"""

OLD_FUNCTION = r"""CREATE OR REPLACE FUNCTION filters_default_catalog(tenant bigint) RETURNS void
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
$function$;"""

RENAME_OPTION = """
UPDATE filter_configs AS config
SET filter_options = (
        SELECT jsonb_agg(CASE WHEN option->>'value' = %(old)s
                              THEN option || jsonb_build_object('value', %(new)s, 'label', %(label)s)
                              ELSE option END ORDER BY position)
        FROM jsonb_array_elements(config.filter_options) WITH ORDINALITY AS options (option, position)
    ),
    updated_at = now()
WHERE field_name = 'contact_category' AND filter_options @> jsonb_build_array(jsonb_build_object('value', %(old)s))
"""


class Migration(migrations.Migration):
    dependencies = [("filters", "0003_defaults_for_existing_tenants"), ("contacts", "0011_sub_contractor")]

    operations = [
        migrations.RunSQL(NEW_FUNCTION, reverse_sql=OLD_FUNCTION),
        migrations.RunSQL(
            [(RENAME_OPTION, {"old": "subcontractor", "new": "sub_contractor", "label": "Sub-contractor"})],
            reverse_sql=[(RENAME_OPTION, {"old": "sub_contractor", "new": "subcontractor", "label": "Subcontractor"})],
        ),
    ]
