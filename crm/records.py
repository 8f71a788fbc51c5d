"""Write helpers shared by the services of tenant-owned records (contacts, projects, ...)."""

from collections.abc import Mapping
from typing import Any, TypeVar

from django.db import IntegrityError, models

from crm.actor import Actor
from crm.constraints import constraint_violation
from crm.errors import ApplicationError, Conflict
from crm.models import SoftDeleteRecord

M = TypeVar("M", bound=models.Model)
R = TypeVar("R", bound=SoftDeleteRecord)


def record_assign(record: M, fields: Mapping[str, Any], *, allowed: frozenset[str]) -> list[str]:
    """Set `fields` on `record`, storing blank optional text as NULL; returns the names set.

    An unknown name is a programming error (TypeError), not bad input: serializers only
    pass the fields they declare.
    """
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"{type(record).__name__} has no writable field(s) {sorted(unknown)}")
    for name, value in fields.items():
        field = record._meta.get_field(name)
        if value == "" and field.null and isinstance(field, models.CharField | models.TextField):
            value = None
        setattr(record, name, value)
    return list(fields)


def record_save(record: M, *, actor: Actor, update_fields: list[str] | None = None, reason: str = "") -> M:
    """Validate the given fields and save inside the actor's write transaction.

    Database constraints (uniqueness, checks, triggers) are the final word: a violation
    becomes an ApplicationError naming the field, and nothing is written.
    """
    # Foreign keys arrive as rows already fetched and checked by the service (same tenant,
    # active member); re-checking that each exists would cost a query per key.
    relations = {f.name for f in record._meta.fields if f.is_relation}
    record.clean_fields(
        exclude=[
            f.name
            for f in record._meta.fields
            if f.name in relations or (update_fields is not None and f.name not in update_fields)
        ]
    )
    if isinstance(record, SoftDeleteRecord):
        record.updated_by = actor.user
        if update_fields is not None:
            update_fields = [*update_fields, "updated_by", "updated_at"]
    try:
        with actor.atomic(reason=reason):
            record.save(update_fields=update_fields)
    except IntegrityError as exc:
        raise constraint_violation(exc) from exc
    return record


def record_soft_delete(*, record: R, actor: Actor) -> R:
    if record.is_deleted:
        return record
    record.is_deleted = True
    return record_save(record, actor=actor, update_fields=["is_deleted"])


def record_restore(*, record: R, actor: Actor) -> R:
    """Undelete; a row that would now break a uniqueness rule (e.g. its email) is a 409."""
    if not record.is_deleted:
        return record
    record.is_deleted = False
    try:
        return record_save(record, actor=actor, update_fields=["is_deleted"])
    except ApplicationError as exc:
        record.is_deleted = True
        raise Conflict(f"Cannot restore: {exc.message}", code="restore_conflict", attr=exc.attr) from exc


def record_purge(*, record: R, actor: Actor) -> None:
    """Delete for good a row that was soft-deleted first."""
    if not record.is_deleted:
        raise Conflict(
            f"{record._meta.verbose_name} {record.pk} is not deleted: delete it before purging it.",
            code="not_deleted",
        )
    with actor.atomic():
        record.delete()
