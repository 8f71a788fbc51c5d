"""Filter pieces shared by every app's FilterSets."""

from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet


class StrictNullBooleanField(forms.NullBooleanField):
    """true/false (or 1/0, yes/no); anything else is an error, not a silently ignored filter."""

    widget = forms.TextInput

    # None is a value here, as in Django's own NullBooleanField (whose stub ignores the same override).
    def to_python(self, value: Any) -> bool | None:  # type: ignore[override]
        if value in (None, ""):
            return None
        normalized = str(value).strip().lower()
        if normalized in {"true", "1", "yes"}:
            return True
        if normalized in {"false", "0", "no"}:
            return False
        raise ValidationError("Use true or false; got %(value)r.", code="invalid", params={"value": value})


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictNullBooleanField


class IdFilter(django_filters.NumberFilter):
    """A row's or user's id: `1.5` is an error, not a filter on id 1."""

    field_class = forms.IntegerField


# No time zone is further from UTC than this (Kiribati, +14:00); PostgreSQL refuses 16:00 and more.
MAX_UTC_OFFSET = timedelta(hours=14)


class UTCDateTimeField(django_filters.fields.IsoDateTimeField):
    """An ISO 8601 time, in UTC once parsed; an offset no time zone has is an error."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None:
            return None
        offset = parsed.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise ValidationError(
                "The UTC offset must be between -14:00 and +14:00; got %(value)s.",
                code="invalid",
                params={"value": value},
            )
        return parsed.astimezone(UTC)


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    """An ISO 8601 time filter; use it (not django-filter's) for every time filter."""

    field_class = UTCDateTimeField


class CreatedRangeFilterSet(django_filters.FilterSet):
    created_after = DateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after this ISO 8601 time."
    )
    created_before = DateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before this ISO 8601 time."
    )


class CommaListFilter(django_filters.BaseCSVFilter, django_filters.CharFilter):
    """`?tags=hail,insurance`: comma-separated values."""


def filter_tags_all(queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
    return queryset.filter(**{f"{name}__contains": [tag.strip() for tag in value if tag.strip()]})
