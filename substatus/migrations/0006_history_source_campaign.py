"""History may say a change came from a campaign step (`campaign`).

The check is swapped without a blocking scan: added NOT VALID (a brief lock), then validated in
its own transaction (VALIDATE lets writes go on). Backwards, the old check comes back NOT VALID,
so history rows written by campaigns are kept as they are.
"""

from django.db import migrations, models

OLD = ["api", "admin", "task", "migration", "sql"]
NEW = ["api", "admin", "task", "campaign", "migration", "sql"]
NAME = "substatus_history_source_valid"


def swap(values: list[str]) -> list[str]:
    """Drop the check and add it back over `values`, NOT VALID, in one transaction."""
    listed = ", ".join(f"'{value}'" for value in values)
    return [
        "BEGIN",
        f"ALTER TABLE substatus_history DROP CONSTRAINT {NAME}",
        f"ALTER TABLE substatus_history ADD CONSTRAINT {NAME} CHECK (source IN ({listed})) NOT VALID",
        "COMMIT",
    ]


class Migration(migrations.Migration):
    atomic = False
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
            database_operations=[
                migrations.RunSQL(swap(NEW), reverse_sql=swap(OLD)),
                migrations.RunSQL(
                    f"ALTER TABLE substatus_history VALIDATE CONSTRAINT {NAME}", reverse_sql=migrations.RunSQL.noop
                ),
            ],
        )
    ]
