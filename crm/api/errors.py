"""The one exception handler: every error becomes the documented API shape.

Every error response is `{"type": ..., "errors": [{"code", "detail", "attr"}]}`
(drf-standardized-errors); `attr` names the offending field when there is one.
"""

import sys
from html import escape
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found
from django.views.defaults import server_error as default_server_error
from drf_spectacular.utils import OpenApiResponse
from drf_standardized_errors import handler
from drf_standardized_errors.formatter import ExceptionFormatter
from drf_standardized_errors.openapi_serializers import ClientErrorEnum, ValidationErrorEnum
from drf_standardized_errors.types import ExceptionHandlerContext
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import exceptions, serializers, status
from rest_framework.exceptions import ErrorDetail
from rest_framework.serializers import as_serializer_error

from crm.constraints import constraint_violation
from crm.errors import ApplicationError


class StatusAPIException(exceptions.APIException):
    def __init__(self, detail: Any, code: str, status_code: int) -> None:
        super().__init__(detail, code)
        self.status_code = status_code


class ServiceUnavailable(exceptions.APIException):
    """A server the request needs is unreachable: 503, to try again (`Retry-After`)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    wait = 5  # seconds, the Retry-After header (drf-standardized-errors sends it)


DATABASE_UNAVAILABLE = "The database is unreachable, so the request was not carried out. Try again in a few seconds."
BROKER_UNAVAILABLE = "The task queue is unreachable, so the work was not queued. Try again in a few seconds."
# SQLSTATEs of a server that is going away or not there yet: class 08 (connection exception),
# admin_shutdown, crash_shutdown and cannot_connect_now (starting up or restarting).
SHUTDOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


UNAVAILABLE_PAGE = (
    "<!doctype html>\n<title>Service Unavailable</title>\n<h1>Service Unavailable (503)</h1>\n<p>{detail}</p>\n"
)


def database_unreachable(exc: BaseException | None) -> bool:
    """Whether `exc` says the database cannot be reached (as opposed to a query it refused:
    a deadlock, a cancelled statement, a constraint, which stay errors of their own)."""
    if isinstance(exc, InterfaceError):  # the connection is closed
        return True
    if not isinstance(exc, OperationalError):
        return False
    sqlstate = getattr(exc.__cause__, "sqlstate", None)  # psycopg's error, which Django wraps
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in SHUTDOWN_SQLSTATES


def unavailable_error(exc: BaseException | None) -> ServiceUnavailable | None:
    """The 503 for an unreachable database or broker, None for any other error."""
    if database_unreachable(exc):
        return ServiceUnavailable(DATABASE_UNAVAILABLE, "database_unavailable")
    if isinstance(exc, BrokerError):
        return ServiceUnavailable(BROKER_UNAVAILABLE, "broker_unavailable")
    return None


class ExceptionHandler(handler.ExceptionHandler):
    def convert_known_exceptions(self, exc: Exception) -> Exception:
        unavailable = unavailable_error(exc)
        if unavailable is not None:
            return unavailable
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
    response = JsonResponse(body, status=error.status_code)
    wait = getattr(error, "wait", None)
    if wait:
        response["Retry-After"] = str(wait)
    return response


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 for URLs no route matches (`handler404`): under /api/ in the API's error shape."""
    if not request.path.startswith("/api/"):
        return page_not_found(request, exception)
    return api_error_response(exceptions.NotFound(), exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 when DEBUG is off (`handler500`), for errors DRF did not format (in a
    middleware, a plain Django view): under /api/ in the API's error shape.

    An unreachable database or broker is a 503 instead (Django calls this while handling the
    exception, so `sys.exception()` is it): the API's shape under /api/, a page elsewhere.
    """
    unavailable = unavailable_error(sys.exception())
    if unavailable is not None:
        if request.path.startswith("/api/"):
            return api_error_response(unavailable, unavailable)
        page = UNAVAILABLE_PAGE.format(detail=escape(str(unavailable.detail)))
        return HttpResponse(page, status=unavailable.status_code, headers={"Retry-After": str(unavailable.wait)})
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

    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = Error413Serializer(many=True)  # type: ignore[assignment]  # as in ErrorResponse409Serializer


class Error409Serializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class ErrorResponse409Serializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    # A declared field: DRF's metaclass takes it out of the class, so Serializer.errors stays.
    errors = Error409Serializer(many=True)  # type: ignore[assignment]


CONFLICT_RESPONSE = OpenApiResponse(ErrorResponse409Serializer, description="The row's state forbids this.")


class ErrorResponse403RuleSerializer(serializers.Serializer):
    """A refusal by a rule of the service, with its own code (`crm.errors.Forbidden`), not only
    the role check's `permission_denied`."""

    type = serializers.ChoiceField(choices=ClientErrorEnum.choices)
    errors = Error409Serializer(many=True)  # type: ignore[assignment]  # code, detail, attr: as a 409's


FORBIDDEN_BY_RULE_RESPONSE = OpenApiResponse(
    ErrorResponse403RuleSerializer, description="Refused by a rule (the code names it) or by the role."
)


class ErrorResponse400RuleSerializer(serializers.Serializer):
    """Input refused by a service's rule over more than the request's fields (the code and the
    attr name the rule and the part, e.g. a campaign's `steps[2].step_config`)."""

    type = serializers.ChoiceField(choices=ValidationErrorEnum.choices + ClientErrorEnum.choices)
    errors = Error409Serializer(many=True)  # type: ignore[assignment]  # code, detail, attr: as a 409's


INVALID_BY_RULE_RESPONSE = OpenApiResponse(
    ErrorResponse400RuleSerializer, description="Refused by a rule: the code names it, attr the part."
)
