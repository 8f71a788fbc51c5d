"""The one exception handler: every error becomes the documented API shape.

Every error response is `{"type": ..., "errors": [{"code", "detail", "attr"}]}`
(drf-standardized-errors); `attr` names the offending field when there is one.
"""

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as default_server_error
from drf_spectacular.utils import OpenApiResponse
from drf_standardized_errors import handler
from drf_standardized_errors.formatter import ExceptionFormatter
from drf_standardized_errors.types import ExceptionHandlerContext
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.serializers import as_serializer_error

from crm.constraints import constraint_violation
from crm.errors import ApplicationError


class StatusAPIException(exceptions.APIException):
    def __init__(self, detail: Any, code: str, status_code: int) -> None:
        super().__init__(detail, code)
        self.status_code = status_code


class ExceptionHandler(handler.ExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, ApplicationError):
            errors = [ErrorDetail(message, code=exc.code) for message in exc.messages]
            detail = {exc.attr: errors} if exc.attr else errors
            if exc.status_code == status.HTTP_400_BAD_REQUEST:
                return exceptions.ValidationError(detail)
            return StatusAPIException(detail, exc.code, exc.status_code)
        if isinstance(exc, DjangoValidationError):
            return exceptions.ValidationError(as_serializer_error(exc))
        if isinstance(exc, IntegrityError):
            return self.convert_known_exceptions(constraint_violation(exc))
        if isinstance(exc, RequestDataTooBig):
            return StatusAPIException(
                "The request body is larger than this server accepts.",
                "request_too_large",
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        return super().convert_known_exceptions(exc)


def api_error_response(error: exceptions.APIException, original: Exception) -> JsonResponse:
    """`error` in the API's shape, for a failure no view handled (an unmatched URL, a middleware)."""
    context: ExceptionHandlerContext = {
        # No view answers here: the type wants one, but the formatter never reads it.
        "view": None,  # type: ignore[typeddict-item]
        "args": (),
        "kwargs": {},
        "request": None,
    }
    body = ExceptionFormatter(error, context, original).run()
    return JsonResponse(body, status=error.status_code)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 for URLs no route matches (`handler404`): under /api/ in the API's error shape."""
    if not request.path.startswith("/api/"):
        return page_not_found(request, exception)
    return api_error_response(exceptions.NotFound(), exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 when DEBUG is off (`handler500`), for errors DRF did not format (in a
    middleware, a plain Django view): under /api/ in the API's error shape."""
    if not request.path.startswith("/api/"):
        return default_server_error(request)
    # The message drf-standardized-errors gives an unhandled exception inside a DRF view.
    error = exceptions.APIException(detail="Server Error (500)")
    return api_error_response(error, error)


class Error413Serializer(serializers.Serializer):
    code = serializers.ChoiceField(choices=["request_too_large"])
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ErrorResponse413Serializer(serializers.Serializer):
    """A request body over DATA_UPLOAD_MAX_MEMORY_SIZE."""

    type = serializers.ChoiceField(choices=["client_error"])
    errors = Error413Serializer(many=True)  # type: ignore[assignment]  # as in ErrorResponse409Serializer


class Error409Serializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ErrorResponse409Serializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["client_error"])
    # A declared field: DRF's metaclass takes it out of the class, so Serializer.errors stays.
    errors = Error409Serializer(many=True)  # type: ignore[assignment]


CONFLICT_RESPONSE = OpenApiResponse(ErrorResponse409Serializer, description="The row's state forbids this.")
