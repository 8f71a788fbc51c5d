"""The API's tenancy and role tests again, every request as the application's database role
(issue 17): under row-level security each resource still lists, reads, creates, changes,
deletes, restores and purges its tenant's rows for the roles that may, and another tenant's
rows stay invisible (404) and unchanged."""

import pytest

from tests.crm.test_roles import test_role_matrix  # noqa: F401 - collected here again
from tests.crm.test_tenancy import *  # noqa: F403 - the same tests, collected here again


@pytest.fixture(autouse=True)
def _as_app_role(app_role_requests):
    """tests/conftest.py: every request of the test client runs as the application role."""
