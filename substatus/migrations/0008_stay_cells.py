"""Counts of the finished substatus stays per UTC day and month, for the analytics of long windows.

`substatus_stay_bucket(seconds)` is the duration bucket of a stay (0 below one second, then
sixteen per doubling); `substatus_stays.bucket` holds it for finished stays. Filled from the
existing stays by 0009.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0015_activity_notices_validate"),
        ("substatus", "0007_history_source_campaign_validate"),
    ]

    operations = [
        migrations.RunSQL(
            """
            CREATE FUNCTION substatus_stay_bucket(seconds double precision) RETURNS integer
            LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
            AS $$ SELECT CASE WHEN seconds < 1 THEN 0 ELSE 1 + floor(ln(seconds) * 23.083120654223414)::integer END $$
            """,
            reverse_sql="DROP FUNCTION substatus_stay_bucket(double precision)",
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
                condition=models.Q(("left_at__isnull", False)),
                fields=["tenant", "entity", "whole_status", "status", "substatus", "bucket"],
                include=("seconds", "entered_at", "record_id"),
                name="substatus_stays_bucket_idx",
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
    ]
