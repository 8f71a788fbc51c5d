"""The live records counted per status and substatus by an index-only scan (the substatus
analytics' current counts), built CONCURRENTLY under migrate: crm.migration_operations."""

from django.conf import settings
from django.db import migrations, models

from crm.migration_operations import AddIndexConcurrentlyOutsideTransactions


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("contacts", "0012_sub_contractor_validate"),
        ("crm", "0015_activity_notices_validate"),
        ("substatus", "0011_open_stay_day_counts"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        AddIndexConcurrentlyOutsideTransactions(
            model_name="contact",
            index=models.Index(
                condition=models.Q(("is_deleted", False)),
                fields=["tenant", "stage", "substatus"],
                name="contacts_alive_substatus_idx",
            ),
        ),
    ]
