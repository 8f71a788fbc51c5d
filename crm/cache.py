"""Django's Redis cache, failing open: while Redis is down the API keeps serving from PostgreSQL.

Every user of the cache holds something PostgreSQL can rebuild or something that may be
lost: the filter catalog (read again from its table) and the failed log-in counts of
django-axes. So while Redis is unreachable a read misses, a write or delete is skipped, and
each failure is logged at WARNING (`/healthz` answers 503 meanwhile).

What it costs while Redis is down: failed log-ins are not counted, so nobody is locked out
and guessing is slowed only by the password hash (see LoginAttemptHandler); a catalog change
cannot clear its cached copy, which may then be served for up to its 5 minutes once Redis
is back with its data.

`add`, `incr` and `clear` still raise: their callers act on the answer (a count, "was it
mine?"), and a made-up one would be a lie they cannot detect.
"""

import logging
from typing import Any

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)


def _unavailable(operation: str) -> None:
    logger.warning("cache %s skipped: Redis is unreachable", operation, exc_info=True)


class FailOpenRedisCache(RedisCache):
    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        try:
            return super().get(key, default, version)
        except redis.RedisError:
            _unavailable("get")
            return default

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        try:
            return super().get_many(keys, version)
        except redis.RedisError:
            _unavailable("get_many")
            return {}

    def has_key(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().has_key(key, version)
        except redis.RedisError:
            _unavailable("has_key")
            return False

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        try:
            super().set(key, value, timeout, version)
        except redis.RedisError:
            _unavailable("set")

    def set_many(self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[Any]:
        try:
            return super().set_many(data, timeout, version)
        except redis.RedisError:
            _unavailable("set_many")
            return list(data)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        try:
            return super().touch(key, timeout, version)
        except redis.RedisError:
            _unavailable("touch")
            return False

    def delete(self, key: Any, version: int | None = None) -> bool:
        try:
            return super().delete(key, version)
        except redis.RedisError:
            _unavailable("delete")
            return False

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        try:
            super().delete_many(keys, version)
        except redis.RedisError:
            _unavailable("delete_many")
