"""Counts of the substatus stays for the analytics of long windows (issue 10, section 7).

Finished stays per UTC day and month and duration bucket, stays still running per UTC hour of
their entry, the records deleted for good (a trigger on contacts and projects), and
`substatus_stay_bucket(seconds)`. A frozen copy of their SQL in substatus/triggers.py.
Filled from the existing stays by 0009.
"""

import django.db.models.deletion
from django.db import migrations, models


BUCKET_FUNCTION = """
CREATE OR REPLACE FUNCTION substatus_stay_bucket(seconds float8) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $function$ SELECT CASE WHEN seconds < 1 THEN 0 ELSE 1 + floor(ln(seconds) * 23.083120654223414)::integer END $function$;
"""

PURGED = """
CREATE OR REPLACE FUNCTION substatus_record_purged() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    INSERT INTO substatus_purged_records (tenant_id, entity, record_id)
    SELECT purged.tenant_id, CASE TG_TABLE_NAME WHEN 'contacts' THEN 'contact' ELSE 'project' END, purged.id
    FROM purged;
    RETURN NULL;
END
$function$;
CREATE TRIGGER substatus_contacts_purged
    AFTER DELETE ON contacts
    REFERENCING OLD TABLE AS purged
    FOR EACH STATEMENT
    EXECUTE FUNCTION substatus_record_purged();
CREATE TRIGGER substatus_projects_purged
    AFTER DELETE ON projects
    REFERENCING OLD TABLE AS purged
    FOR EACH STATEMENT
    EXECUTE FUNCTION substatus_record_purged();
"""

UNPURGED = """
DROP TRIGGER IF EXISTS substatus_projects_purged ON projects;
DROP TRIGGER IF EXISTS substatus_contacts_purged ON contacts;
DROP FUNCTION IF EXISTS substatus_record_purged();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0015_activity_notices_validate"),
        ("substatus", "0007_history_source_campaign_validate"),
    ]

    operations = [
        migrations.RunSQL(BUCKET_FUNCTION, reverse_sql="DROP FUNCTION IF EXISTS substatus_stay_bucket(float8)"),
        migrations.CreateModel(
            name="SubstatusOpenStayCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("entity", models.CharField(choices=[("contact", "Contact"), ("project", "Project")], max_length=20)),
                ("whole_status", models.BooleanField()),
                ("status", models.CharField(max_length=20)),
                ("hour", models.DateTimeField()),
                ("entries", models.BigIntegerField()),
                (
                    "micros",
                    models.DecimalField(
                        decimal_places=0, help_text="sum of the entries' epoch microseconds", max_digits=38
                    ),
                ),
            ],
            options={
                "db_table": "substatus_open_stay_counts",
            },
        ),
        migrations.CreateModel(
            name="SubstatusPurgedRecord",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("entity", models.CharField(choices=[("contact", "Contact"), ("project", "Project")], max_length=20)),
                ("record_id", models.BigIntegerField()),
            ],
            options={
                "db_table": "substatus_purged_records",
            },
        ),
        migrations.CreateModel(
            name="SubstatusStayBucket",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("entity", models.CharField(choices=[("contact", "Contact"), ("project", "Project")], max_length=20)),
                ("whole_status", models.BooleanField()),
                ("status", models.CharField(max_length=20)),
                (
                    "monthly",
                    models.BooleanField(help_text="`period` is the first day of a UTC month (else a UTC day)."),
                ),
                ("period", models.DateField()),
                ("bucket", models.IntegerField()),
                ("entries", models.BigIntegerField()),
            ],
            options={
                "db_table": "substatus_stay_buckets",
            },
        ),
        migrations.CreateModel(
            name="SubstatusStayCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("entity", models.CharField(choices=[("contact", "Contact"), ("project", "Project")], max_length=20)),
                ("whole_status", models.BooleanField()),
                ("status", models.CharField(max_length=20)),
                (
                    "monthly",
                    models.BooleanField(help_text="`period` is the first day of a UTC month (else a UTC day)."),
                ),
                ("period", models.DateField()),
                ("next_status", models.CharField(blank=True, max_length=20, null=True)),
                ("entries", models.BigIntegerField()),
                (
                    "micros",
                    models.DecimalField(decimal_places=0, help_text="sum((seconds * 1e6)::bigint)", max_digits=38),
                ),
            ],
            options={
                "db_table": "substatus_stay_counts",
            },
        ),
        migrations.AddField(
            model_name="substatusstay",
            name="bucket",
            field=models.IntegerField(
                blank=True,
                help_text="substatus_stay_bucket(seconds) of a finished stay: see SubstatusStayBucket.",
                null=True,
            ),
        ),
        migrations.AddIndex(
            model_name="substatusstay",
            index=models.Index(
                condition=models.Q(("left_at__isnull", True)),
                fields=["tenant", "entity", "whole_status", "status", "entered_at"],
                include=("substatus", "record_id"),
                name="substatus_stays_open_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="substatusstay",
            index=models.Index(
                condition=models.Q(("left_at__isnull", False)),
                fields=["tenant", "entity", "whole_status", "status", "substatus", "bucket", "entered_at"],
                include=("seconds", "record_id"),
                name="substatus_stays_bucket_idx",
            ),
        ),
        migrations.AddField(
            model_name="substatusopenstaycount",
            name="substatus",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="substatus.substatusconfig",
            ),
        ),
        migrations.AddField(
            model_name="substatusopenstaycount",
            name="tenant",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="crm.tenant",
            ),
        ),
        migrations.AddField(
            model_name="substatuspurgedrecord",
            name="tenant",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="crm.tenant",
            ),
        ),
        migrations.AddField(
            model_name="substatusstaybucket",
            name="substatus",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="substatus.substatusconfig",
            ),
        ),
        migrations.AddField(
            model_name="substatusstaybucket",
            name="tenant",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="crm.tenant",
            ),
        ),
        migrations.AddField(
            model_name="substatusstaycount",
            name="substatus",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="substatus.substatusconfig",
            ),
        ),
        migrations.AddField(
            model_name="substatusstaycount",
            name="tenant",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="crm.tenant",
            ),
        ),
        migrations.AddConstraint(
            model_name="substatusopenstaycount",
            constraint=models.UniqueConstraint(
                fields=("tenant", "entity", "hour", "whole_status", "status", "substatus"),
                name="substatus_open_stay_counts_cell_unique",
                nulls_distinct=False,
            ),
        ),
        migrations.AddIndex(
            model_name="substatuspurgedrecord",
            index=models.Index(fields=["tenant", "entity", "record_id"], name="substatus_purged_records_idx"),
        ),
        migrations.AddConstraint(
            model_name="substatusstaybucket",
            constraint=models.UniqueConstraint(
                fields=("tenant", "entity", "monthly", "period", "whole_status", "status", "substatus", "bucket"),
                name="substatus_stay_buckets_cell_unique",
                nulls_distinct=False,
            ),
        ),
        migrations.AddConstraint(
            model_name="substatusstaycount",
            constraint=models.UniqueConstraint(
                fields=("tenant", "entity", "monthly", "period", "whole_status", "status", "substatus", "next_status"),
                name="substatus_stay_counts_cell_unique",
                nulls_distinct=False,
            ),
        ),
        migrations.RunSQL(PURGED, reverse_sql=UNPURGED),
    ]
