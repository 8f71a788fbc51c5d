"""`manage.py seed_demo` on a database that already holds tenants (no demo fixture here:
the demo's module-wide transaction would make the demo "already exist")."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from crm.models import Tenant
from tests.api import tables
from tests.factories import ContactFactory, TenantFactory

pytestmark = pytest.mark.django_db


def test_refuses_a_database_holding_other_tenants_and_changes_nothing(settings):
    settings.DEBUG = True
    acme = TenantFactory(name="Acme Roofing", subdomain="acme")
    ContactFactory(tenant=acme)
    before = tables()

    with pytest.raises(CommandError) as refused:
        call_command("seed_demo", stdout=StringIO())

    assert str(refused.value) == (
        "This database holds other tenants (acme) and no demo: the demo is written as the old system held it "
        "and upgraded like a customer's database, which needs a database without tenants. Point DATABASE_URL "
        "at a new database and run make run again."
    )
    assert list(Tenant.objects.values_list("subdomain", flat=True)) == ["acme"]
    assert tables() == before
