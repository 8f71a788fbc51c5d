"""History may say a change came from a campaign step (`campaign`).

The check is swapped without a blocking scan: added NOT VALID here (a brief lock), validated by
0007 in a transaction of its own (VALIDATE lets writes go on). Backwards, the old check comes
back NOT VALID, so history rows written by campaigns are kept as they are. No BEGIN/COMMIT of
its own: a migration run inside an outer transaction (the demo's legacy rehearsal) must not
commit it.
"""

from django.db import migrations, models

OLD = ["api", "admin", "task", "migration", "sql"]
NEW = ["api", "admin", "task", "campaign", "migration", "sql"]
NAME = "substatus_history_source_valid"


def swap(values: list[str]) -> list[str]:
    """Drop the check and add it back over `values`, NOT VALID (the migration's transaction)."""
    listed = ", ".join(f"'{value}'" for value in values)
    return [
        f"ALTER TABLE substatus_history DROP CONSTRAINT {NAME}",
        f"ALTER TABLE substatus_history ADD CONSTRAINT {NAME} CHECK (source IN ({listed})) NOT VALID",
    ]


class Migration(migrations.Migration):
    dependencies = [("substatus", "0005_stays")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(model_name="substatushistory", name=NAME),
                migrations.AlterField(
                    model_name="substatushistory",
                    name="source",
                    field=models.CharField(
                        choices=[
                            ("api", "API"),
                            ("admin", "Admin"),
                            ("task", "Task"),
                            ("campaign", "Campaign"),
                            ("migration", "Migration"),
                            ("sql", "SQL"),
                        ],
                        max_length=20,
                    ),
                ),
                migrations.AddConstraint(
                    model_name="substatushistory",
                    constraint=models.CheckConstraint(condition=models.Q(source__in=NEW), name=NAME),
                ),
            ],
            database_operations=[migrations.RunSQL(swap(NEW), reverse_sql=swap(OLD))],
        )
    ]
