"""Subdomains are DNS labels that are never all digits nor reserved, and `X-Tenant` is never
ambiguous: digits name a tenant's id, anything else its subdomain (issue 11, section 4)."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from contacts.models import Contact
from crm.actor import Actor
from crm.constraints import constraint_error
from crm.models import SUBDOMAIN_RULE, Role, Tenant
from crm.services import tenant_create, tenant_update
from tests.api import CONTACTS, tables
from tests.conftest import client_for
from tests.factories import MembershipFactory, TenantFactory, UserFactory

INVALID = {
    "1": "A subdomain cannot be all digits (X-Tenant reads digits as a tenant id).",
    "007": "A subdomain cannot be all digits (X-Tenant reads digits as a tenant id).",
    "www": "www is reserved: choose another subdomain.",
    "api": "api is reserved: choose another subdomain.",
    "admin": "admin is reserved: choose another subdomain.",
    "static": "static is reserved: choose another subdomain.",
    "-summit": "-summit is not a valid subdomain: use 1-63 lowercase letters, digits and hyphens, "
    "not starting or ending with a hyphen.",
    "summit-": "summit- is not a valid subdomain: use 1-63 lowercase letters, digits and hyphens, "
    "not starting or ending with a hyphen.",
    "Summit": "Summit is not a valid subdomain: use 1-63 lowercase letters, digits and hyphens, "
    "not starting or ending with a hyphen.",
    "a" * 64: f"{'a' * 64} is not a valid subdomain: use 1-63 lowercase letters, digits and hyphens, "
    "not starting or ending with a hyphen.",
}


@pytest.fixture
def ops(db):
    return Actor(tenant=None, user=UserFactory(username="ops", is_superuser=True, is_staff=True))


@pytest.mark.parametrize("subdomain", ["a", "summit", "summit-roofing", "4seasons", "r2d2", "a" * 63])
def test_valid_subdomains_are_accepted(ops, subdomain):
    assert tenant_create(actor=ops, name="Roofing", subdomain=subdomain).subdomain == subdomain


@pytest.mark.parametrize(("subdomain", "message"), INVALID.items(), ids=lambda value: value[:8])
def test_the_service_refuses_an_invalid_subdomain_naming_it(ops, tenant, subdomain, message):
    before = list(Tenant.objects.values())

    with pytest.raises(ValidationError) as refused:
        tenant_update(tenant=tenant, actor=ops.for_tenant(tenant), subdomain=subdomain)

    assert message in refused.value.message_dict["subdomain"]
    assert list(Tenant.objects.values()) == before


# Longer than 63 characters is the column's width to refuse today (it is the constraint's once widened).
@pytest.mark.parametrize(
    "subdomain", [*(name for name in INVALID if len(name) <= 63), "a_b", "sum mit", ""], ids=lambda value: value[:8]
)
def test_the_database_refuses_an_invalid_subdomain_whatever_path_writes_it(tenant, subdomain):
    with pytest.raises(IntegrityError) as refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE tenants SET subdomain = %s WHERE id = %s", [subdomain, tenant.pk])

    assert refused.value.__cause__.diag.constraint_name == "tenants_subdomain_valid"


def test_the_constraint_is_reported_on_the_subdomain_field(ops, tenant):
    """A write that skips the field's validators meets the constraint, named on its field."""
    error = constraint_error("tenants_subdomain_valid")

    assert (error.attr, error.message, error.code) == ("subdomain", SUBDOMAIN_RULE, "tenants_subdomain_valid")


def test_a_numeric_x_tenant_names_the_id_even_when_a_subdomain_spells_it(tenant, other_tenant):
    """The finding: a tenant whose subdomain was another tenant's id captured its requests.
    With the constraint lifted (as on a database from before it), digits still name the id."""
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tenants DROP CONSTRAINT tenants_subdomain_valid")  # rolled back with the test
    decoy = TenantFactory(name="Decoy Roofing", subdomain=str(other_tenant.pk))
    user = UserFactory(username="consultant")
    for joined in (tenant, other_tenant, decoy):
        MembershipFactory(tenant=joined, user=user, role=Role.MEMBER)

    response = client_for(user).post(CONTACTS.url, {"first_name": "Dana"}, HTTP_X_TENANT=str(other_tenant.pk))

    assert response.status_code == 201, response.content
    assert Contact.objects.get(pk=response.json()["id"]).tenant == other_tenant
    assert not Contact.objects.filter(tenant=decoy).exists()


def test_a_subdomain_header_never_matches_an_id(tenant, member_user):
    before = tables()

    response = client_for(member_user).post(CONTACTS.url, {"first_name": "Dana"}, HTTP_X_TENANT=f"t{tenant.pk}")

    assert response.status_code == 403
    assert tables() == before


# The migration that adds the constraint ---------------------------------------------------

BEFORE = [("crm", "0010_drop_authtoken")]
AFTER = [("crm", "0011_tenant_subdomain_valid")]


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_the_migration_lists_offending_tenants_and_changes_nothing():
    try:
        migrate(BEFORE)
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO tenants (name, subdomain) VALUES ('Good', 'good'), ('Digits', '12'), "
                "('Reserved', 'www'), ('Upper', 'Summit') RETURNING id"
            )
            ids = [pk for (pk,) in cursor.fetchall()]

        with pytest.raises(Exception, match="3 tenant\\(s\\) have a subdomain") as refused:
            migrate(AFTER)

        message = str(refused.value)
        assert f"tenant {ids[1]}: '12'" in message
        assert f"tenant {ids[2]}: 'www'" in message
        assert f"tenant {ids[3]}: 'Summit'" in message
        assert "'good'" not in message
        with connection.cursor() as cursor:
            cursor.execute("SELECT subdomain FROM tenants ORDER BY id")
            assert [subdomain for (subdomain,) in cursor.fetchall()] == ["good", "12", "www", "Summit"]
            cursor.execute("UPDATE tenants SET subdomain = 'digits-' || id WHERE subdomain !~ '^[a-z]+$'")
            cursor.execute("UPDATE tenants SET subdomain = 'reserved-www' WHERE subdomain = 'www'")

        migrate(AFTER)
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE tenants SET subdomain = '12' WHERE id = %s", [ids[0]])

        migrate(BEFORE)  # backwards: the constraint goes
        with connection.cursor() as cursor:
            cursor.execute("UPDATE tenants SET subdomain = '12' WHERE id = %s", [ids[0]])
            assert cursor.rowcount == 1
            cursor.execute("UPDATE tenants SET subdomain = 'good' WHERE id = %s", [ids[0]])
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
