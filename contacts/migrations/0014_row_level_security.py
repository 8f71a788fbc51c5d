"""Row-level security on this app's tenant tables (crm 0017, issue 17): a transaction sees and
writes only the rows of the tenant it published, or every row on the logged cross-tenant path."""

from django.db import migrations

from crm.migration_operations import EnableTenantRowSecurity


class Migration(migrations.Migration):
    dependencies = [("contacts", "0013_alive_substatus_index"), ("crm", "0017_row_level_security")]

    operations = [
        EnableTenantRowSecurity("contacts"),
        EnableTenantRowSecurity("merged_organizations"),
    ]
