"""The filters' SQL: every tenant's defaults, and stale marking of saved filters.

1. `filters_default_catalog(tenant_id)` and `filters_default_saved_filters(tenant_id)` insert
   the defaults of `filters/catalog.py` for one tenant (what is there already is kept); an
   AFTER INSERT trigger on `tenants` calls both, so a tenant made by the ORM, the admin, a
   migration or raw SQL starts with them, and the core never imports this app.
2. A catalog entry deactivated, deleted or changing type (or field) marks every saved filter
   of its tenant and entity that names it stale, with the reason (never deletes it).

Migration 0002 holds a frozen copy of `install_sql()` (migrations never import app code).
"""

import json

from filters.catalog import DEFAULT_CATALOG, DEFAULT_SAVED_FILTERS


def _literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | dict):
        return "'" + json.dumps(value).replace("'", "''") + "'::jsonb"
    return "'" + str(value).replace("'", "''") + "'"


def _catalog_rows() -> str:
    positions: dict[str, int] = {}
    rows = []
    for entry in DEFAULT_CATALOG:
        position = positions.get(entry.entity_type, 0)
        positions[entry.entity_type] = position + 1
        values = [
            entry.entity_type,
            entry.field_name,
            entry.field_label,
            entry.field_type,
            entry.filter_operator,
            entry.filter_options,
            position,
            entry.is_quick_filter,
        ]
        rows.append("        (" + ", ".join(_literal(value) for value in values) + ")")
    return ",\n".join(rows)


def _saved_rows() -> str:
    rows = []
    for entry in DEFAULT_SAVED_FILTERS:
        values = [entry.entity_type, entry.name, entry.description, entry.filter_criteria]
        rows.append("        (" + ", ".join(_literal(value) for value in values) + ")")
    return ",\n".join(rows)


DEFAULT_CATALOG_FUNCTION = f"""
CREATE OR REPLACE FUNCTION filters_default_catalog(tenant bigint) RETURNS void
    LANGUAGE sql VOLATILE
    AS $function$
    INSERT INTO filter_configs (
        tenant_id, entity_type, field_name, field_label, field_type, filter_operator, filter_options,
        display_order, is_quick_filter, is_advanced_filter, is_active, created_at, updated_at
    )
    SELECT tenant, entity_type, field_name, field_label, field_type, filter_operator, filter_options,
           display_order, is_quick_filter, true, true, now(), now()
    FROM (VALUES
{_catalog_rows()}
    ) AS catalog (entity_type, field_name, field_label, field_type, filter_operator, filter_options,
                  display_order, is_quick_filter)
    ON CONFLICT (tenant_id, entity_type, field_name) DO NOTHING
$function$;
"""  # noqa: S608 (constants only)

DEFAULT_SAVED_FILTERS_FUNCTION = f"""
CREATE OR REPLACE FUNCTION filters_default_saved_filters(tenant bigint) RETURNS void
    LANGUAGE sql VOLATILE
    AS $function$
    INSERT INTO saved_filters (
        tenant_id, entity_type, name, description, filter_criteria, sort, columns, is_shared, is_default,
        is_system, is_active, is_stale, stale_reason, usage_count, created_at, updated_at
    )
    SELECT tenant, entity_type, name, description, filter_criteria, '', '[]'::jsonb, true, false,
           true, true, false, '', 0, now(), now()
    FROM (VALUES
{_saved_rows()}
    ) AS defaults (entity_type, name, description, filter_criteria)
    ON CONFLICT (tenant_id, entity_type, name) DO NOTHING
$function$;
"""  # noqa: S608 (constants only)

TENANT_DEFAULTS_FUNCTION = """
CREATE OR REPLACE FUNCTION filters_tenant_defaults() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    PERFORM filters_default_catalog(NEW.id);
    PERFORM filters_default_saved_filters(NEW.id);
    RETURN NULL;
END
$function$;
"""

MARK_STALE_FUNCTION = """
CREATE OR REPLACE FUNCTION filters_mark_saved_filters_stale() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
DECLARE
    reason text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        reason := format('The filter %s (%s) was deleted.', OLD.field_label, OLD.field_name);
    ELSIF OLD.field_name IS DISTINCT FROM NEW.field_name THEN
        reason := format('The filter %s now filters on %s instead of %s.', OLD.field_label, NEW.field_name,
                         OLD.field_name);
    ELSIF OLD.field_type IS DISTINCT FROM NEW.field_type THEN
        reason := format('The filter %s (%s) changed type from %s to %s.', OLD.field_label, OLD.field_name,
                         OLD.field_type, NEW.field_type);
    ELSE
        reason := format('The filter %s (%s) was deactivated.', OLD.field_label, OLD.field_name);
    END IF;
    UPDATE saved_filters
    SET is_stale = true, stale_reason = left(reason, 300), updated_at = now()
    WHERE tenant_id = OLD.tenant_id AND entity_type = OLD.entity_type
      AND jsonb_path_exists(filter_criteria, '$.** ? (@.field == $name)', jsonb_build_object('name', OLD.field_name));
    RETURN NULL;
END
$function$;
"""

TRIGGERS = """
CREATE TRIGGER filters_tenant_defaults
    AFTER INSERT ON tenants
    FOR EACH ROW
    EXECUTE FUNCTION filters_tenant_defaults();

CREATE TRIGGER filters_config_changed
    AFTER UPDATE ON filter_configs
    FOR EACH ROW
    WHEN ((OLD.is_active AND NOT NEW.is_active) OR OLD.field_type IS DISTINCT FROM NEW.field_type
          OR OLD.field_name IS DISTINCT FROM NEW.field_name)
    EXECUTE FUNCTION filters_mark_saved_filters_stale();

CREATE TRIGGER filters_config_deleted
    AFTER DELETE ON filter_configs
    FOR EACH ROW
    EXECUTE FUNCTION filters_mark_saved_filters_stale();
"""

UNINSTALL = """
DROP TRIGGER IF EXISTS filters_config_deleted ON filter_configs;
DROP TRIGGER IF EXISTS filters_config_changed ON filter_configs;
DROP TRIGGER IF EXISTS filters_tenant_defaults ON tenants;
DROP FUNCTION IF EXISTS filters_mark_saved_filters_stale();
DROP FUNCTION IF EXISTS filters_tenant_defaults();
DROP FUNCTION IF EXISTS filters_default_saved_filters(bigint);
DROP FUNCTION IF EXISTS filters_default_catalog(bigint);
"""


def install_sql() -> str:
    return "\n".join(
        [
            DEFAULT_CATALOG_FUNCTION,
            DEFAULT_SAVED_FILTERS_FUNCTION,
            TENANT_DEFAULTS_FUNCTION,
            MARK_STALE_FUNCTION,
            TRIGGERS,
        ]
    )
