"""The analytics read a tenant's deleted contacts or projects (their running stays count without a
time): a small partial index each."""

from django.db import migrations


class Migration(migrations.Migration):
    lint_exemptions = {
        "non-concurrent-index": (
            "a partial index of the deleted rows only: one pass over contacts and one over projects while "
            "writes wait, in the release window of 0009 (which updates every rolled-up stay anyway); "
            "CONCURRENTLY cannot run in the migration's transaction, and migrations are reversed inside one"
        ),
    }

    dependencies = [("substatus", "0009_stay_counts_fill")]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX substatus_{table}_deleted_idx ON {table} (tenant_id) WHERE is_deleted",
            reverse_sql=f"DROP INDEX substatus_{table}_deleted_idx",
        )
        for table in ("contacts", "projects")
    ]
