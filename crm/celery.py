"""The Celery application: Redis broker, JSON messages, tasks from every app's tasks.py.

Production settings unless DJANGO_SETTINGS_MODULE says otherwise (`make run` sets the
development ones).

Every task runs in `crm.rls.task_scope`: under row-level security it reads the rows of the
tenant it was given (`tenant_id=`), or, for the beat tasks that scan every tenant, every
tenant's, logged.
"""

import os
from typing import Any

from celery import Celery
from celery.contrib.django.task import DjangoTask

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.production")


class RowSecurityTask(DjangoTask):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from crm.rls import task_scope

        tenant_id = kwargs.get("tenant_id")
        with task_scope(self.name, tenant_id if isinstance(tenant_id, int) else None):
            return super().__call__(*args, **kwargs)


app = Celery("ridgeline", task_cls="crm.celery:RowSecurityTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
