"""The live records counted per status and substatus by an index-only scan (the substatus
analytics' current counts), built CONCURRENTLY under migrate: crm.migration_operations."""

from django.db import migrations, models

from crm.migration_operations import AddIndexConcurrentlyOutsideTransactions


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("contacts", "0013_alive_substatus_index"),
        ("crm", "0015_activity_notices_validate"),
        ("substatus", "0011_open_stay_day_counts"),
    ]

    operations = [
        AddIndexConcurrentlyOutsideTransactions(
            model_name="project",
            index=models.Index(
                condition=models.Q(("is_deleted", False)),
                fields=["tenant", "status", "substatus"],
                name="projects_alive_substatus_idx",
            ),
        ),
    ]
