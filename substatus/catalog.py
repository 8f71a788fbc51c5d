"""The substatuses every new tenant starts with (its staff change them afterwards).

One default under every contact stage and project status. Won, lost and cancelled are the
end of the road (terminal), as is an issued warranty.
"""

from typing import NamedTuple

from contacts.models import ContactStage
from crm.models import ProjectStatus
from substatus.models import Entity


class CatalogEntry(NamedTuple):
    entity: str
    status: str
    key: str
    label: str
    is_default: bool = False
    is_terminal: bool = False


C, P = Entity.CONTACT, Entity.PROJECT

DEFAULT_CATALOG: list[CatalogEntry] = [
    CatalogEntry(C, ContactStage.NEW, "uncontacted", "Uncontacted", is_default=True),
    CatalogEntry(C, ContactStage.NEW, "attempting_contact", "Attempting contact"),
    CatalogEntry(C, ContactStage.CONTACTED, "follow_up_needed", "Follow-up needed", is_default=True),
    CatalogEntry(C, ContactStage.CONTACTED, "call_scheduled", "Call scheduled"),
    CatalogEntry(C, ContactStage.QUALIFIED, "decision_maker_identified", "Decision maker identified", is_default=True),
    CatalogEntry(C, ContactStage.QUALIFIED, "budget_approved", "Budget approved"),
    CatalogEntry(C, ContactStage.QUALIFIED, "timeline_confirmed", "Timeline confirmed"),
    CatalogEntry(C, ContactStage.PROPOSAL, "estimate_sent", "Estimate sent", is_default=True),
    CatalogEntry(C, ContactStage.PROPOSAL, "negotiating", "Negotiating"),
    CatalogEntry(C, ContactStage.PROPOSAL, "verbal_agreement", "Verbal agreement"),
    CatalogEntry(C, ContactStage.NEGOTIATION, "price_discussion", "Discussing price", is_default=True),
    CatalogEntry(C, ContactStage.NEGOTIATION, "insurance_review", "Waiting on insurance"),
    CatalogEntry(C, ContactStage.NEGOTIATION, "contract_sent", "Contract sent"),
    CatalogEntry(C, ContactStage.WON, "contract_signed", "Contract signed", is_default=True, is_terminal=True),
    CatalogEntry(C, ContactStage.WON, "handed_to_production", "Handed to production", is_terminal=True),
    CatalogEntry(C, ContactStage.LOST, "no_reason_given", "No reason given", is_default=True, is_terminal=True),
    CatalogEntry(C, ContactStage.LOST, "price", "Price", is_terminal=True),
    CatalogEntry(C, ContactStage.LOST, "went_with_competitor", "Went with a competitor", is_terminal=True),
    CatalogEntry(C, ContactStage.LOST, "no_response", "No response", is_terminal=True),
    CatalogEntry(C, ContactStage.LOST, "insurance_denied", "Insurance denied", is_terminal=True),
    CatalogEntry(P, ProjectStatus.ESTIMATE, "site_visit_pending", "Site visit pending", is_default=True),
    CatalogEntry(P, ProjectStatus.ESTIMATE, "measurements_taken", "Measurements taken"),
    CatalogEntry(P, ProjectStatus.ESTIMATE, "quote_prepared", "Quote prepared"),
    CatalogEntry(P, ProjectStatus.APPROVED, "contract_signed", "Contract signed", is_default=True),
    CatalogEntry(P, ProjectStatus.APPROVED, "deposit_received", "Deposit received"),
    CatalogEntry(P, ProjectStatus.APPROVED, "materials_ordered", "Materials ordered"),
    CatalogEntry(P, ProjectStatus.SCHEDULED, "crew_assigned", "Crew assigned", is_default=True),
    CatalogEntry(P, ProjectStatus.SCHEDULED, "permits_obtained", "Permits obtained"),
    CatalogEntry(P, ProjectStatus.IN_PROGRESS, "tear_off", "Tear-off", is_default=True),
    CatalogEntry(P, ProjectStatus.IN_PROGRESS, "installation", "Installation"),
    CatalogEntry(P, ProjectStatus.IN_PROGRESS, "final_inspection", "Final inspection"),
    CatalogEntry(P, ProjectStatus.COMPLETED, "final_payment_received", "Final payment received", is_default=True),
    CatalogEntry(P, ProjectStatus.COMPLETED, "warranty_issued", "Warranty issued", is_terminal=True),
    CatalogEntry(
        P, ProjectStatus.CANCELLED, "customer_cancelled", "Customer cancelled", is_default=True, is_terminal=True
    ),
    CatalogEntry(P, ProjectStatus.CANCELLED, "insurance_denied", "Insurance denied", is_terminal=True),
    CatalogEntry(P, ProjectStatus.CANCELLED, "went_with_competitor", "Went with a competitor", is_terminal=True),
    CatalogEntry(P, ProjectStatus.CANCELLED, "duplicate", "Duplicate job", is_terminal=True),
]

# One color per stage or status, so a board reads at a glance.
STATUS_COLORS: dict[tuple[str, str], str] = {
    (C, ContactStage.NEW): "#64748b",
    (C, ContactStage.CONTACTED): "#0ea5e9",
    (C, ContactStage.QUALIFIED): "#6366f1",
    (C, ContactStage.PROPOSAL): "#8b5cf6",
    (C, ContactStage.NEGOTIATION): "#f59e0b",
    (C, ContactStage.WON): "#16a34a",
    (C, ContactStage.LOST): "#dc2626",
    (P, ProjectStatus.ESTIMATE): "#64748b",
    (P, ProjectStatus.APPROVED): "#0ea5e9",
    (P, ProjectStatus.SCHEDULED): "#6366f1",
    (P, ProjectStatus.IN_PROGRESS): "#f59e0b",
    (P, ProjectStatus.COMPLETED): "#16a34a",
    (P, ProjectStatus.CANCELLED): "#dc2626",
}
