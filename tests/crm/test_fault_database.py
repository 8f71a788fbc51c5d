"""PostgreSQL unreachable under a live server: 503 with a clear body, fast; recovery without a restart.

gunicorn reaches the test database through a TCP proxy on loopback. Cutting the proxy drops
every open connection (as a restarting server does) and leaves new ones unanswered (as an
unreachable host does), so only the connection's own timeout (DATABASE_CONNECT_TIMEOUT) ends
a request. Restoring it, the same gunicorn serves again.
"""

import pytest
from django.db import connection

from contacts.models import Contact
from crm.api.errors import DATABASE_UNAVAILABLE
from crm.models import AuthToken
from tests.factories import ContactFactory
from tests.live import TcpProxy, database_url, live_server

UNAVAILABLE = {
    "type": "server_error",
    "errors": [{"code": "database_unavailable", "detail": DATABASE_UNAVAILABLE, "attr": None}],
}
PAGE = (
    "<!doctype html>\n<title>Service Unavailable</title>\n<h1>Service Unavailable (503)</h1>\n"
    "<p>The database is unreachable, so the request was not carried out. Try again in a few seconds.</p>\n"
)


@pytest.fixture
def proxy():
    params = connection.settings_dict
    proxy = TcpProxy((params["HOST"] or "127.0.0.1", int(params["PORT"] or 5432)))
    yield proxy
    proxy.stop()


@pytest.fixture
def token(transactional_db, tenant, owner):
    ContactFactory.create_batch(3, tenant=tenant)
    _, secret = AuthToken.objects.create(user=owner)
    return {"Authorization": f"Token {secret}"}


def test_requests_answer_503_while_the_database_is_cut_and_recover_when_it_returns(proxy, token, tenant):
    with live_server(DATABASE_URL=database_url(port=proxy.port), DATABASE_CONNECT_TIMEOUT="2") as server:
        assert server.request("GET", "/api/v1/contacts/", headers=token).json()["count"] == 3

        proxy.cut()

        # Through a DRF view (token authentication runs inside it) and through a middleware
        # (the session is read before any view), on the API and off it.
        listed = server.request("GET", "/api/v1/contacts/", headers=token)
        created = server.request("POST", "/api/v1/contacts/", headers=token, json={"first_name": "Ada"})
        by_session = server.request("GET", "/api/v1/contacts/", cookies={"sessionid": "x" * 32})
        admin = server.request("GET", "/admin/", cookies={"sessionid": "x" * 32})
        health = server.request("GET", "/healthz")
        for response in (listed, created, by_session):
            assert (response.status_code, response.headers["Retry-After"], response.json()) == (503, "5", UNAVAILABLE)
        assert (admin.status_code, admin.headers["Retry-After"], admin.text) == (503, "5", PAGE)
        assert health.status_code == 503
        assert health.json() == {"database": "unreachable: OperationalError", "broker": "ok"}

        proxy.restore()

        # Both workers (each had a connection that the cut closed) serve again, and write.
        for _ in range(4):
            assert server.request("GET", "/api/v1/contacts/", headers=token).json()["count"] == 3
        created = server.request("POST", "/api/v1/contacts/", headers=token, json={"first_name": "Ada"})
        assert server.request("GET", "/healthz").status_code == 200

    assert created.status_code == 201
    assert Contact.objects.filter(tenant=tenant).count() == 4
