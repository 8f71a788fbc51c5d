"""/healthz: is the database and the broker reachable?"""

import socket

from django.test import Client, override_settings


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_healthy(db):
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"database": "ok", "broker": "ok"}


def test_broker_unreachable_is_503_naming_it(db):
    with override_settings(CELERY_BROKER_URL=f"redis://127.0.0.1:{closed_port()}/0"):
        response = Client().get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"database": "ok", "broker": "unreachable: ConnectionError"}


def test_needs_no_credentials_and_no_tenant(db):
    assert Client().get("/healthz", HTTP_X_TENANT="nowhere").status_code == 200
