"""Running stays counted per UTC day too (substatus_open_stay_day_counts), filled from their hourly
counts under the watermark's lock, as substatus_stays_refresh keeps both from now on."""

import django.db.models.deletion
from django.db import migrations, models


FILL = """
SELECT 1 FROM substatus_stays_watermark FOR UPDATE;
INSERT INTO substatus_open_stay_day_counts (tenant_id, entity, day, whole_status, status, substatus_id, entries,
                                            micros)
SELECT tenant_id, entity, (hour AT TIME ZONE 'UTC')::date, whole_status, status, substatus_id, sum(entries),
       sum(micros)
FROM substatus_open_stay_counts
GROUP BY 1, 2, 3, 4, 5, 6
"""


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0015_activity_notices_validate"),
        ("substatus", "0010_deleted_records_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="SubstatusOpenStayDayCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("entity", models.CharField(choices=[("contact", "Contact"), ("project", "Project")], max_length=20)),
                ("whole_status", models.BooleanField()),
                ("status", models.CharField(max_length=20)),
                ("day", models.DateField()),
                ("entries", models.BigIntegerField()),
                (
                    "micros",
                    models.DecimalField(
                        decimal_places=0, help_text="sum of the entries' epoch microseconds", max_digits=38
                    ),
                ),
                (
                    "substatus",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="substatus.substatusconfig",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="crm.tenant",
                    ),
                ),
            ],
            options={
                "db_table": "substatus_open_stay_day_counts",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("tenant", "entity", "day", "whole_status", "status", "substatus"),
                        name="substatus_open_stay_day_counts_cell_unique",
                        nulls_distinct=False,
                    )
                ],
            },
        ),
        migrations.RunSQL(FILL, reverse_sql="DELETE FROM substatus_open_stay_day_counts"),
    ]
