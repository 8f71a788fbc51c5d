"""Small model helpers shared by every app's models."""

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
