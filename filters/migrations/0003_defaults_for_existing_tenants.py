"""Give every tenant that existed before 0002 the default catalog and saved filters.

New tenants get them from the trigger on `tenants`. Applying again only adds what is missing
(ON CONFLICT DO NOTHING); reversing keeps the rows (they go with the tables when 0001 is reversed).
"""

from django.db import migrations

DEFAULTS_FOR_EXISTING_TENANTS = """
SELECT filters_default_catalog(id), filters_default_saved_filters(id) FROM tenants ORDER BY id
"""


class Migration(migrations.Migration):
    dependencies = [("filters", "0002_sql")]

    operations = [migrations.RunSQL(DEFAULTS_FOR_EXISTING_TENANTS, reverse_sql=migrations.RunSQL.noop)]
