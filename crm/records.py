"""Write helpers shared by the services of tenant-owned records (contacts, projects, ...)."""

from collections.abc import Mapping
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models
from django.utils.text import capfirst

from crm.actor import Actor
from crm.constraints import constraint_error, constraint_violation
from crm.errors import ApplicationError, Conflict, NotFound
from crm.models import SoftDeleteRecord
from crm.tenancy import tenant_ensure_owns

M = TypeVar("M", bound=models.Model)
R = TypeVar("R", bound=SoftDeleteRecord)

# Kept by the services themselves (from the actor, the clock, the delete and restore services).
SYSTEM_FIELDS = frozenset({"id", "tenant", "created_by", "updated_by", "created_at", "updated_at", "is_deleted"})


def record_writable_fields(model: type[models.Model], *, exclude: frozenset[str] = frozenset()) -> frozenset[str]:
    """The columns of `model` a service takes from its caller: editable, neither system nor `exclude`."""
    return frozenset(
        field.name
        for field in model._meta.concrete_fields
        if field.editable and field.name not in SYSTEM_FIELDS | exclude
    )


def record_check_links(record: models.Model, fields: Mapping[str, Any]) -> None:
    """Every new link in `fields` points at a live row of the record's tenant (ApplicationError naming it).

    A new link is a foreign key the write sets to another row than it holds. Another tenant's
    row is as if it did not exist; a soft-deleted row is refused until it is restored. The
    links a record already has stay as they are, deleted rows included. Users are not rows of
    a tenant: their membership is the services' own check.
    """
    foreign_keys = {field.name: field for field in record._meta.concrete_fields if field.many_to_one}
    for name, row in fields.items():
        field = foreign_keys.get(name)
        if field is None or row is None or not hasattr(row, "tenant_id"):
            continue
        if record.pk is not None and getattr(record, field.attname) == row.pk:
            continue
        tenant_ensure_owns(record.tenant, **{name: row})  # type: ignore[attr-defined]
        if getattr(row, "is_deleted", False) is True:
            raise ApplicationError(
                f"{capfirst(row._meta.verbose_name)} {row.pk} is deleted: restore it before linking to it.",
                code="deleted",
                attr=name,
            )


def record_check_named_substatus(record: models.Model, fields: Mapping[str, Any], *, status_field: str) -> None:
    """Refuse a new status that comes with the record's current substatus, named explicitly.

    The database takes an unchanged substatus for one not named and gives the new status's
    default; a caller who names the current one asks for a substatus of the old status, which
    the database refuses with this same error when it can see it.
    """
    if "substatus" not in fields or status_field not in fields:
        return
    named = fields["substatus"]
    if named is None or named.pk != record.substatus_id:  # type: ignore[attr-defined]
        return
    if fields[status_field] == getattr(record, status_field):
        return
    error = constraint_error(f"{record._meta.db_table}_substatus_other_{status_field}")
    if error is None:
        raise LookupError(f"{record._meta.db_table} has no substatus rules registered")
    raise error


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

    A field's validator refuses with an ApplicationError naming the field. Database
    constraints (uniqueness, checks, triggers) are the final word: a violation becomes an
    ApplicationError naming the field too, and nothing is written.
    """
    # Foreign keys arrive as rows already fetched and checked by the service (same tenant,
    # active member); re-checking that each exists would cost a query per key.
    relations = {f.name for f in record._meta.fields if f.is_relation}
    try:
        record.clean_fields(
            exclude=[
                f.name
                for f in record._meta.fields
                if f.name in relations or (update_fields is not None and f.name not in update_fields)
            ]
        )
    except ValidationError as exc:
        # A field's validator (a time zone, a color, ...): the first refusal, on its field.
        attr, [error, *_] = next(iter(exc.error_dict.items()))
        raise ApplicationError(" ".join(error.messages), code=error.code, attr=attr) from exc
    if isinstance(record, SoftDeleteRecord):
        record.updated_by = actor.user
        if update_fields is not None:
            update_fields = [*update_fields, "updated_by", "updated_at"]
    try:
        with actor.atomic(reason=reason):
            if update_fields is not None:
                record_lock(record)
            record.save(update_fields=update_fields)
    except IntegrityError as exc:
        raise constraint_violation(exc) from exc
    return record


def record_lock(record: models.Model) -> dict[str, Any]:
    """Lock the record's row until the end of the caller's transaction and return it as stored.

    A row deleted since the caller read it is a NotFound (404): the loser of a race with a
    delete gets the answer it would have got a moment later, never a failed write.
    """
    current = type(record)._base_manager.select_for_update().filter(pk=record.pk).values().first()
    if current is None:
        raise NotFound(f"{capfirst(record._meta.verbose_name)} {record.pk} no longer exists.")
    return current


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
    except NotFound:
        raise
    except ApplicationError as exc:
        record.is_deleted = True
        raise Conflict(f"Cannot restore: {exc.message}", code="restore_conflict", attr=exc.attr) from exc


def record_purge(*, record: R, actor: Actor) -> None:
    """Delete for good a row that was soft-deleted first (as stored: not restored meanwhile)."""
    with actor.atomic():
        if not record_lock(record)["is_deleted"]:
            raise Conflict(
                f"{record._meta.verbose_name} {record.pk} is not deleted: delete it before purging it.",
                code="not_deleted",
            )
        record.delete()
