"""The ceiling of bench/campaigns.py: a plain Celery task doing one primary-key UPDATE.

Imported by the benchmark's worker processes (`celery worker --include _campaigns_ceiling`).
"""

from celery import shared_task
from django.db import connection


@shared_task(name="bench.campaigns.pk_update")
def pk_update(pk: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE campaign_step_executions SET attempts = attempts + 1 WHERE id = %s", [pk])
