from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

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
from crm.search import prefix_search_query

RECORD_FIELDS = ("created_by", "updated_by", "created_at", "updated_at", "is_deleted")


@admin.register(Contact)
class ContactAdmin(SoftDeleteAdmin):
    list_display = ["display_name", "email", "phone", "stage", "type", "priority", "assigned_to", "address_city"]
    list_filter = ["stage", "type", "priority", ("assigned_to", admin.RelatedOnlyFieldListFilter), "source"]
    list_select_related = ["assigned_to"]
    search_fields = ["first_name", "last_name", "email", "phone"]
    search_help_text = "Words or word beginnings in the name, email or phone."
    autocomplete_fields = ["assigned_to"]
    readonly_fields = RECORD_FIELDS
    date_hierarchy = "created_at"
    fieldsets = [
        (None, {"fields": ["tenant", "first_name", "last_name", "email", "phone", "mobile_phone"]}),
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
        ("Other", {"fields": ["tags", "custom_fields"]}),
        ("Record", {"fields": RECORD_FIELDS}),
    ]

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        """Full-text prefix search on the indexed `search` column, not a scan with ILIKE."""
        query = prefix_search_query(search_term)
        if query is None:
            return queryset, False
        return queryset.filter(search=query), False

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
