"""The demo's contacts that only Ridgeline has: each insured job's adjuster, and the gutter jobs'
sub-contractor, as parties of the jobs (a `crm.demo` step)."""

from django.db.models import Count

from contacts.models import Contact
from contacts.services import contact_create
from crm.actor import Actor
from crm.demo import DemoStep, demo_register
from crm.demo.rehearsal import GUTTER_COMPANY
from crm.models import Project, ProjectContact, Tenant
from crm.services import project_contact_add

# Each carrier's adjuster (the carriers of the legacy demo's homeowners).
ADJUSTERS = {
    "State Farm": ("Karen", "Mills"),
    "Allstate": ("Derek", "Hanson"),
    "USAA": ("Rosa", "Delgado"),
    "Farmers": ("Tom", "Becker"),
    "American Family": ("Linda", "Okafor"),
    "Liberty Mutual": ("Greg", "Sato"),
    "Travelers": ("Nina", "Petrov"),
    "Nationwide": ("Owen", "Brady"),
    "Auto-Owners": ("Carla", "Reyes"),
}
ROLES = ("adjuster", "sub_contractor")


def parties_present(tenant: Tenant) -> bool:
    return ProjectContact.objects.filter(tenant=tenant, role__in=ROLES).exists()


def parties_build(actor: Actor) -> str:
    """Each insured job gets its carrier's adjuster; each gutter job (a child project) the gutter company."""
    tenant = actor.tenant
    insured = (
        Project.objects.alive()
        .filter(tenant=tenant, insurance_approved=True, contact__insurance_carrier__isnull=False)
        .select_related("contact")
        .order_by("pk")
    )
    adjusters: dict[str, Contact] = {}
    for project in insured:
        carrier = project.contact.insurance_carrier
        if carrier not in adjusters:
            first, last = ADJUSTERS[carrier]
            slug = "".join(ch for ch in carrier.lower() if ch.isalnum())
            adjusters[carrier] = contact_create(
                actor=actor,
                first_name=first,
                last_name=last,
                company=carrier,
                contact_category=Contact.Category.ADJUSTER,
                email=f"{first}.{last}@{slug}.example".lower(),
                phone=f"(800) 555-01{len(adjusters):02d}",
            )
        project_contact_add(actor=actor, project=project, contact=adjusters[carrier], role="adjuster")
    gutters = Contact.objects.get(tenant=tenant, is_organization=True, company=GUTTER_COMPANY)
    for project in Project.objects.filter(tenant=tenant, parent_project__isnull=False).order_by("pk"):
        project_contact_add(actor=actor, project=project, contact=gutters, role="sub_contractor")
    parties = ProjectContact.objects.filter(tenant=tenant, role__in=ROLES).order_by("role").values_list("role")
    counts = ", ".join(f"{n} {role}" for role, n in parties.annotate(n=Count("pk")))
    return f"{len(adjusters)} adjusters (contacts); project parties: {counts}"


demo_register(DemoStep(name="contacts.parties", build=parties_build, present=parties_present))
