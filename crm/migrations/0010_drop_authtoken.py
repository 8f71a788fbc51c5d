"""Drop DRF's `authtoken_token`, whose tokens migration 0009 carried over to `auth_tokens`.

What `manage.py migrate authtoken zero` would have done had the app still been installed:
the table (keys in clear) goes, and so do the app's rows in `django_migrations`, which
`schema_check` would otherwise list as applied but not in the code.

Reversing creates nothing: the code of an earlier release, finding the `authtoken`
migrations unapplied, creates its (empty) table again with its own `migrate`.
"""

from django.db import migrations

DROP = """
DROP TABLE IF EXISTS authtoken_token;
DELETE FROM django_migrations WHERE app = 'authtoken';
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0009_auth_tokens_from_authtoken")]

    operations = [migrations.RunSQL(DROP, reverse_sql=migrations.RunSQL.noop)]
