"""What every tenant starts with: the old system's filter catalog and its three saved filters,
plus what a roofing office filters on daily.

`filters/sql.py` turns these into the SQL functions the tenants trigger calls (migration 0002
holds a frozen copy); tests prove a new tenant gets exactly these.
"""

from typing import Any, NamedTuple

from django.db import models

from contacts.models import ContactCategory, ContactStage, ContactType
from crm.models import ActivityType, ProjectStatus, ProjectType
from filters.models import EntityType, FieldType


class DefaultField(NamedTuple):
    entity_type: str
    field_name: str
    field_label: str
    field_type: str
    filter_operator: str
    filter_options: list[dict[str, Any]]
    is_quick_filter: bool = False


class DefaultSavedFilter(NamedTuple):
    entity_type: str
    name: str
    description: str
    filter_criteria: dict[str, Any]


def _options(*values: tuple[str, str, str | None]) -> list[dict[str, Any]]:
    return [{"value": value, "label": label, "color": color} for value, label, color in values]


def _labelled(
    choices: type[models.TextChoices], colors: dict[str, str] | None = None, leave_out: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    return [
        {"value": value, "label": label, "color": (colors or {}).get(value)}
        for value, label in choices.choices
        if value not in leave_out
    ]


NOTICES = (ActivityType.NOTICE.value,)
C, P, A = EntityType.CONTACTS, EntityType.PROJECTS, EntityType.ACTIVITIES

STAGE_OPTIONS = _options(
    (ContactStage.NEW, "New", "blue"),
    (ContactStage.CONTACTED, "Contacted", "cyan"),
    (ContactStage.QUALIFIED, "Qualified", "green"),
    (ContactStage.PROPOSAL, "Proposal", "yellow"),
    (ContactStage.NEGOTIATION, "Negotiation", None),
    (ContactStage.WON, "Won", "emerald"),
    (ContactStage.LOST, "Lost", "red"),
)
STATUS_OPTIONS = _options(
    (ProjectStatus.ESTIMATE, "Estimate", "gray"),
    (ProjectStatus.APPROVED, "Approved", "blue"),
    (ProjectStatus.SCHEDULED, "Scheduled", "purple"),
    (ProjectStatus.IN_PROGRESS, "In progress", "yellow"),
    (ProjectStatus.COMPLETED, "Completed", "green"),
    (ProjectStatus.CANCELLED, "Cancelled", "red"),
)
PROJECT_TYPE_OPTIONS = _options(
    (ProjectType.REPAIR, "Repair", None),
    (ProjectType.REPLACEMENT, "Replacement", None),
    (ProjectType.MAINTENANCE, "Maintenance", None),
    (ProjectType.EMERGENCY, "Emergency", None),
)


def _project_fields(entity_type: str) -> list[DefaultField]:
    return [
        DefaultField(entity_type, "status", "Status", FieldType.MULTI_SELECT, "in", STATUS_OPTIONS, True),
        DefaultField(entity_type, "type", "Type", FieldType.SELECT, "equals", PROJECT_TYPE_OPTIONS),
        DefaultField(entity_type, "estimated_value", "Estimated value", FieldType.NUMBER_RANGE, "between", []),
        DefaultField(entity_type, "substatus", "Substatus", FieldType.MULTI_SELECT, "in", []),
        DefaultField(entity_type, "scheduled_start", "Scheduled start", FieldType.DATE_RANGE, "between", []),
    ]


DEFAULT_CATALOG: list[DefaultField] = [
    DefaultField(C, "stage", "Stage", FieldType.MULTI_SELECT, "in", STAGE_OPTIONS, True),
    DefaultField(C, "assigned_to", "Assigned to", FieldType.USER_SELECT, "equals", [], True),
    DefaultField(
        C,
        "source",
        "Source",
        FieldType.SELECT,
        "equals",
        _options(
            ("website", "Website", None),
            ("referral", "Referral", None),
            ("door-knock", "Door knock", None),
            ("social-media", "Social media", None),
            ("advertisement", "Advertisement", None),
        ),
    ),
    DefaultField(C, "lead_score", "Lead score", FieldType.NUMBER_RANGE, "between", []),
    DefaultField(
        C,
        "priority",
        "Priority",
        FieldType.SELECT,
        "equals",
        _options(
            ("low", "Low", "gray"),
            ("normal", "Normal", "blue"),
            ("high", "High", "orange"),
            ("urgent", "Urgent", "red"),
        ),
    ),
    DefaultField(C, "created_at", "Created", FieldType.DATE_RANGE, "between", []),
    DefaultField(C, "type", "Type", FieldType.SELECT, "equals", _labelled(ContactType)),
    DefaultField(C, "substatus", "Substatus", FieldType.MULTI_SELECT, "in", []),
    DefaultField(C, "contact_category", "Category", FieldType.SELECT, "equals", _labelled(ContactCategory)),
    DefaultField(C, "is_organization", "Company", FieldType.BOOLEAN, "equals", []),
    DefaultField(C, "tags", "Tags", FieldType.TAG_SELECT, "any_of", []),
    DefaultField(C, "address_city", "City", FieldType.TEXT, "contains", []),
    DefaultField(C, "insurance_carrier", "Insurance carrier", FieldType.TEXT, "contains", []),
    *_project_fields(P),
    *_project_fields(EntityType.PIPELINE),
    # A notice is one member's own (crm 0014), not a type the team filters by: the defaults that
    # filters 0002's SQL gives every tenant list the seven others.
    DefaultField(A, "type", "Type", FieldType.MULTI_SELECT, "in", _labelled(ActivityType, leave_out=NOTICES), True),
    DefaultField(A, "created_at", "Date", FieldType.DATE_RANGE, "between", []),
    DefaultField(A, "performed_by", "Performed by", FieldType.USER_SELECT, "equals", []),
]

DEFAULT_SAVED_FILTERS: list[DefaultSavedFilter] = [
    DefaultSavedFilter(
        C,
        "My Active Leads",
        "Open leads assigned to you.",
        {
            "and": [
                {
                    "field": "stage",
                    "op": "in",
                    "value": [ContactStage.NEW, ContactStage.CONTACTED, ContactStage.QUALIFIED, ContactStage.PROPOSAL],
                },
                {"field": "assigned_to", "op": "equals", "value": "me"},
            ]
        },
    ),
    DefaultSavedFilter(
        C,
        "Hot Leads (Score > 70)",
        "High-scoring leads still open.",
        {
            "and": [
                {"field": "lead_score", "op": "greater_than", "value": 70},
                {"field": "stage", "op": "not_in", "value": [ContactStage.WON, ContactStage.LOST]},
            ]
        },
    ),
    DefaultSavedFilter(
        P,
        "Projects In Progress",
        "Jobs approved, scheduled or under way.",
        {
            "and": [
                {
                    "field": "status",
                    "op": "in",
                    "value": [ProjectStatus.APPROVED, ProjectStatus.SCHEDULED, ProjectStatus.IN_PROGRESS],
                }
            ]
        },
    ),
]
