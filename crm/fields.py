"""Small model helpers shared by every app's models."""

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q


def choices_check(field: str, choices: type[models.TextChoices], name: str) -> models.CheckConstraint:
    """A database check that `field` holds one of `choices` (NULL passes, as SQL's IN does)."""
    return models.CheckConstraint(condition=Q(**{f"{field}__in": choices.values}), name=name)


def non_negative_check(fields: list[str], table: str) -> list[models.CheckConstraint]:
    return [
        models.CheckConstraint(condition=Q(**{f"{field}__gte": 0}), name=f"{table}_{field}_non_negative")
        for field in fields
    ]


class DatabaseKeptBooleanField(models.BooleanField):
    """A flag a database trigger sets: an INSERT reads the stored value back (RETURNING)."""

    db_returning = True


# JSON columns hold what clients send: a few levels of objects and lists, never hundreds.
JSON_MAX_DEPTH = 32


def _is_lone_surrogate(text: str) -> bool:
    # A str decoded from UTF-8 never holds one; "\ud800" in a JSON document does.
    return any("\ud800" <= char <= "\udfff" for char in text)


def validate_json_document(value: Any) -> None:
    """A JSON column's value is storable: nested at most JSON_MAX_DEPTH levels, with no NUL
    character (PostgreSQL's jsonb refuses \\u0000) and no lone surrogate (no UTF-8 for it), in
    keys and strings alike. Iterative, so a deep value fails here and not with a RecursionError."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > JSON_MAX_DEPTH:
                raise ValidationError(
                    "Nested more than %(limit)d levels deep.", code="json_too_deep", params={"limit": JSON_MAX_DEPTH}
                )
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
        elif isinstance(item, str):
            if "\x00" in item:
                raise ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")
            if _is_lone_surrogate(item):
                raise ValidationError(
                    "Surrogate characters are not allowed: send text as valid Unicode.",
                    code="surrogate_characters_not_allowed",
                )


class JSONSafeFormField(forms.JSONField):
    """The admin's JSON text box: a document nested deeper than Python parses is a field error,
    and a refused document is shown again as typed (a lone surrogate escaped, not sent as is)."""

    def to_python(self, value: Any) -> Any:
        try:
            return super().to_python(value)
        except RecursionError:
            raise ValidationError(
                "Nested more than %(limit)d levels deep.", code="json_too_deep", params={"limit": JSON_MAX_DEPTH}
            ) from None

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except RecursionError:
            return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> Any:
        text = super().prepare_value(value)
        if _is_lone_surrogate(text):
            return json.dumps(value, cls=self.encoder)
        return text


class JSONDocumentField(models.JSONField):
    """A JSONField whose value passes `validate_json_document` on every write path: the API's
    serializers copy its validators, the admin's forms and the services' `full_clean` run them.

    Migrations see a plain JSONField: the validator changes nothing in the database.
    """

    default_validators = [validate_json_document]

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.JSONField", args, kwargs

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": JSONSafeFormField, **kwargs})
