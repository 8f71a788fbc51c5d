"""factory_boy factories for the core models; each app's tests add their own next to them."""

import factory
from factory.django import DjangoModelFactory

from contacts.models import Contact
from crm.models import Activity, Membership, Project, ProjectContact, Role, Tenant, User


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.django.Password("correct horse battery staple")


class TenantFactory(DjangoModelFactory[Tenant]):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Roofing Co {n}")
    subdomain = factory.Sequence(lambda n: f"roofing-{n}")


class MembershipFactory(DjangoModelFactory[Membership]):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


class ContactFactory(DjangoModelFactory[Contact]):
    class Meta:
        model = Contact

    tenant = factory.SubFactory(TenantFactory)
    # A company (CompanyFactory) has no person's name: a plain "".
    first_name: str | factory.Faker = factory.Faker("first_name")
    last_name: str | factory.Faker = factory.Faker("last_name")
    email = factory.Sequence(lambda n: f"contact{n}@example.com")
    phone = factory.Faker("numerify", text="(###) ###-####")
    address_city = factory.Faker("city")
    roof_type = "asphalt_shingle"


class ProjectFactory(DjangoModelFactory[Project]):
    class Meta:
        model = Project

    tenant = factory.SubFactory(TenantFactory)
    contact = factory.SubFactory(ContactFactory, tenant=factory.SelfAttribute("..tenant"))
    name = factory.Sequence(lambda n: f"Roof replacement {n}")


class ActivityFactory(DjangoModelFactory[Activity]):
    class Meta:
        model = Activity

    tenant = factory.SubFactory(TenantFactory)
    contact = factory.SubFactory(ContactFactory, tenant=factory.SelfAttribute("..tenant"))
    type = Activity.Type.CALL
    subject = "Inspection follow-up"


class CompanyFactory(ContactFactory):
    """A company contact (what an organization became in the merge)."""

    is_organization = True
    first_name = ""
    last_name = ""
    company = factory.Sequence(lambda n: f"Property Group {n}")
    email = factory.Sequence(lambda n: f"office{n}@company.example")
    contact_category = Contact.Category.PROPERTY_MANAGER


class ProjectContactFactory(DjangoModelFactory[ProjectContact]):
    class Meta:
        model = ProjectContact

    tenant = factory.SubFactory(TenantFactory)
    project = factory.SubFactory(ProjectFactory, tenant=factory.SelfAttribute("..tenant"))
    contact = factory.SubFactory(ContactFactory, tenant=factory.SelfAttribute("..tenant"))
    role = ProjectContact.Role.ADJUSTER
