"""Turn a database constraint violation into a domain error that names the field.

A rule the database enforces has its message in one place: a declared constraint's
`violation_error_message`, or, for an error raised by a trigger, the message registered
here. Every write path (API, admin, services, tasks) meets the rule in the database, and
this module gives each the same message on the same field.
"""

import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.apps import apps
from django.db import IntegrityError, models

from crm.errors import ApplicationError, Conflict


@dataclass(frozen=True)
class _Registered:
    attr: str | None
    message: str | None
    error: type[ApplicationError]


# Database errors named by the app that owns them: constraint name -> field, message, error class.
_REGISTERED: dict[str, _Registered] = {}


def constraint_register(
    name: str,
    *,
    attr: str | None,
    message: str | None = None,
    error: type[ApplicationError] = ApplicationError,
) -> None:
    """Name the field (and the message) behind the database error `name`.

    A trigger's error gives its message here. A declared constraint keeps its own
    `violation_error_message` (leave `message` out): registering it only says which field
    a person should change when the field guessed from its condition is not that one.
    `error` is the kind of refusal (a 400 by default; `Conflict` for a 409).
    """
    _REGISTERED[name] = _Registered(attr, message, error)


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


def constraint_error(name: str) -> ApplicationError | None:
    """The domain error for the rule the database calls `name`; None for a name nobody declared."""
    registered = _REGISTERED.get(name)
    declared_attr, declared_message = _declared().get(name, (None, None))
    if registered is None:
        return None if declared_message is None else ApplicationError(declared_message, code=name, attr=declared_attr)
    message = registered.message or declared_message
    if message is None:
        raise LookupError(f"{name} is registered without a message, and no model declares it.")
    return registered.error(message, code=name, attr=registered.attr)


def constraint_codes(model: type[models.Model]) -> dict[str | None, set[str]]:
    """The codes of the 400s the database's rules on `model` answer with, by the field each names
    (for the API's documented error codes). A trigger's rule is registered under a name that
    starts as the model's table or its declared constraints do (`substatus_configs_...`)."""
    names = {constraint.name for constraint in model._meta.constraints}
    prefixes = {f"{model._meta.db_table}_"}
    if len(names) > 1:
        common = os.path.commonprefix(sorted(names))
        prefixes.add(common[: common.rfind("_") + 1] or model._meta.db_table)
    names.update(name for name in _REGISTERED if name.startswith(tuple(prefixes)))
    found: dict[str | None, set[str]] = defaultdict(set)
    for name in names:
        error = constraint_error(name)
        if error is not None and error.status_code == ApplicationError.status_code:
            found[error.attr].add(name)
    return dict(found)


def constraint_violation(exc: IntegrityError) -> ApplicationError:
    """The domain error for a violated constraint: a 400 naming the field when we know it."""
    diag = getattr(exc.__cause__, "diag", None)
    name = getattr(diag, "constraint_name", None) or ""
    known = constraint_error(name)
    if known is not None:
        return known
    detail = getattr(diag, "message_detail", None) or getattr(diag, "message_primary", None)
    return Conflict(detail or "The change conflicts with existing data.", code="integrity_error")
