"""crm.urls plus views that fail the way a deeply nested request body once did: a
RecursionError about 1,000 frames deep, every frame holding part of the body."""

from django.http import HttpRequest, HttpResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from crm.urls import handler404, handler500, urlpatterns

DEPTH = 600


def nested(depth: int) -> dict:
    value: dict = {"leaf": "x" * 10_000}
    for _ in range(depth):
        value = {"a": value, "sibling": list(range(1000))}
    return value


def walk(value: object) -> bool:
    return isinstance(value, dict) and any(walk(item) for item in value.values())


def crash(request: HttpRequest) -> HttpResponse:
    body = nested(DEPTH)
    walk(body)
    return HttpResponse("unreachable")


class CrashView(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> HttpResponse:
        return crash(request)


urlpatterns = [
    path("api/v1/test-crash/", crash),
    path("api/v1/test-crash-drf/", CrashView.as_view()),
    path("test-crash/", crash),
    *urlpatterns,
]

__all__ = ["handler404", "handler500", "urlpatterns"]
