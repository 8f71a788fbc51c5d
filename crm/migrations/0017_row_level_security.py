"""Row-level security on the core's tenant tables (issue 17).

`app_cross_tenant()` reads `app.cross_tenant`, which only `crm.rls.cross_tenant()` sets (and
only for its transaction): the one, logged path for work across tenants. The tenant policy
(crm.migration_operations.EnableTenantRowSecurity) lets a transaction see and write the rows
of the tenant it published, or every row on that path. Each app enables it on its own tables.

Memberships are also readable by their own user (`read_also`): the API and the admin find a
user's tenants from them before any tenant is published. The user id comes from the same
transaction-local setting (`app.user_id`), published before the lookup.
"""

from django.db import migrations

from crm.migration_operations import EnableTenantRowSecurity

CROSS_TENANT = """
CREATE OR REPLACE FUNCTION app_cross_tenant() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT COALESCE(current_setting('app.cross_tenant', true), '') = 'on' $$;
"""

DROP_CROSS_TENANT = "DROP FUNCTION IF EXISTS app_cross_tenant();"


class Migration(migrations.Migration):
    dependencies = [("crm", "0016_alive_substatus_index")]

    operations = [
        migrations.RunSQL(CROSS_TENANT, reverse_sql=DROP_CROSS_TENANT),
        EnableTenantRowSecurity("tenant_users", read_also="user_id = (SELECT app_effective_user_id())"),
        EnableTenantRowSecurity("projects"),
        EnableTenantRowSecurity("project_contacts"),
        EnableTenantRowSecurity("activities"),
    ]
