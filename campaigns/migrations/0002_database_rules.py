"""The campaign rules every write path obeys (ORM, bulk writes, admin, API, Celery, raw SQL).

1. Counters: `campaigns.total_enrolled` and `total_completed` follow `campaign_enrollments`
   in the same statement's transaction: up on insert (and on a move to `completed`), down on
   delete (and on a move away from it). Statement-level triggers over transition tables: one
   UPDATE per statement, however many rows it touched.
2. A published version never changes: its steps and triggers refuse inserts and changes to
   what they define (the counters and the scan's watermarks still move), and a published
   version cannot go back to draft. Deleting a whole campaign (a purge) still works.
"""

from django.db import migrations

DEFINITION_COLUMNS = {
    "campaign_steps": [
        "version_id",
        "name",
        "step_order",
        "parent_step_id",
        "step_type",
        "step_config",
        "delay_value",
        "delay_unit",
        "conditions",
        "true_path_step_id",
        "false_path_step_id",
        "variants",
    ],
    "campaign_triggers": [
        "version_id",
        "trigger_type",
        "trigger_config",
        "enrollment_conditions",
        "exclusion_conditions",
        "priority",
    ],
}


def _frozen_function(table: str) -> str:
    changed = " OR ".join(f"NEW.{column} IS DISTINCT FROM OLD.{column}" for column in DEFINITION_COLUMNS[table])
    return f"""
CREATE FUNCTION {table}_published_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NOT ({changed}) THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM campaign_versions WHERE id = NEW.version_id AND status = 'published')
       OR (TG_OP = 'UPDATE' AND EXISTS (
           SELECT 1 FROM campaign_versions WHERE id = OLD.version_id AND status = 'published')) THEN
        RAISE EXCEPTION 'version % of the campaign is published: edit a draft version', NEW.version_id
            USING ERRCODE = 'check_violation', CONSTRAINT = '{table}_published_frozen';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER {table}_published_frozen BEFORE INSERT OR UPDATE ON {table}
    FOR EACH ROW EXECUTE FUNCTION {table}_published_frozen();
"""


INSTALL = (
    """
CREATE FUNCTION campaign_enrollments_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE campaigns c SET total_enrolled = c.total_enrolled + n.enrolled,
                           total_completed = c.total_completed + n.completed
    FROM (SELECT campaign_id, count(*) AS enrolled, count(*) FILTER (WHERE status = 'completed') AS completed
          FROM new_rows GROUP BY campaign_id) n
    WHERE c.id = n.campaign_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER campaign_enrollments_count_insert AFTER INSERT ON campaign_enrollments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION campaign_enrollments_count_insert();

CREATE FUNCTION campaign_enrollments_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE campaigns c SET total_enrolled = c.total_enrolled - o.enrolled,
                           total_completed = c.total_completed - o.completed
    FROM (SELECT campaign_id, count(*) AS enrolled, count(*) FILTER (WHERE status = 'completed') AS completed
          FROM old_rows GROUP BY campaign_id) o
    WHERE c.id = o.campaign_id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER campaign_enrollments_count_delete AFTER DELETE ON campaign_enrollments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION campaign_enrollments_count_delete();

CREATE FUNCTION campaign_enrollments_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE campaigns c SET total_completed = c.total_completed + d.delta
    FROM (SELECT n.campaign_id,
                 sum((n.status = 'completed')::int - (o.status = 'completed')::int) AS delta
          FROM new_rows n JOIN old_rows o ON o.id = n.id
          WHERE n.status IS DISTINCT FROM o.status
          GROUP BY n.campaign_id) d
    WHERE c.id = d.campaign_id AND d.delta <> 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER campaign_enrollments_count_update AFTER UPDATE ON campaign_enrollments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION campaign_enrollments_count_update();

CREATE FUNCTION campaign_versions_published_stays() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'published' AND NEW.status <> 'published' THEN
        RAISE EXCEPTION 'version % is published and stays so', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'campaign_versions_published_stays';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER campaign_versions_published_stays BEFORE UPDATE ON campaign_versions
    FOR EACH ROW EXECUTE FUNCTION campaign_versions_published_stays();
"""
    + _frozen_function("campaign_steps")
    + _frozen_function("campaign_triggers")
)

UNINSTALL = """
DROP TRIGGER campaign_triggers_published_frozen ON campaign_triggers;
DROP FUNCTION campaign_triggers_published_frozen();
DROP TRIGGER campaign_steps_published_frozen ON campaign_steps;
DROP FUNCTION campaign_steps_published_frozen();
DROP TRIGGER campaign_versions_published_stays ON campaign_versions;
DROP FUNCTION campaign_versions_published_stays();
DROP TRIGGER campaign_enrollments_count_update ON campaign_enrollments;
DROP FUNCTION campaign_enrollments_count_update();
DROP TRIGGER campaign_enrollments_count_delete ON campaign_enrollments;
DROP FUNCTION campaign_enrollments_count_delete();
DROP TRIGGER campaign_enrollments_count_insert ON campaign_enrollments;
DROP FUNCTION campaign_enrollments_count_insert();
"""


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_initial")]

    operations = [migrations.RunSQL(INSTALL, reverse_sql=UNINSTALL)]
