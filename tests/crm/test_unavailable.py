"""Which errors are "a server is unreachable" (503, try again) and which stay errors of their own."""

import pytest
from django.db import OperationalError, connection, transaction
from django.db.backends.postgresql.base import DatabaseWrapper

from crm.api.errors import database_unreachable, unavailable_error
from tests.live import free_port


def test_a_database_that_refuses_connections_is_unreachable(db):
    wrapper = DatabaseWrapper({**connection.settings_dict, "HOST": "127.0.0.1", "PORT": free_port()})

    with pytest.raises(OperationalError) as excinfo:
        wrapper.ensure_connection()

    assert database_unreachable(excinfo.value)
    assert unavailable_error(excinfo.value).get_codes() == "database_unavailable"


def sleep_past_the_statement_timeout() -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 1")
        cursor.execute("SELECT pg_sleep(1)")


def test_a_cancelled_statement_is_not_an_unreachable_database(db):
    with pytest.raises(OperationalError) as excinfo:
        sleep_past_the_statement_timeout()

    assert excinfo.value.__cause__.sqlstate == "57014"
    assert not database_unreachable(excinfo.value)
    assert unavailable_error(excinfo.value) is None


@pytest.mark.parametrize("exc", [ValueError("x"), None])
def test_other_errors_are_not_unavailability(exc):
    assert unavailable_error(exc) is None
