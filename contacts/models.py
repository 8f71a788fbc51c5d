"""Contacts: the people and companies a roofing company works with.

Companies were a table of their own (`organizations`) in the old system; the organizations
merge (contacts migrations 0004-0007) turned each one into a company contact and recorded
where it went in `merged_organizations`.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func, Q, TextField, Value
from django.db.models.functions import Lower, Now

from crm.fields import JSONDocumentField, choices_check, non_negative_check
from crm.models import SoftDeleteRecord, validate_timezone


def regexp_replace(field: "str | Func", pattern: str, replacement: str) -> Func:
    """`field` with every match of `pattern` replaced (an immutable function, fit for a generated column)."""
    source = F(field) if isinstance(field, str) else field
    return Func(
        source, Value(pattern), Value(replacement), Value("g"), function="regexp_replace", output_field=TextField()
    )


class ContactType(models.TextChoices):
    LEAD = "lead"
    CUSTOMER = "customer"
    PROSPECT = "prospect"


class ContactStage(models.TextChoices):
    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"


class ContactPriority(models.TextChoices):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class ContactCategory(models.TextChoices):
    """What a contact is to the roofing company; also the roles a contact can hold on a job."""

    HOMEOWNER = "homeowner"
    ADJUSTER = "adjuster"
    SUB_CONTRACTOR = "sub_contractor", "Sub-contractor"
    PROPERTY_MANAGER = "property_manager"
    REAL_ESTATE_AGENT = "real_estate_agent"
    DEVELOPER = "developer"
    LOCAL_BUSINESS = "local_business"
    OTHER = "other"


class Contact(SoftDeleteRecord):
    """A person, or a company (`is_organization`) whose name is `company`."""

    Type = ContactType
    Stage = ContactStage
    Priority = ContactPriority
    Category = ContactCategory

    tenant = models.ForeignKey("crm.Tenant", on_delete=models.PROTECT, related_name="contacts")
    is_organization = models.BooleanField(
        default=False, db_default=False, help_text="A company (its name is `company`) rather than a person."
    )
    company = models.CharField(
        max_length=255,
        blank=True,
        default="",
        db_default="",
        help_text="A company's name; the company a person works for.",
    )
    company_contact = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="people",
        db_index=False,  # a partial index (rows that have one) is declared in Meta
        help_text="The company contact (same tenant) this person works for.",
    )
    contact_category = models.CharField(
        max_length=30, choices=Category.choices, default=Category.HOMEOWNER, db_default=Category.HOMEOWNER
    )
    first_name = models.CharField(max_length=100, blank=True, default="", db_default="")
    last_name = models.CharField(max_length=100, blank=True, default="", db_default="")
    email = models.EmailField(max_length=255, null=True, blank=True)  # noqa: DJ001
    phone = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001
    mobile_phone = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001
    website = models.URLField(max_length=500, null=True, blank=True)  # noqa: DJ001
    address_street = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    address_city = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    address_state = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001
    address_zip = models.CharField(max_length=20, null=True, blank=True)  # noqa: DJ001
    latitude = models.DecimalField(
        max_digits=10,
        decimal_places=8,
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.DecimalField(
        max_digits=11,
        decimal_places=8,
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )
    type = models.CharField(max_length=20, choices=Type.choices, default=Type.LEAD, db_default=Type.LEAD)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.NEW, db_default=Stage.NEW)
    source = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    source_details = JSONDocumentField(default=dict, db_default={}, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="assigned_contacts"
    )
    property_type = models.CharField(max_length=50, null=True, blank=True)  # noqa: DJ001
    roof_type = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    roof_age = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Years.")
    last_inspection_date = models.DateField(null=True, blank=True)
    property_value = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    square_footage = models.PositiveIntegerField(null=True, blank=True)
    stories = models.PositiveSmallIntegerField(null=True, blank=True)
    insurance_carrier = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    policy_number = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    claim_number = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    deductible = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(0)]
    )
    lead_score = models.IntegerField(
        default=0, db_default=0, help_text="Any whole number, as the old system kept it (no fixed range)."
    )
    priority = models.CharField(
        max_length=10, choices=Priority.choices, default=Priority.NORMAL, db_default=Priority.NORMAL
    )
    custom_fields = JSONDocumentField(default=dict, db_default={}, blank=True)
    tags = ArrayField(models.TextField(), default=list, db_default=[], blank=True)
    notes = models.TextField(null=True, blank=True)  # noqa: DJ001
    quickbooks_customer_id = models.CharField(  # noqa: DJ001
        max_length=100, null=True, blank=True, verbose_name="QuickBooks customer id"
    )
    proline_id = models.CharField(max_length=100, null=True, blank=True, verbose_name="ProLine id")  # noqa: DJ001
    timezone = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        validators=[validate_timezone],
        help_text="IANA time zone (e.g. America/Denver); empty: the tenant's.",
    )
    # Consent. A flag turned on without its date is dated by the services (contacts.services).
    sms_opt_in = models.BooleanField("SMS opt-in", default=False, db_default=False)
    sms_opt_in_date = models.DateTimeField("SMS opt-in date", null=True, blank=True)
    sms_opt_out = models.BooleanField("SMS opt-out", default=False, db_default=False)
    sms_opt_out_date = models.DateTimeField("SMS opt-out date", null=True, blank=True)
    sms_opt_out_reason = models.TextField("SMS opt-out reason", null=True, blank=True)  # noqa: DJ001
    email_opt_out = models.BooleanField(default=False, db_default=False)
    email_opt_out_date = models.DateTimeField(null=True, blank=True)
    email_opt_out_reason = models.TextField(null=True, blank=True)  # noqa: DJ001
    email_invalid = models.BooleanField(default=False, db_default=False, help_text="Mail to it bounces.")
    email_invalid_date = models.DateTimeField(null=True, blank=True)
    email_invalid_reason = models.TextField(null=True, blank=True)  # noqa: DJ001
    substatus = models.ForeignKey(
        "substatus.SubstatusConfig",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        db_index=False,  # contacts_substatus_since_idx leads with it
        related_name="contacts",
        help_text="The step within the stage; the database gives the stage's default when none is named.",
    )
    substatus_since = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When it entered its substatus (kept by the database)."
    )
    search = models.GeneratedField(
        expression=SearchVector(
            "first_name",
            "last_name",
            "company",
            regexp_replace("email", "[[:punct:]]+", " "),
            regexp_replace("phone", "[^0-9]+", " "),
            regexp_replace("phone", "[^0-9]+", ""),
            regexp_replace("mobile_phone", "[^0-9]+", " "),
            regexp_replace("mobile_phone", "[^0-9]+", ""),
            regexp_replace(regexp_replace("website", "^[[:alpha:]]+://(www[.])?", ""), "[[:punct:]]+", " "),
            config="simple",
        ),
        output_field=SearchVectorField(),
        db_persist=True,
        help_text=(
            "Full-text search over names, the company, the words of the email and of the website (without "
            "its scheme and www) and the digits of the phones, grouped as written and run together (query "
            "it with crm.search.prefix_search_query)."
        ),
    )

    class Meta:
        db_table = "contacts"
        ordering = ["-created_at", "-id"]
        constraints = [
            choices_check("type", ContactType, "contacts_type_valid"),
            choices_check("stage", ContactStage, "contacts_stage_valid"),
            choices_check("priority", ContactPriority, "contacts_priority_valid"),
            *non_negative_check(["property_value", "deductible"], "contacts"),
            models.CheckConstraint(condition=Q(latitude__gte=-90, latitude__lte=90), name="contacts_latitude_range"),
            models.CheckConstraint(
                condition=Q(longitude__gte=-180, longitude__lte=180), name="contacts_longitude_range"
            ),
            choices_check("contact_category", ContactCategory, "contacts_contact_category_valid"),
            # People only: a company may share its email with a person (its owner, say).
            models.UniqueConstraint(
                Lower("email"),
                "tenant",
                condition=Q(is_deleted=False) & Q(is_organization=False) & Q(email__isnull=False) & ~Q(email=""),
                name="contacts_email_unique_per_tenant",
                violation_error_message="Another person of this tenant has this email.",
            ),
            models.CheckConstraint(
                condition=Q(is_organization=False) | Q(company_contact__isnull=True),
                name="contacts_company_has_no_company_contact",
                violation_error_message="A company cannot work for another company contact.",
            ),
        ]
        indexes = [
            models.Index(
                "tenant",
                models.F("created_at").desc(),
                models.F("id").desc(),
                condition=Q(is_deleted=False),
                name="contacts_tenant_recent_idx",
            ),
            models.Index(fields=["tenant", "stage"], name="contacts_tenant_stage_idx"),
            # The list's COUNT(*) reads this small index, a tenth of the size of the one above.
            models.Index(fields=["tenant"], condition=Q(is_deleted=False), name="contacts_tenant_alive_idx"),
            models.Index(fields=["substatus", "substatus_since"], name="contacts_substatus_since_idx"),
            # The substatus analytics count the live contacts per stage and substatus from it.
            models.Index(
                fields=["tenant", "stage", "substatus"],
                condition=Q(is_deleted=False),
                name="contacts_alive_substatus_idx",
            ),
            GinIndex(fields=["tags"], name="contacts_tags_gin"),
            GinIndex(fields=["search"], name="contacts_search_gin"),
            models.Index(
                "tenant",
                models.F("created_at").desc(),
                models.F("id").desc(),
                condition=Q(is_organization=True, is_deleted=False),
                name="contacts_tenant_companies_idx",
            ),
            models.Index(fields=["tenant", "contact_category"], name="contacts_tenant_category_idx"),
            models.Index(
                fields=["company_contact"],
                condition=Q(company_contact__isnull=False),
                name="contacts_company_contact_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        name = self.company if self.is_organization else f"{self.first_name} {self.last_name}".strip()
        return name or self.email or f"Contact #{self.pk}"


class MergedOrganization(models.Model):
    """Where a legacy organization went in the organizations merge, with what did not fit a contact.

    Written once by the merge migration (contacts 0006) and kept for good: the company contact's
    `contact_category`, `type` and `stage` are mapped from the organization's `org_type` and
    `stage`, which are kept here as they were (NULL included).
    """

    organization_id = models.BigIntegerField(primary_key=True, help_text="The legacy organization's id.")
    tenant = models.ForeignKey("crm.Tenant", on_delete=models.PROTECT, related_name="+")
    contact = models.OneToOneField(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="merged_organization",
        help_text="The company contact it became (empty once that contact is purged).",
    )
    org_type = models.CharField(max_length=20, null=True, blank=True)  # noqa: DJ001
    stage = models.CharField(max_length=20, null=True, blank=True)  # noqa: DJ001
    merged_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "merged_organizations"
        ordering = ["organization_id"]

    def __str__(self) -> str:
        return f"organization {self.organization_id} -> contact {self.contact_id}"
