from typing import Any

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from contacts.models import Contact
from contacts.services import (
    contact_create,
    contact_delete,
    contact_purge,
    contact_restore,
    contact_update,
)
from crm.actor import Actor
from crm.admin_base import SoftDeleteAdmin
from crm.models import Project
from crm.search import prefix_search_query

RECORD_FIELDS = ("created_by", "updated_by", "created_at", "updated_at", "is_deleted")
LISTED = 20  # rows a company's page lists before linking to the full list


class KindListFilter(admin.SimpleListFilter):
    title = "kind"
    parameter_name = "is_organization"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("1", "Companies"), ("0", "People")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() in ("0", "1"):
            return queryset.filter(is_organization=self.value() == "1")
        return queryset


def linked_list(rows: list[Any], total: int, more_url: str) -> SafeString:
    """Links to the first rows' change pages, and to the full list when there are more."""
    if not rows:
        return format_html("<span>{}</span>", "None")
    links = (
        (reverse(f"admin:{row._meta.app_label}_{row._meta.model_name}_change", args=[row.pk]), row) for row in rows
    )
    items = format_html_join("", '<li><a href="{}">{}</a></li>', links)
    more = format_html('<li><a href="{}">All {}</a></li>', more_url, total) if total > len(rows) else ""
    return format_html("<ul>{}{}</ul>", items, more)


@admin.register(Contact)
class ContactAdmin(SoftDeleteAdmin):
    list_display = [
        "display_name",
        "is_organization",
        "contact_category",
        "email",
        "phone",
        "stage",
        "type",
        "priority",
        "assigned_to",
        "address_city",
    ]
    list_filter = [
        KindListFilter,
        "contact_category",
        "stage",
        "type",
        "priority",
        ("assigned_to", admin.RelatedOnlyFieldListFilter),
        "source",
        "sms_opt_in",
        "sms_opt_out",
        "email_opt_out",
        "email_invalid",
    ]
    list_select_related = ["assigned_to"]
    search_fields = ["first_name", "last_name", "company", "email", "phone"]
    search_help_text = "Words or word beginnings in the name, company, email, phone or website."
    autocomplete_fields = ["assigned_to", "company_contact"]
    readonly_fields = [*RECORD_FIELDS, "people", "projects"]
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["tenant", "first_name", "last_name", "email", "phone", "mobile_phone"]}),
        (
            "Company",
            {"fields": ["is_organization", "company", "company_contact", "contact_category", "website", "notes"]},
        ),
        (
            "Pipeline",
            {"fields": ["type", "stage", "priority", "lead_score", "assigned_to", "source", "source_details"]},
        ),
        (
            "Property",
            {
                "fields": [
                    "address_street",
                    "address_city",
                    "address_state",
                    "address_zip",
                    "latitude",
                    "longitude",
                    "property_type",
                    "property_value",
                    "square_footage",
                    "stories",
                    "roof_type",
                    "roof_age",
                    "last_inspection_date",
                ]
            },
        ),
        ("Insurance", {"fields": ["insurance_carrier", "policy_number", "claim_number", "deductible"]}),
        (
            "Consent",
            {
                "fields": [
                    ("sms_opt_in", "sms_opt_in_date"),
                    ("sms_opt_out", "sms_opt_out_date"),
                    "sms_opt_out_reason",
                    ("email_opt_out", "email_opt_out_date"),
                    "email_opt_out_reason",
                    ("email_invalid", "email_invalid_date"),
                    "email_invalid_reason",
                ],
                "description": "A flag turned on without its date is dated now.",
            },
        ),
        ("Other", {"fields": ["timezone", "tags", "custom_fields", "quickbooks_customer_id", "proline_id"]}),
        ("Record", {"fields": RECORD_FIELDS}),
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Contact | None = None) -> list[Any]:
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and obj.is_organization:
            fieldsets.insert(2, ("People and projects", {"fields": ["people", "projects"]}))
        return fieldsets

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Full-text prefix search on the indexed `search` column, not a scan with ILIKE.

        The company_contact autocomplete offers company contacts only.
        """
        if request.GET.get("field_name") == "company_contact":
            queryset = queryset.filter(is_organization=True)
        query = prefix_search_query(search_term)
        if query is None:
            return queryset, False
        return queryset.filter(search=query), False

    @admin.display(description="People who work here")
    def people(self, obj: Contact) -> SafeString:
        people = Contact.objects.filter(company_contact=obj).order_by("last_name", "first_name", "pk")
        more = reverse("admin:contacts_contact_changelist") + "?" + urlencode({"company_contact": obj.pk})
        return linked_list(list(people[:LISTED]), people.count(), more)

    @admin.display(description="Projects (as their contact or a party)")
    def projects(self, obj: Contact) -> SafeString:
        projects = (
            Project.objects.filter(Q(contact=obj) | Q(pk__in=obj.project_parts.values("project_id")))
            .alive()
            .order_by("-created_at", "-pk")
        )
        more = reverse("admin:crm_project_changelist") + "?" + urlencode({"contact_or_party": obj.pk})
        return linked_list(list(projects[:LISTED]), projects.count(), more)

    def service_create(self, actor: Actor, fields: dict[str, Any]) -> Contact:
        return contact_create(actor=actor, **fields)

    def service_update(self, obj: Contact, actor: Actor, fields: dict[str, Any]) -> Contact:
        return contact_update(contact=obj, actor=actor, **fields)

    def soft_delete(self, obj: Contact, actor: Actor) -> None:
        contact_delete(contact=obj, actor=actor)

    def restore_row(self, obj: Contact, actor: Actor) -> None:
        contact_restore(contact=obj, actor=actor)

    def purge(self, obj: Contact, actor: Actor) -> None:
        contact_purge(contact=obj, actor=actor)
