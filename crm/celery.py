"""The Celery application: Redis broker, JSON messages, tasks from every app's tasks.py.

Production settings unless DJANGO_SETTINGS_MODULE says otherwise (`make run` sets the
development ones).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.production")

app = Celery("ridgeline", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
