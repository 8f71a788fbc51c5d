"""Filter pieces shared by every app's FilterSets."""

import django_filters
from django.db.models import QuerySet


class CreatedRangeFilterSet(django_filters.FilterSet):
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after this ISO 8601 time."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before this ISO 8601 time."
    )


class CommaListFilter(django_filters.BaseCSVFilter, django_filters.CharFilter):
    """`?tags=hail,insurance`: comma-separated values."""


def filter_tags_all(queryset: QuerySet, name: str, value: list[str]) -> QuerySet:
    return queryset.filter(**{f"{name}__contains": [tag.strip() for tag in value if tag.strip()]})
