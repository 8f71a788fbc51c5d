"""?search= on contacts: full-text prefix matching over names, email and phones."""

import pytest

from contacts.models import Contact
from tests.conftest import client_for
from tests.factories import ContactFactory

URL = "/api/v1/contacts/"


@pytest.fixture
def people(tenant, other_tenant):
    return {
        "jane": ContactFactory(
            tenant=tenant,
            first_name="Jane",
            last_name="Smithers",
            email="jane.doe@example.com",
            phone="(555) 123-4567",
            mobile_phone=None,
        ),
        "jose": ContactFactory(
            tenant=tenant,
            first_name="José",
            last_name="Müller-Østergaard",
            email="jm@dachdecker.de",
            phone="+49 30 1234567",
            mobile_phone="555.987.6543",
        ),
        "oneil": ContactFactory(
            tenant=tenant,
            first_name="Sean",
            last_name="O'Neil",
            email="sean_oneil+roofs@mail.example.org",
            phone=None,
            mobile_phone="555-246-8100",
        ),
        # Another tenant's contact that matches every query above: never found.
        "other": ContactFactory(
            tenant=other_tenant,
            first_name="Jane José Sean",
            last_name="Smithers Müller O'Neil",
            email="jane.doe@example.com",
            phone="(555) 123-4567",
            mobile_phone="555-987-6543",
        ),
    }


def search(client, text):
    response = client.get(URL, {"search": text})
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # names, by prefix, case-insensitively, every word must match
        ("jan", ["jane"]),
        ("SMITH", ["jane"]),
        ("jane smi", ["jane"]),
        ("smi jane", ["jane"]),
        ("jane müller", []),
        ("o'neil", ["oneil"]),
        # email: whole, by prefix and by its parts
        ("jane.doe@example.com", ["jane"]),
        ("jane.doe@exa", ["jane"]),
        ("doe", ["jane"]),
        ("sean_oneil+roofs@mail.example.org", ["oneil"]),
        ("oneil", ["oneil"]),
        ("dachdecker", ["jose"]),
        # phones, however they are written
        ("(555) 123-4567", ["jane"]),
        ("555-123-4567", ["jane"]),
        ("5551234567", ["jane"]),
        ("555123", ["jane"]),
        ("4567", ["jane"]),
        ("555.987.6543", ["jose"]),
        ("5559876543", ["jose"]),
        ("246-8100", ["oneil"]),
        ("555", ["jane", "jose", "oneil"]),
        # unicode
        ("josé", ["jose"]),
        ("JOSÉ", ["jose"]),
        ("müller", ["jose"]),
        ("østergaard", ["jose"]),
    ],
)
def test_search_matches_prefixes_of_names_email_and_phones(people, member_user, text, expected):
    assert sorted(search(client_for(member_user), text)) == sorted(people[name].pk for name in expected)


@pytest.mark.parametrize("text", ["", "   ", "!!!", "-- '", "&|!():*<->", "@", "\\"])
def test_input_without_words_does_not_filter(people, member_user, text):
    mine = Contact.objects.filter(tenant=people["jane"].tenant).values_list("pk", flat=True)

    assert sorted(search(client_for(member_user), text)) == sorted(mine)


@pytest.mark.parametrize("text", ["smith & | ! jane", "jane:*", "(jane)", "jane <-> smithers", "'jane'", "jane_"])
def test_query_syntax_in_the_input_is_plain_text(people, member_user, text):
    assert search(client_for(member_user), text) == [people["jane"].pk]


def test_deleted_contacts_are_not_found(people, member_user):
    Contact.objects.filter(pk=people["jane"].pk).update(is_deleted=True)

    assert search(client_for(member_user), "jane") == []


def test_search_follows_every_write(tenant, member_user):
    client = client_for(member_user)
    created = client.post(URL, {"first_name": "Priya", "phone": "303-555-0199"}).json()

    assert search(client, "priya") == [created["id"]]
    client.patch(f"{URL}{created['id']}/", {"first_name": "Anika", "email": "anika@example.com"})

    assert search(client, "priya") == []
    assert search(client, "anika@example") == [created["id"]]
    assert search(client, "3035550199") == [created["id"]]


def test_search_combines_with_filters_and_ordering(tenant, member_user):
    lead = ContactFactory(tenant=tenant, last_name="Hale", type="lead", lead_score=10)
    customer = ContactFactory(tenant=tenant, last_name="Hall", type="customer", lead_score=90)
    ContactFactory(tenant=tenant, last_name="Ross", type="customer")
    client = client_for(member_user)

    assert client.get(URL, {"search": "ha", "type": "customer"}).json()["count"] == 1
    response = client.get(URL, {"search": "ha", "ordering": "-lead_score"})
    assert [item["id"] for item in response.json()["results"]] == [customer.pk, lead.pk]
