"""Turn a database constraint violation into a domain error that names the field."""

from collections.abc import Iterator
from functools import cache
from typing import Any

from django.apps import apps
from django.db import IntegrityError, models

from crm.errors import ApplicationError, Conflict

# Errors raised by triggers rather than declared constraints: name -> (attr, message).
_REGISTERED: dict[str, tuple[str | None, str]] = {}


def constraint_register(name: str, *, attr: str | None, message: str) -> None:
    """Name the field behind a database error that no model constraint declares (e.g. a trigger's)."""
    _REGISTERED[name] = (attr, message)


def _field_refs(expression: Any) -> Iterator[str]:
    if isinstance(expression, models.F):
        yield expression.name  # type: ignore[attr-defined]  # F sets `name` in __init__; django-stubs omits it
    else:
        for source in expression.get_source_expressions():
            yield from _field_refs(source)


def _constraint_attr(constraint: models.BaseConstraint) -> str | None:
    names: list[str] = []
    if isinstance(constraint, models.UniqueConstraint):
        names.extend(constraint.fields)
        for expression in constraint.expressions:
            names.extend(_field_refs(expression))
    elif isinstance(constraint, models.CheckConstraint) and isinstance(constraint.condition, models.Q):
        names.extend(child[0].split("__")[0] for child in constraint.condition.children if isinstance(child, tuple))
    names = [name for name in names if name != "tenant"]
    return names[0] if names else None


@cache
def _declared() -> dict[str, tuple[str | None, str]]:
    found: dict[str, tuple[str | None, str]] = {}
    for model in apps.get_models():
        for constraint in model._meta.constraints:
            found[constraint.name] = (_constraint_attr(constraint), str(constraint.get_violation_error_message()))
    return found


def constraint_violation(exc: IntegrityError) -> ApplicationError:
    """The domain error for a violated constraint: a 400 naming the field when we know it."""
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None) or ""
    known = _REGISTERED.get(name) or _declared().get(name)
    if known is not None:
        attr, message = known
        return ApplicationError(message, code=name, attr=attr)
    detail = getattr(diag, "message_detail", None) or getattr(diag, "message_primary", None)
    return Conflict(detail or "The change conflicts with existing data.", code="integrity_error")
