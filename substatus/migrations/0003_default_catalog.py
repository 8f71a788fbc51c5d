"""Give every existing tenant the default catalog and every existing record its default substatus.

Set-based, through the triggers of 0002: the records' history rows say source `migration`.
New tenants get the catalog from the trigger on `tenants`. Reversing keeps the data (it goes
with the tables when 0001 is reversed); applying again only fills what is missing.
"""

from django.db import migrations

PUBLISH_SOURCE = """
SELECT set_config('app.change_source', 'migration', true),
       set_config('app.change_reason', 'Substatus tracking started', true)
"""

CATALOG_FOR_EXISTING_TENANTS = """
INSERT INTO status_substatus_configs (tenant_id, entity, status, key, label, color, "position", is_default, is_terminal)
SELECT tenant.id, catalog.entity, catalog.status, catalog.key, catalog.label, catalog.color,
       catalog."position", catalog.is_default, catalog.is_terminal
FROM tenants AS tenant CROSS JOIN substatus_default_catalog() AS catalog
WHERE NOT EXISTS (SELECT 1 FROM status_substatus_configs AS config WHERE config.tenant_id = tenant.id)
"""

DEFAULTS_FOR_EXISTING = """
UPDATE {table} AS record SET substatus_id = config.id
FROM status_substatus_configs AS config
WHERE record.substatus_id IS NULL
  AND config.tenant_id = record.tenant_id AND config.entity = '{entity}'
  AND config.status = record.{status} AND config.is_default
"""


class Migration(migrations.Migration):
    dependencies = [("substatus", "0002_triggers")]

    operations = [
        migrations.RunSQL(
            [
                PUBLISH_SOURCE,
                CATALOG_FOR_EXISTING_TENANTS,
                DEFAULTS_FOR_EXISTING.format(table="contacts", entity="contact", status="stage"),
                DEFAULTS_FOR_EXISTING.format(table="projects", entity="project", status="status"),
            ],
            reverse_sql=migrations.RunSQL.noop,
        )
    ]
