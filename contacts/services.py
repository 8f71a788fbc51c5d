"""Writes to contacts: every path (API, admin, tasks) goes through these."""

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from django.db.models.functions import Now
from django.utils import timezone

from contacts.models import Contact
from crm.actor import Actor
from crm.errors import ApplicationError
from crm.models import User
from crm.records import (
    record_assign,
    record_check_links,
    record_check_named_substatus,
    record_purge,
    record_restore,
    record_save,
    record_soft_delete,
    record_writable_fields,
)
from crm.tenancy import tenant_ensure_members

if TYPE_CHECKING:
    # Contacts reach substatus only through the foreign key; the type names its model.
    from substatus.models import SubstatusConfig

CONTACT_WRITABLE_FIELDS = record_writable_fields(Contact)
# Kept by the database (the substatus triggers): read back after a write that may change them.
CONTACT_DATABASE_KEPT_FIELDS = ["substatus", "substatus_since"]
# Each consent flag and the date it was last turned on.
CONSENT_DATES = {
    "sms_opt_in": "sms_opt_in_date",
    "sms_opt_out": "sms_opt_out_date",
    "email_opt_out": "email_opt_out_date",
    "email_invalid": "email_invalid_date",
}


class ContactFields(TypedDict, total=False):
    """What contact_create and contact_update accept: CONTACT_WRITABLE_FIELDS (a test keeps them equal)."""

    is_organization: bool
    company: str
    company_contact: Contact | None
    contact_category: str
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    mobile_phone: str | None
    website: str | None
    address_street: str | None
    address_city: str | None
    address_state: str | None
    address_zip: str | None
    latitude: Decimal | None
    longitude: Decimal | None
    type: str
    stage: str
    source: str | None
    source_details: dict[str, Any]
    assigned_to: User | None
    property_type: str | None
    roof_type: str | None
    roof_age: int | None
    last_inspection_date: date | None
    property_value: Decimal | None
    square_footage: int | None
    stories: int | None
    insurance_carrier: str | None
    policy_number: str | None
    claim_number: str | None
    deductible: Decimal | None
    lead_score: int
    priority: str
    custom_fields: dict[str, Any]
    tags: list[str]
    notes: str | None
    quickbooks_customer_id: str | None
    proline_id: str | None
    timezone: str
    sms_opt_in: bool
    sms_opt_in_date: datetime | None
    sms_opt_out: bool
    sms_opt_out_date: datetime | None
    sms_opt_out_reason: str | None
    email_opt_out: bool
    email_opt_out_date: datetime | None
    email_opt_out_reason: str | None
    email_invalid: bool
    email_invalid_date: datetime | None
    email_invalid_reason: str | None
    substatus: "SubstatusConfig | None"


def _check_references(contact: Contact, fields: ContactFields) -> None:
    record_check_links(contact, fields)
    record_check_named_substatus(contact, fields, status_field="stage")
    if "assigned_to" in fields:
        tenant_ensure_members(contact.tenant, assigned_to=fields["assigned_to"])


def _check_company(contact: Contact, fields: ContactFields) -> None:
    """A company is named by `company` and works for no one; a person works for a company contact."""
    is_organization = fields.get("is_organization", contact.is_organization)
    company = fields.get("company", contact.company)
    company_contact = fields.get("company_contact", contact.company_contact)
    if is_organization and not (company or "").strip():
        raise ApplicationError("A company contact needs its name in company.", code="required", attr="company")
    if company_contact is not None and is_organization:
        raise ApplicationError(
            "A company cannot work for another company contact.",
            code="company_works_for_company",
            attr="company_contact",
        )
    if company_contact is not None and not company_contact.is_organization:
        raise ApplicationError(
            f"Contact {company_contact.pk} is a person, not a company contact.",
            code="not_a_company",
            attr="company_contact",
        )
    if contact.pk is not None and contact.is_organization and not is_organization:
        people = Contact.objects.filter(company_contact=contact).count()
        if people:
            raise ApplicationError(
                f"{people} {'person works' if people == 1 else 'people work'} for this company: link them "
                "elsewhere before making it a person.",
                code="company_has_people",
                attr="is_organization",
            )


def _consent_dates(contact: Contact, fields: Mapping[str, object]) -> dict[str, datetime]:
    """A date for each consent flag the write turns on without naming its date: now.

    A date the caller names (an import of the old system's rows) is kept as given.
    """
    now = timezone.now()
    return {
        date_field: now
        for flag, date_field in CONSENT_DATES.items()
        if fields.get(flag) is True and not getattr(contact, flag) and fields.get(date_field) is None
    }


def contact_create(*, actor: Actor, reason: str = "", **fields: Unpack[ContactFields]) -> Contact:
    """A new contact; without a `substatus` the database gives its stage's default."""
    contact = Contact(tenant=actor.require_tenant(), created_by=actor.user)
    _check_references(contact, fields)
    _check_company(contact, fields)
    record_assign(contact, {**fields, **_consent_dates(contact, fields)}, allowed=CONTACT_WRITABLE_FIELDS)
    record_save(contact, actor=actor, reason=reason)
    contact.refresh_from_db(fields=CONTACT_DATABASE_KEPT_FIELDS)
    return contact


def contact_update(*, contact: Contact, actor: Actor, reason: str = "", **fields: Unpack[ContactFields]) -> Contact:
    """Change the given fields only (concurrent edits of other fields are kept).

    A new `stage` without a `substatus` takes the stage's default (the database's rule);
    `reason` goes into the substatus history. A consent flag turned on without its date is
    dated now.
    """
    _check_references(contact, fields)
    _check_company(contact, fields)
    changed = record_assign(contact, {**fields, **_consent_dates(contact, fields)}, allowed=CONTACT_WRITABLE_FIELDS)
    record_save(contact, actor=actor, update_fields=changed, reason=reason)
    if {"stage", "substatus"} & set(changed):
        contact.refresh_from_db(fields=CONTACT_DATABASE_KEPT_FIELDS)
    return contact


def contact_delete(*, contact: Contact, actor: Actor) -> Contact:
    return record_soft_delete(record=contact, actor=actor)


def contact_restore(*, contact: Contact, actor: Actor) -> Contact:
    return record_restore(record=contact, actor=actor)


def contact_purge(*, contact: Contact, actor: Actor) -> None:
    record_purge(record=contact, actor=actor)


def contacts_reassign(*, actor: Actor, from_user: User, to_user: User | None, batch_size: int = 1000) -> int:
    """Hand every live contact of `from_user` to `to_user` (None: unassign); returns how many.

    Batches keep row locks short on a large book of contacts; running it again after a
    crash moves only what is left.
    """
    tenant = actor.require_tenant()
    tenant_ensure_members(tenant, to_user=to_user)
    if to_user is not None and to_user.pk == from_user.pk:
        return 0
    remaining = Contact.objects.alive().filter(tenant=tenant, assigned_to=from_user).order_by("pk")
    moved = 0
    while True:
        with actor.atomic():
            batch = list(remaining.select_for_update().values_list("pk", flat=True)[:batch_size])
            if not batch:
                return moved
            moved += Contact.objects.filter(pk__in=batch).update(
                assigned_to=to_user, updated_by=actor.user, updated_at=Now()
            )
