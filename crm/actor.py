"""Who is acting: the tenant, the effective user and the real user behind them.

Services receive an `Actor` explicitly (`actor=`). Inside a write transaction the actor
is also published to PostgreSQL as `app.*` settings, so that triggers can record who
did what; `app_effective_user_id()` and friends (crm migration 0004) read them back.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction

if TYPE_CHECKING:
    from crm.models import Tenant, User


class Source:
    """Where a change came from, as recorded by history triggers (`app.change_source`)."""

    API = "api"
    ADMIN = "admin"
    TASK = "task"
    CAMPAIGN = "campaign"  # a campaign step (update_field, manage_tags)
    MIGRATION = "migration"
    SQL = "sql"


@dataclass(frozen=True)
class Actor:
    tenant: "Tenant | None"
    user: "User | None"
    real_user: "User | None" = None
    source: str = Source.API

    def __post_init__(self) -> None:
        if self.real_user is None and self.user is not None:
            object.__setattr__(self, "real_user", self.user)

    @property
    def is_impersonating(self) -> bool:
        return self.user is not None and self.real_user is not None and self.real_user.pk != self.user.pk

    @property
    def on_behalf_of(self) -> "User | None":
        """The real user when they act as someone else; None otherwise."""
        return self.real_user if self.is_impersonating else None

    def require_tenant(self) -> "Tenant":
        """The tenant a service writes in; an actor without one is a programming error."""
        if self.tenant is None:
            raise ValueError("this service needs an actor with a tenant")
        return self.tenant

    def for_tenant(self, tenant: "Tenant") -> "Actor":
        return replace(self, tenant=tenant)

    def with_source(self, source: str) -> "Actor":
        return replace(self, source=source)

    def ids(self) -> dict[str, int | None]:
        """The actor as ids, for a Celery task's arguments (see `actor_from_ids`)."""
        return {
            "tenant_id": self.tenant.pk if self.tenant else None,
            "user_id": self.user.pk if self.user else None,
            "real_user_id": self.real_user.pk if self.real_user else None,
        }

    @contextmanager
    def atomic(self, *, reason: str = "", using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
        """A write transaction with this actor published to PostgreSQL."""
        with transaction.atomic(using=using):
            publish_actor(self, reason=reason, using=using)
            yield


def publish_actor(actor: Actor, *, reason: str = "", using: str = DEFAULT_DB_ALIAS) -> None:
    """Publish the actor as transaction-local settings (`set_config(..., true)`).

    Precondition: the caller is inside `transaction.atomic()`; outside a transaction the
    settings would vanish before the next statement.
    """
    connection = connections[using]
    if not connection.in_atomic_block:
        raise RuntimeError("publish_actor() must run inside transaction.atomic().")
    ids = actor.ids()
    values = [
        "" if ids["tenant_id"] is None else str(ids["tenant_id"]),
        "" if ids["user_id"] is None else str(ids["user_id"]),
        "" if ids["real_user_id"] is None else str(ids["real_user_id"]),
        actor.source,
        reason,
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('app.tenant_id', %s, true), set_config('app.user_id', %s, true), "
            "set_config('app.real_user_id', %s, true), set_config('app.change_source', %s, true), "
            "set_config('app.change_reason', %s, true)",
            values,
        )


def actor_from_ids(
    *, tenant_id: int | None, user_id: int | None, real_user_id: int | None, source: str = Source.TASK
) -> Actor:
    """Rebuild an actor inside a Celery task from the ids it was given."""
    from django.contrib.auth import get_user_model

    from crm.models import Tenant

    users: dict[Any, Any] = get_user_model()._default_manager.in_bulk(
        [pk for pk in (user_id, real_user_id) if pk is not None]
    )
    tenant = Tenant.objects.get(pk=tenant_id) if tenant_id is not None else None
    return Actor(
        tenant=tenant,
        user=users.get(user_id),
        real_user=users.get(real_user_id),
        source=source,
    )
