"""SQL functions that read the actor published by `crm.actor.publish_actor()`.

The Django form of the old system's `get_effective_user_id()`, `get_admin_user_id()` and
`is_being_impersonated()`: triggers call these to record who did what. Each returns NULL
(false for `app_is_impersonating`) when no actor was published in the transaction.
"""

from django.db import migrations

FUNCTIONS = """
CREATE OR REPLACE FUNCTION app_setting_bigint(name text) RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting(name, true), '')::bigint $$;

CREATE OR REPLACE FUNCTION app_tenant_id() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT app_setting_bigint('app.tenant_id') $$;

CREATE OR REPLACE FUNCTION app_effective_user_id() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT app_setting_bigint('app.user_id') $$;

CREATE OR REPLACE FUNCTION app_real_user_id() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT app_setting_bigint('app.real_user_id') $$;

CREATE OR REPLACE FUNCTION app_is_impersonating() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT COALESCE(app_real_user_id() <> app_effective_user_id(), false) $$;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS app_is_impersonating();
DROP FUNCTION IF EXISTS app_real_user_id();
DROP FUNCTION IF EXISTS app_effective_user_id();
DROP FUNCTION IF EXISTS app_tenant_id();
DROP FUNCTION IF EXISTS app_setting_bigint(text);
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0003_ridgeline_additions")]

    operations = [migrations.RunSQL(FUNCTIONS, reverse_sql=DROP_FUNCTIONS)]
