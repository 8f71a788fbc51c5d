import re
from collections.abc import Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

# ASCII digits only: str.isdigit() also accepts '²' and '١', which int() refuses or misreads,
# and int() refuses strings of more than 4300 digits.
_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def _whole_number(raw: str) -> int | None:
    return int(raw) if _WHOLE_NUMBER.fullmatch(raw) else None


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=` and `?page_size=` (1 to 200), refusing values it cannot honour with a 4xx."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        size = _whole_number(raw)
        if size is None or not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {"page_size": [f"page_size must be a whole number from 1 to {self.max_page_size}; got {raw!r}."]}
            )
        return size

    def paginate_queryset(
        self, queryset: QuerySet[Any, Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any]:
        self.request = request
        page_size = self.get_page_size(request)
        paginator = self.django_paginator_class(queryset, page_size)
        raw = request.query_params.get(self.page_query_param) or "1"
        number = paginator.num_pages if raw in self.last_page_strings else _whole_number(raw)
        if number is None or number < 1:
            raise ValidationError({"page": [f"page must be a whole number from 1, or 'last'; got {raw!r}."]})
        if number > paginator.num_pages:
            raise NotFound(f"Page {number} does not exist: there are {paginator.num_pages} page(s) of {page_size}.")
        self.page = paginator.page(number)
        return list(self.page)
