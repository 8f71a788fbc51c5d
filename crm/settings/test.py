"""Settings for the test suite: the real PostgreSQL and Redis, kept apart from `make run`."""

import os

from crm.settings.base import *  # noqa: F403
from crm.settings.base import ANYMAIL as BASE_ANYMAIL
from crm.settings.base import CACHES as BASE_CACHES
from crm.settings.base import REDIS_URL

DEBUG = False
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",  # imported users (legacy_import)
]

# A separate Redis database and queue, so a running `make run` worker never takes a
# test's task (and never writes it into the demo database).
CELERY_BROKER_URL = os.environ.get("TEST_CELERY_BROKER_URL", REDIS_URL.rsplit("/", 1)[0] + "/15")
# A worker process a test starts is told the test's queue (RIDGELINE_TEST_QUEUE), so that the
# tasks it sends itself (a claim enqueuing its runs) land where it consumes.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("RIDGELINE_TEST_QUEUE") or f"ridgeline-test-{os.getpid()}"
CACHES = {
    "default": {**BASE_CACHES["default"], "LOCATION": CELERY_BROKER_URL, "KEY_PREFIX": f"ridgeline-test-{os.getpid()}"}
}
# Failed log-ins are counted in this cache: tests/conftest.py empties this process's keys
# after every test, so that no test inherits another's lockout.

# Filter usage goes to this process's own list, under the cache's prefix (emptied after every test).
FILTER_USAGE_REDIS_URL = CELERY_BROKER_URL
FILTER_USAGE_QUEUE = f"ridgeline-test-{os.getpid()}:filter-usage"

# django-anymail's webhooks are mounted (they are only with a secret), with this basic auth.
ANYMAIL_WEBHOOK_SECRETS = ["ridgeline-test:anymail-webhook-secret"]
ANYMAIL = {**BASE_ANYMAIL, "WEBHOOK_SECRET": ANYMAIL_WEBHOOK_SECRETS}
