"""The analytics read a tenant's deleted contacts or projects (their running stays count without a
time): a small partial index each, built without blocking writes."""

from django.db import migrations


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("substatus", "0009_stay_counts_fill")]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS substatus_{table}_deleted_idx ON {table} (tenant_id) WHERE is_deleted",
            reverse_sql=f"DROP INDEX CONCURRENTLY IF EXISTS substatus_{table}_deleted_idx",
        )
        for table in ("contacts", "projects")
    ]
