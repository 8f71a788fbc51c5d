"""Running code as the application's database role (issue 17), inside a test's transaction.

The suite connects as the owner (a superuser, which row-level security never applies to):
pytest-django creates the test database with the default connection. Row-level security is
proven by switching the role for a block (`app_role()`) or for every request of the test
client (`AppRoleMiddleware`, installed by the `app_role_requests` fixture), then back.

`RIDGELINE_TEST_APP_ROLE=1 pytest ...` installs it for every test that uses the database:
the whole suite's requests then run as the application role.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from psycopg import sql

from crm.db import grant_app_role
from scripts.ensure_database import ensure_role

APP_SETTINGS = ("app.tenant_id", "app.user_id", "app.real_user_id", "app.change_source", "app.change_reason")


def app_role_ready() -> None:
    """The role exists (make setup creates it; a bare pytest run may not have) and has its grants
    (migrate gave them when the role existed as the test database was created)."""
    role = settings.DATABASE_APP_ROLE
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT has_table_privilege(rolname, 'contacts', 'SELECT') FROM pg_roles WHERE rolname = %s", [role]
        )
        granted = cursor.fetchone()
    if granted == (True,):
        return
    ensure_role(connection.cursor().connection, role)  # psycopg's connection, for scripts.ensure_database
    grant_app_role(connection)


def forget_published() -> None:
    """A new transaction's settings: nothing published (the test's transaction outlives requests)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join("set_config(%s, '', true)" for _ in (*APP_SETTINGS, "app.cross_tenant")),
            [*APP_SETTINGS, "app.cross_tenant"],
        )


def set_role(role: str | None) -> None:
    with connection.cursor() as cursor:
        if role is None:
            cursor.execute("RESET ROLE")
        else:
            cursor.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)).as_string(cursor.connection))


@contextmanager
def app_role() -> Iterator[None]:
    """Run the block as the application role, with nothing published."""
    forget_published()
    set_role(settings.DATABASE_APP_ROLE)
    try:
        yield
    finally:
        set_role(None)
        forget_published()


class AppRoleMiddleware:
    """Each request runs as the application role, as if on a fresh pooled connection."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with app_role():
            response = self.get_response(request)
            if isinstance(response, StreamingHttpResponse):
                response.streaming_content = list(response.streaming_content)  # the body runs as the app too
            return response
