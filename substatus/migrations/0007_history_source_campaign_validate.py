"""Validate the history source check of 0006: a scan that lets writes go on."""

from django.db import migrations

NAME = "substatus_history_source_valid"


class Migration(migrations.Migration):
    dependencies = [("substatus", "0006_history_source_campaign")]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE substatus_history VALIDATE CONSTRAINT {NAME}", reverse_sql=migrations.RunSQL.noop
        ),
    ]
