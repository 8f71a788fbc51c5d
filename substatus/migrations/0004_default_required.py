"""A status that has substatuses keeps at least one default (`substatus/triggers.py`, rule 5).

First, any status of an existing tenant whose substatuses were left without a default (raw
SQL) gets its first one, by position, as the default (active, as a default must be); then the
constraint trigger keeps it so. Reversing drops the trigger and its function; the defaults
given stay, a valid state under either version.
"""

from django.db import migrations

REPAIR = """
UPDATE status_substatus_configs AS config SET is_default = true, is_active = true, updated_at = now()
FROM (
    SELECT DISTINCT ON (tenant_id, entity, status) id
    FROM status_substatus_configs AS candidate
    WHERE NOT EXISTS (
        SELECT 1 FROM status_substatus_configs AS other
        WHERE other.tenant_id = candidate.tenant_id AND other.entity = candidate.entity
          AND other.status = candidate.status AND other.is_default
    )
    ORDER BY tenant_id, entity, status, is_active DESC, "position", id
) AS first
WHERE config.id = first.id
"""

INSTALL = r"""
CREATE OR REPLACE FUNCTION substatus_configs_default_required() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
DECLARE
    config status_substatus_configs%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        config := OLD;
    ELSE
        config := NEW;
    END IF;
    IF EXISTS (
        SELECT 1 FROM status_substatus_configs AS other
        WHERE other.tenant_id = config.tenant_id AND other.entity = config.entity AND other.status = config.status
    ) AND NOT EXISTS (
        SELECT 1 FROM status_substatus_configs AS other
        WHERE other.tenant_id = config.tenant_id AND other.entity = config.entity AND other.status = config.status
          AND other.is_default
    ) THEN
        RAISE EXCEPTION 'status "%" of % substatuses of tenant % has no default', config.status, config.entity,
            config.tenant_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'substatus_configs_default_required';
    END IF;
    RETURN NULL;
END
$function$;

CREATE CONSTRAINT TRIGGER substatus_default_required
    AFTER INSERT OR DELETE OR UPDATE OF is_default ON status_substatus_configs
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    EXECUTE FUNCTION substatus_configs_default_required();
"""

UNINSTALL = """
DROP TRIGGER IF EXISTS substatus_default_required ON status_substatus_configs;
DROP FUNCTION IF EXISTS substatus_configs_default_required();
"""


class Migration(migrations.Migration):
    dependencies = [("substatus", "0003_default_catalog")]

    operations = [
        migrations.RunSQL(REPAIR, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(INSTALL, reverse_sql=UNINSTALL),
    ]
