"""The old system's remaining columns of tenants, projects and activities, at its widths.

- tenants: `name` varchar(255), `subdomain` varchar(100), `custom_domain` varchar(255);
  projects: `name` varchar(255).
  Widening a varchar changes PostgreSQL's catalog only: no rewrite, no scan.
- projects: `quickbooks_id`, `quickbooks_sync_status` (NULL: added without touching a row).
- activities: `is_impersonated_action`, kept by the database: a row trigger sets it on INSERT
  from `on_behalf_of` and keeps it true once set, so neither a caller nor the deletion of the
  admin's account (which empties `on_behalf_of`) can clear it. A trigger, not a stored
  generated column: adding one of those rewrites `activities`, and a generated column would
  forget the impersonation when the admin's account goes. The backfill touches only the rows
  that have `on_behalf_of`.
"""

from django.db import migrations, models

import crm.fields
import crm.models

KEEP_IMPERSONATED = """
CREATE FUNCTION activities_keep_impersonated() RETURNS trigger
    LANGUAGE plpgsql
    AS $function$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.is_impersonated_action := NEW.on_behalf_of_id IS NOT NULL;
    ELSE
        NEW.is_impersonated_action := OLD.is_impersonated_action OR NEW.on_behalf_of_id IS NOT NULL;
    END IF;
    RETURN NEW;
END
$function$;

CREATE TRIGGER activities_impersonated_insert
    BEFORE INSERT ON activities
    FOR EACH ROW
    WHEN (NEW.is_impersonated_action IS DISTINCT FROM (NEW.on_behalf_of_id IS NOT NULL))
    EXECUTE FUNCTION activities_keep_impersonated();

CREATE TRIGGER activities_impersonated_update
    BEFORE UPDATE OF on_behalf_of_id, is_impersonated_action ON activities
    FOR EACH ROW
    WHEN (NEW.is_impersonated_action IS DISTINCT FROM (OLD.is_impersonated_action OR NEW.on_behalf_of_id IS NOT NULL))
    EXECUTE FUNCTION activities_keep_impersonated();
"""

DROP_KEEP_IMPERSONATED = """
DROP TRIGGER activities_impersonated_update ON activities;
DROP TRIGGER activities_impersonated_insert ON activities;
DROP FUNCTION activities_keep_impersonated();
"""

BACKFILL = "UPDATE activities SET is_impersonated_action = true WHERE on_behalf_of_id IS NOT NULL;"


class Migration(migrations.Migration):
    dependencies = [("crm", "0011_tenant_subdomain_valid")]

    operations = [
        migrations.AlterField(model_name="tenant", name="name", field=models.CharField(max_length=255)),
        migrations.AlterField(
            model_name="tenant",
            name="subdomain",
            field=models.SlugField(
                help_text=(
                    "A subdomain is 1-63 lowercase letters, digits and hyphens, not starting or ending with a "
                    "hyphen, not all digits, and not a name Ridgeline keeps for itself (www, api, admin, app, "
                    "static, ...)."
                ),
                max_length=100,
                unique=True,
                validators=[crm.models.validate_subdomain],
            ),
        ),
        migrations.AlterField(
            model_name="tenant",
            name="custom_domain",
            field=models.CharField(blank=True, max_length=255, null=True, unique=True),
        ),
        migrations.AlterField(model_name="project", name="name", field=models.CharField(max_length=255)),
        migrations.AddField(
            model_name="project",
            name="quickbooks_id",
            field=models.CharField(
                blank=True,
                help_text="The job's id in QuickBooks.",
                max_length=100,
                null=True,
                verbose_name="QuickBooks id",
            ),
        ),
        migrations.AddField(
            model_name="project",
            name="quickbooks_sync_status",
            field=models.CharField(
                blank=True,
                help_text="As the QuickBooks sync reports it (e.g. synced, pending, error).",
                max_length=50,
                null=True,
                verbose_name="QuickBooks sync status",
            ),
        ),
        migrations.AddField(
            model_name="activity",
            name="is_impersonated_action",
            field=crm.fields.DatabaseKeptBooleanField(
                db_default=False,
                default=False,
                editable=False,
                help_text=(
                    "Done by an admin while impersonating: set by the database when on_behalf_of is, and kept "
                    "(also when that admin's account is deleted later)."
                ),
            ),
        ),
        migrations.RunSQL(KEEP_IMPERSONATED, reverse_sql=DROP_KEEP_IMPERSONATED),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
