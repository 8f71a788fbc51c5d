"""Row-level security on this app's tenant tables (crm 0017, issue 17): a transaction sees and
writes only the rows of the tenant it published, or every row on the logged cross-tenant path."""

from django.db import migrations

from crm.migration_operations import EnableTenantRowSecurity


class Migration(migrations.Migration):
    dependencies = [("substatus", "0011_open_stay_day_counts"), ("crm", "0017_row_level_security")]

    operations = [
        EnableTenantRowSecurity("status_substatus_configs"),
        EnableTenantRowSecurity("substatus_history"),
        EnableTenantRowSecurity("substatus_stays"),
        EnableTenantRowSecurity("substatus_stay_counts"),
        EnableTenantRowSecurity("substatus_stay_buckets"),
        EnableTenantRowSecurity("substatus_open_stay_counts"),
        EnableTenantRowSecurity("substatus_open_stay_day_counts"),
        EnableTenantRowSecurity("substatus_purged_records"),
    ]
