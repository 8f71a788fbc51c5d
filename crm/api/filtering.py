from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError
from rest_framework.filters import OrderingFilter
from rest_framework.request import Request
from rest_framework.views import APIView


class StrictOrderingFilter(OrderingFilter):
    """`?ordering=a,-b`: an unknown field is a 400 naming it; `id` breaks ties so pages are stable."""

    def get_ordering(self, request: Request, queryset: QuerySet, view: APIView) -> list[str]:
        raw = request.query_params.get(self.ordering_param)
        if raw:
            fields = [term.strip() for term in raw.split(",") if term.strip()]
            allowed = sorted(name for name, _ in self.get_valid_fields(queryset, view, {"request": request}))
            unknown = [term for term in fields if term.lstrip("-") not in allowed]
            if unknown:
                raise ValidationError(
                    {
                        self.ordering_param: [
                            f"Unknown ordering field(s): {', '.join(unknown)}. Allowed: {', '.join(allowed)}."
                        ]
                    }
                )
        else:
            fields = list(self.get_default_ordering(view) or [])
        if not any(term.lstrip("-") in {"id", "pk"} for term in fields):
            fields.append("-id")
        return fields


class FilterBackend(DjangoFilterBackend):
    """django-filter, not even built when the query string holds only paging, ordering and
    soft-delete flags: the unfiltered page is the most frequent request of every list."""

    not_filters = frozenset({"page", "page_size", "ordering", "deleted", "purge"})

    def filter_queryset(self, request: Request, queryset: QuerySet, view: APIView) -> QuerySet:
        if set(request.query_params) <= self.not_filters:
            return queryset
        return super().filter_queryset(request, queryset, view)
