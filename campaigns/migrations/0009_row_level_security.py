"""Row-level security on this app's tenant tables (crm 0017, issue 17): a transaction sees and
writes only the rows of the tenant it published, or every row on the logged cross-tenant path."""

from django.db import migrations

from crm.migration_operations import EnableTenantRowSecurity


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0008_executions_provider_id_index"), ("crm", "0017_row_level_security")]

    operations = [
        EnableTenantRowSecurity("campaigns"),
        EnableTenantRowSecurity("campaign_versions"),
        EnableTenantRowSecurity("campaign_steps"),
        EnableTenantRowSecurity("campaign_triggers"),
        # The defaults (no tenant) are every tenant's to read; only the migrations write them.
        EnableTenantRowSecurity("campaign_templates", read_also="tenant_id IS NULL"),
        EnableTenantRowSecurity("campaign_enrollments"),
        EnableTenantRowSecurity("campaign_step_executions"),
        EnableTenantRowSecurity("campaign_ab_decisions"),
        EnableTenantRowSecurity("campaign_analytics"),
    ]
