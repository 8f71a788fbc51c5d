"""/api/v1/contacts/ after the organizations merge: company contacts, the people who work for
them, categories, and the filters that find them."""

import pytest

from contacts.models import Contact
from tests.api import assert_invalid, table
from tests.conftest import client_for
from tests.factories import CompanyFactory, ContactFactory

URL = "/api/v1/contacts/"

pytestmark = pytest.mark.django_db


def detail(contact):
    return f"{URL}{contact.pk}/"


def ids(response):
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_create_a_company_contact(tenant, member_user):
    body = {
        "is_organization": True,
        "company": "Front Range Property Management",
        "email": "office@frontrangepm.example",
        "phone": "(303) 555-0142",
        "website": "https://www.frontrangepm.example/",
        "contact_category": "property_manager",
        "notes": "Net-30 invoices to the accounting office.",
    }

    response = client_for(member_user).post(URL, body)

    assert response.status_code == 201, response.content
    result = response.json()
    assert {key: result[key] for key in body} == body
    assert (result["display_name"], result["first_name"], result["company_contact"]) == (
        "Front Range Property Management",
        "",
        None,
    )
    assert Contact.objects.get().tenant == tenant


def test_a_company_may_share_its_email_with_a_person_but_two_people_may_not(tenant, member_user):
    ContactFactory(tenant=tenant, email="owner@smallroofs.example")
    client = client_for(member_user)

    company = client.post(URL, {"is_organization": True, "company": "Small Roofs", "email": "Owner@SmallRoofs.example"})
    before = table(Contact)
    person = client.post(URL, {"first_name": "Sam", "email": "owner@smallroofs.example"})

    assert company.status_code == 201, company.content
    assert_invalid(
        person,
        attr="email",
        code="contacts_email_unique_per_tenant",
        detail="Another person of this tenant has this email.",
    )
    assert table(Contact) == before


def test_a_company_needs_its_name(tenant, member_user):
    response = client_for(member_user).post(URL, {"is_organization": True, "email": "x@example.com"})

    assert_invalid(response, attr="company", code="required", detail="A company contact needs its name in company.")
    assert Contact.objects.count() == 0


def test_a_person_works_for_a_company_of_the_tenant(tenant, member_user):
    company = CompanyFactory(tenant=tenant)
    client = client_for(member_user)

    response = client.post(URL, {"first_name": "Lee", "company": "ACME", "company_contact": company.pk})

    assert response.status_code == 201, response.content
    assert response.json()["company_contact"] == company.pk
    assert Contact.objects.get(first_name="Lee").company_contact == company


@pytest.mark.parametrize(
    ("target", "code", "message"),
    [
        ("a person", "not_a_company", "Contact {pk} is a person, not a company contact."),
        ("another tenant's company", "does_not_exist", 'Invalid pk "{pk}" - object does not exist.'),
    ],
)
def test_company_contact_must_be_a_company_of_the_tenant(tenant, other_tenant, member_user, target, code, message):
    person = ContactFactory(tenant=tenant)
    linked = {
        "a person": ContactFactory(tenant=tenant),
        "another tenant's company": CompanyFactory(tenant=other_tenant),
    }
    before = table(Contact)

    response = client_for(member_user).patch(detail(person), {"company_contact": linked[target].pk})

    assert_invalid(response, attr="company_contact", code=code, detail=message.format(pk=linked[target].pk))
    assert table(Contact) == before


def test_a_company_works_for_no_one(tenant, member_user):
    company, other = CompanyFactory(tenant=tenant), CompanyFactory(tenant=tenant)
    before = table(Contact)

    response = client_for(member_user).patch(detail(company), {"company_contact": other.pk})

    assert_invalid(
        response,
        attr="company_contact",
        code="company_works_for_company",
        detail="A company cannot work for another company contact.",
    )
    assert table(Contact) == before


def test_a_company_with_people_stays_a_company(tenant, member_user):
    company = CompanyFactory(tenant=tenant)
    ContactFactory.create_batch(2, tenant=tenant, company_contact=company)
    before = table(Contact)

    response = client_for(member_user).patch(detail(company), {"is_organization": False, "first_name": "Ann"})

    assert_invalid(
        response,
        attr="is_organization",
        code="company_has_people",
        detail="2 people work for this company: link them elsewhere before making it a person.",
    )
    assert table(Contact) == before


def test_filters_companies_people_categories_and_a_companys_people(tenant, other_tenant, member_user):
    company = CompanyFactory(tenant=tenant, contact_category="property_manager")
    agency = CompanyFactory(tenant=tenant, contact_category="real_estate_agent")
    adjuster = ContactFactory(tenant=tenant, contact_category="adjuster")
    employee = ContactFactory(tenant=tenant, company_contact=company)
    CompanyFactory(tenant=other_tenant)
    client = client_for(member_user)

    def listed(**params):
        return set(ids(client.get(URL, params)))

    assert {
        "companies": listed(is_organization="true"),
        "people": listed(is_organization="false"),
        "adjusters and agencies": listed(contact_category=["adjuster", "real_estate_agent"]),
        "the company's people": listed(company_contact=company.pk),
    } == {
        "companies": {company.pk, agency.pk},
        "people": {adjuster.pk, employee.pk},
        "adjusters and agencies": {adjuster.pk, agency.pk},
        "the company's people": {employee.pk},
    }


@pytest.mark.parametrize(
    ("params", "attr", "code", "message"),
    [
        ({"is_organization": "maybe"}, "is_organization", "invalid", "Use true or false; got 'maybe'."),
        (
            {"contact_category": "roofer"},
            "contact_category",
            "invalid_choice",
            "Select a valid choice. roofer is not one of the available choices.",
        ),
        ({"company_contact": "1.5"}, "company_contact", "invalid", "Enter a whole number."),
    ],
)
def test_bad_filter_values_are_400_naming_the_filter(tenant, member_user, params, attr, code, message):
    response = client_for(member_user).get(URL, params)

    assert_invalid(response, attr=attr, code=code, detail=message)


def test_search_finds_a_company_by_its_name_and_website(tenant, member_user):
    company = CompanyFactory(tenant=tenant, company="Cherry Creek Property Services", website="https://ccps.example/")
    ContactFactory(tenant=tenant, first_name="Cherry", last_name="Blossom")
    client = client_for(member_user)

    assert ids(client.get(URL, {"search": "creek prop"})) == [company.pk]
    assert ids(client.get(URL, {"search": "ccps"})) == [company.pk]


def test_the_schema_documents_the_company_fields_and_filters(member_user):
    schema = client_for(member_user).get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()

    contact = schema["components"]["schemas"]["Contact"]["properties"]
    parameters = {p["name"] for p in schema["paths"]["/api/v1/contacts/"]["get"]["parameters"]}
    assert {"is_organization", "company", "website", "contact_category", "company_contact", "notes"} <= set(contact)
    assert {"is_organization", "contact_category", "company_contact"} <= parameters
