"""crm.urls plus a probe: what PostgreSQL sees inside a request's write transaction, and after it
within the request (whose own transaction publishes the actor)."""

from django.db import connection
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.views import TenantMixin
from crm.models import Role
from crm.urls import handler404, handler500, urlpatterns

PROBE_SQL = "SELECT app_is_impersonating(), app_effective_user_id(), app_real_user_id(), app_tenant_id()"


def sql_actor() -> list:
    with connection.cursor() as cursor:
        cursor.execute(PROBE_SQL)
        return list(cursor.fetchone())


class ProbeView(TenantMixin, APIView):
    def required_role(self, request: Request) -> Role:
        return Role.VIEWER

    def get(self, request: Request) -> Response:
        with self.request.actor.atomic():
            inside = sql_actor()
        return Response({"inside": inside, "after": sql_actor()})


urlpatterns = [*urlpatterns, path("probe/", ProbeView.as_view())]
__all__ = ["handler404", "handler500", "urlpatterns"]
