"""Check that PostgreSQL and Redis answer before `make run` / `make test` go further.

Run from the repository root: `python -m scripts.check_services`.

The URLs come from the Django settings (DATABASE_URL, REDIS_URL for the cache and
CELERY_BROKER_URL, with their loopback defaults), so this checks exactly what the app will use. When a service does
not answer it says which, where it looked (without the password) and how to start it here.
"""

import os
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

START_POSTGRES = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
START_REDIS = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)
TIMEOUT_SECONDS = 3


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}{parts.hostname}{port}"))


def connect_server(
    database: Mapping[str, Any], *, autocommit: bool = False, connect_timeout: int | None = None
) -> psycopg.Connection:
    """Connect to the server's maintenance database: the app's own may not exist yet."""
    return psycopg.connect(
        host=database["HOST"] or None,
        port=database["PORT"] or None,
        user=database["USER"] or None,
        password=database["PASSWORD"] or None,
        dbname="postgres",
        connect_timeout=connect_timeout,
        autocommit=autocommit,
    )


def postgres_problem(database: Mapping[str, Any]) -> str | None:
    try:
        connect_server(database, connect_timeout=TIMEOUT_SECONDS).close()
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[0]
    return None


def redis_problem(url: str) -> str | None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS).ping()
    except redis.RedisError as exc:
        return str(exc)
    return None


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.base")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        database = settings.DATABASES["default"]
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"\n{exc}\n")
        return 1
    failures = []
    problem = postgres_problem(database)
    if problem:
        failures.append(
            ("PostgreSQL", without_password(settings.DATABASE_URL), "DATABASE_URL", problem, START_POSTGRES)
        )
    redis_urls: dict[str, list[str]] = {}  # the cache and the broker often share one URL
    cache_url: str = settings.CACHES["default"]["LOCATION"]
    for url, variable in [(cache_url, "REDIS_URL"), (settings.CELERY_BROKER_URL, "CELERY_BROKER_URL")]:
        redis_urls.setdefault(url, []).append(variable)
    for url, variables in redis_urls.items():
        problem = redis_problem(url)
        if problem:
            failures.append(("Redis", without_password(url), " / ".join(variables), problem, START_REDIS))
    for name, url, variable, problem, start in failures:
        sys.stderr.write(
            f"\n{name} does not answer at {url}\n"
            f"  ({problem})\n"
            f"  Start it on this machine with:\n"
            f"      {start}\n"
            f"  or point {variable} at a running server.\n"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
