"""The demo's legacy rehearsal: Summit Roofing as the old system held it, then upgraded by `migrate`.

On a database without tenants, `rehearse()` takes the schema to the old system's
(`LEGACY_STATE`, what `adopt_database` takes over: migrating forward, or back when it was
already migrated), writes the tenant there as the old application did, with the historical
models of that state (staff, contacts, legacy organizations with their NULL `is_deleted` and
project links, jobs, activities), then runs `migrate`, the organizations merge included.
What only Ridgeline has and ops set after an upgrade (the tenant's time zone) is set through
the services last. The apps' demo steps (crm/demo/__init__.py) add their rows after this.

Deterministic: one seeded Faker drives every choice, so every machine gets the same people
and jobs; only the dates move with today, so scheduled jobs stay in the future.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import OutputWrapper
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone
from faker import Faker

from contacts.models import Contact, MergedOrganization
from crm.actor import Actor, Source
from crm.demo import (
    DEMO_PASSWORD,
    EMAIL_DOMAIN,
    OPS_EMAIL,
    OPS_USERNAME,
    STAFF,
    TENANT_NAME,
    TENANT_SUBDOMAIN,
    TENANT_TIMEZONE,
    staff_username,
)
from crm.legacy import LEGACY_STATE, LegacyRows, migrate_to
from crm.models import Activity, Project, ProjectContact, Role, Tenant, User
from crm.services import tenant_update

Row = Any  # a row of a historical model (the old system's schema)

SEED = 20240730
OFFICE_PHONE = "(303) 555-0100"
DENVER = ZoneInfo(TENANT_TIMEZONE)

# Exact counts, so that every value is present and the totals are what the README says.
CONTACT_STAGES = {"new": 30, "contacted": 28, "qualified": 24, "proposal": 18, "negotiation": 12, "won": 62, "lost": 26}
PROJECT_STATUSES = {"estimate": 12, "approved": 7, "scheduled": 8, "in_progress": 6, "completed": 18, "cancelled": 7}
PROJECT_TYPES = {"replacement": 27, "repair": 16, "maintenance": 7, "emergency": 8}
ACTIVITY_TYPES = {"call": 85, "email": 55, "sms": 45, "meeting": 30, "note": 35, "task": 25, "door_knock": 25}
DELETED_CONTACTS = 6
DELETED_PROJECTS = 2

# city, zip codes, telephone area code, latitude, longitude, weight
CITIES = [
    ("Denver", ["80203", "80205", "80210", "80219", "80224", "80237"], "303", 39.7392, -104.9903, 14),
    ("Aurora", ["80012", "80013", "80015", "80016"], "720", 39.7294, -104.8319, 12),
    ("Lakewood", ["80226", "80227", "80228"], "303", 39.7047, -105.0814, 6),
    ("Littleton", ["80120", "80122", "80123", "80127"], "303", 39.6133, -105.0166, 6),
    ("Centennial", ["80112", "80121", "80122"], "720", 39.5807, -104.8772, 7),
    ("Highlands Ranch", ["80126", "80129", "80130"], "303", 39.5539, -104.9690, 6),
    ("Parker", ["80134", "80138"], "720", 39.5186, -104.7614, 5),
    ("Castle Rock", ["80104", "80108", "80109"], "303", 39.3722, -104.8561, 4),
    ("Arvada", ["80002", "80003", "80004", "80005"], "303", 39.8028, -105.0875, 5),
    ("Westminster", ["80020", "80021", "80031"], "303", 39.8367, -105.0372, 4),
    ("Thornton", ["80229", "80233", "80241"], "720", 39.8680, -104.9719, 4),
    ("Broomfield", ["80020", "80023"], "720", 39.9205, -105.0867, 3),
    ("Boulder", ["80301", "80303", "80304", "80305"], "303", 40.0150, -105.2705, 4),
    ("Longmont", ["80501", "80503", "80504"], "303", 40.1672, -105.1019, 3),
    ("Golden", ["80401", "80403"], "303", 39.7555, -105.2211, 2),
    ("Colorado Springs", ["80903", "80906", "80918", "80920", "80922"], "719", 38.8339, -104.8214, 6),
    ("Fort Collins", ["80521", "80524", "80525", "80526"], "970", 40.5853, -105.0844, 4),
    ("Loveland", ["80537", "80538"], "970", 40.3978, -105.0750, 2),
    ("Greeley", ["80631", "80634"], "970", 40.4233, -104.7091, 2),
    ("Pueblo", ["81001", "81005", "81008"], "719", 38.2544, -104.6091, 1),
]
# fmt: off
STREET_NAMES = [
    "Aspen", "Columbine", "Ponderosa", "Blue Spruce", "Elk Ridge", "Mesa", "Cherry Creek", "Larkspur",
    "Yarrow", "Kipling", "Wadsworth", "Quebec", "Holly", "Monaco", "Dahlia", "Garfield", "Pikes Peak",
    "Sage", "Timberline", "Cimarron", "Evergreen", "Juniper", "Arapahoe", "Dry Creek", "Bear Creek",
    "Clear Creek", "Mountain View", "Prairie", "Red Hawk", "Lookout", "Fox Hollow", "Willow",
]
# fmt: on
STREET_SUFFIXES = ["St", "Ave", "Dr", "Ct", "Way", "Ln", "Pl", "Cir", "Trl", "Rd"]
STREET_DIRECTIONS = ["", "", "", "S ", "E ", "W ", "N "]

# source label, weight
LEAD_SOURCES = [
    ("Door knock", 22),
    ("Storm canvass", 20),
    ("Referral", 18),
    ("Google Ads", 14),
    ("HomeAdvisor", 10),
    ("Website", 8),
    ("Yard sign", 5),
    ("Facebook", 3),
]
STORMS = {
    "hail-2024": {"event": "2024-07-30 hail, Aurora and Centennial", "hail_size_in": 1.75},
    "hail-2023": {"event": "2023-05-12 hail, Littleton and Highlands Ranch", "hail_size_in": 1.5},
    "wind-2024": {"event": "2024-01-08 wind storm, Boulder County", "gusts_mph": 90},
}
ORGANIZATION_TAGS = ["commercial", "referral-partner", "multi-property", "net-30"]
EXTRA_TAGS = ["gutters", "skylights", "solar", "hoa", "warranty", "repeat-customer", "financing", "chimney"]
# carrier, policy number pattern, claim number pattern (Faker bothify: # digit, ? letter)
CARRIERS = [
    ("State Farm", "##-??-####-#", "##-####-###"),
    ("Allstate", "#########", "0#########"),
    ("USAA", "#######-##-###", "###-####-##"),
    ("Farmers", "#########", "####-######"),
    ("American Family", "##-???-######", "00-###-######"),
    ("Liberty Mutual", "H3?-###-######-###", "LM-#######"),
    ("Travelers", "###-?????-###", "?#?####"),
    ("Nationwide", "##-##-?-######", "###-###-###"),
    ("Auto-Owners", "##-###-###-##", "###-######-####"),
]
RESIDENTIAL_ROOFS = [
    ("architectural_shingle", 40),
    ("asphalt_shingle", 25),
    ("impact_resistant_shingle", 12),
    ("concrete_tile", 7),
    ("metal_standing_seam", 6),
    ("cedar_shake", 5),
    ("stone_coated_steel", 5),
]
COMMERCIAL_ROOFS = [("tpo", 3), ("epdm", 2), ("modified_bitumen", 1)]
PROPERTY_TYPES = [("single_family", 78), ("townhome", 10), ("duplex", 5), ("multi_family", 4), ("commercial", 3)]
LEAD_SCORES = {
    "new": (5, 40),
    "contacted": (15, 55),
    "qualified": (40, 75),
    "proposal": (55, 85),
    "negotiation": (65, 95),
    "won": (80, 100),
    "lost": (0, 30),
}
TYPE_FOR_STAGE = {
    "new": "lead",
    "contacted": "lead",
    "qualified": "prospect",
    "proposal": "prospect",
    "negotiation": "prospect",
    "won": "customer",
}
# Which contacts a job of each status belongs to.
STAGES_FOR_STATUS = {
    "estimate": ["qualified", "proposal", "negotiation"],
    "approved": ["won"],
    "scheduled": ["won"],
    "in_progress": ["won"],
    "completed": ["won"],
    "cancelled": ["lost", "negotiation"],
}
# estimated value range in dollars, working days
JOB_SIZES = {
    "replacement": ((11_500, 38_000), (1, 3)),
    "repair": ((450, 4_800), (1, 1)),
    "maintenance": ((250, 1_200), (1, 1)),
    "emergency": ((900, 6_500), (1, 2)),
}
JOB_LABELS = {
    "replacement": "roof replacement",
    "repair": "roof repair",
    "maintenance": "roof maintenance",
    "emergency": "emergency leak repair",
}
CREWS = ["Crew 1 - Miguel Ortega", "Crew 2 - Sam Becker", "Crew 3 - Luis Navarro", "Gutter crew - Tyler Haas"]
EMAIL_BODIES = {
    "estimate_sent": "Attached is the estimate for your roof. It covers tear-off, underlayment, shingles and cleanup.",
    "inspection_photos": "Here are the photos from today's inspection, with the hail hits circled on each slope.",
    "claim_documents": "The adjuster needs the signed work authorization and the photo report before the meeting.",
    "scheduling": "We can start your installation next week, weather permitting. Does Tuesday or Wednesday work?",
    "invoice": "Your roof is complete. Attached are the final invoice, the lien waiver and the warranty registration.",
    "warranty": "Your workmanship warranty certificate is attached; keep it with your home documents.",
}
MEETING_AGENDAS = {
    "inspection": "Full roof inspection: slopes, flashing, vents, gutters and attic ventilation.",
    "adjuster_meeting": "Meet the insurance adjuster on site and walk every slope with the photo report.",
    "estimate_presentation": "Go through the estimate, shingle colors and financing options.",
    "contract_signing": "Sign the contract and collect the material deposit.",
    "final_walkthrough": "Walk the property after the install; magnet sweep and punch list.",
}
TASK_DETAILS = {
    "send_estimate": "Write up the estimate from the inspection notes and email it.",
    "order_materials": "Order shingles, underlayment and ridge cap from the supplier for delivery the day before.",
    "pull_permit": "Pull the re-roof permit with the city building department.",
    "submit_supplement": "Submit the supplement for code items missing from the adjuster's scope.",
    "collect_deductible": "Collect the deductible before the crew starts.",
}
ORGANIZATION_NOTES = [
    "Manages about 40 rentals on the Front Range; net-30 invoices to the accounting office.",
    "Sends us the roofs of listings that fail inspection.",
    "Board approves any work above $10,000 at its monthly meeting.",
    "Prefers one invoice per property; call the office manager before sending a crew.",
]
CANCEL_REASONS = [
    "Homeowner went with another contractor.",
    "Insurance denied the claim; homeowner postponed.",
    "House sold before the work started.",
    "Homeowner decided to repair instead of replace next year.",
]

# The gutter jobs' sub-contractor (contacts/demo.py): an organization here, a company contact after the merge.
GUTTER_COMPANY = "Rocky Mountain Seamless Gutters"


@dataclass(frozen=True)
class OrganizationSpec:
    name: str
    org_type: str | None
    stage: str | None
    is_deleted: bool | None
    has_primary_contact: bool
    domain: str
    # how each of its projects gets a contact: the org's primary contact, another contact, or none
    project_contacts: tuple[str, ...]


# fmt: off
ORGANIZATIONS = [
    OrganizationSpec("Front Range Property Management", "property_manager", "active", False, True,
                     "frontrangepm.example", ("primary", "none", "other")),
    OrganizationSpec("Cherry Creek Property Services", "property_manager", "active", False, True,
                     "cherrycreekps.example", ("primary", "none")),
    OrganizationSpec("Ponderosa Property Co", "property_manager", None, None, True,
                     "ponderosaproperty.example", ("primary",)),
    OrganizationSpec("Mile High Realty Group", "real_estate", "active", False, True,
                     "milehighrealty.example", ("other",)),
    OrganizationSpec("Colorado Home Partners Realty", "real_estate", "new", False, False,
                     "cohomepartners.example", ("none", "other")),
    OrganizationSpec("Highline Realty", "real_estate", "inactive", True, True,
                     "highlinerealty.example", ("other",)),
    OrganizationSpec("Peak View Homes", "developer", "active", False, True,
                     "peakviewhomes.example", ("none", "primary")),
    OrganizationSpec("Red Rocks Builders", "developer", "inactive", False, True,
                     "redrocksbuilders.example", ("primary",)),
    OrganizationSpec("Bear Creek Builders", "developer", "new", True, False, "bearcreekbuilders.example", ()),
    OrganizationSpec(GUTTER_COMPANY, "local_business", "active", False, True,
                     "rmgutters.example", ("other",)),
    OrganizationSpec("Alpine Solar Installers", "local_business", "new", False, True, "alpinesolar.example", ()),
    OrganizationSpec("Aurora Hills HOA", "other", "active", False, True,
                     "aurorahillshoa.example", ("none", "other", "other")),
    OrganizationSpec("Grace Community Church", "other", None, False, True, "gracecommunity.example", ()),
    OrganizationSpec("Willow Creek Townhomes HOA", None, "active", False, True,
                     "willowcreekhoa.example", ("primary", "none")),
    OrganizationSpec("Lakewood Commercial Holdings", None, None, False, False,
                     "lakewoodcommercial.example", ("none",)),
]
# fmt: on


def _money(low: float, high: float, rng: Any) -> Decimal:
    return Decimal(rng.randint(round(low * 100), round(high * 100))) / 100


def _cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"))


class LegacyDemo:
    """Writes the demo tenant as the old system held it, with the historical models of
    `LEGACY_STATE`; every method assumes it runs inside one transaction."""

    tenant: Row
    staff: dict[Role, Row]
    ops: Row
    sales: list[Row]
    contacts: list[Row]
    organizations: list[tuple[Row, OrganizationSpec]]
    projects: list[Row]
    project_sites: dict[int, str]
    organization_projects: set[int]

    def __init__(self, *, rows: LegacyRows, today: date) -> None:
        self.fake = Faker("en_US")
        self.fake.seed_instance(SEED)
        self.rng = self.fake.random
        self.today = today
        self.emails: set[str] = set()
        self.rows = rows

    def create(self, model: str, **fields: Any) -> Row:
        return self.rows.create(model, **fields)

    # helpers ---------------------------------------------------------------------------

    def spread(self, counts: dict[str, int]) -> list[str]:
        """Each value exactly `count` times, shuffled."""
        values = [value for value, count in counts.items() for _ in range(count)]
        self.rng.shuffle(values)
        return values

    def weighted(self, choices: list[tuple[Any, int]]) -> Any:
        return self.rng.choices([value for value, _ in choices], weights=[weight for _, weight in choices])[0]

    def street(self) -> str:
        number, direction = self.rng.randint(100, 19999), self.rng.choice(STREET_DIRECTIONS)
        return f"{number} {direction}{self.rng.choice(STREET_NAMES)} {self.rng.choice(STREET_SUFFIXES)}"

    def phone(self, area_code: str) -> str:
        # 555-0100 to 555-0199 are reserved for fiction: a demo SMS never reaches anyone.
        return f"({area_code}) 555-01{self.rng.randint(0, 99):02d}"

    def email(self, first: str, last: str) -> str:
        local = "".join(ch for ch in f"{first}.{last}".lower() if ch.isalnum() or ch == ".")
        domain = self.rng.choice(["example.com", "example.net", "example.org"])
        candidate, n = f"{local}@{domain}", 1
        while candidate in self.emails:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.emails.add(candidate)
        return candidate

    def moment(self, day: date, *, earliest: int = 7, latest: int = 18) -> datetime:
        """A time of day in Summit's business hours, in its time zone."""
        return datetime.combine(
            day, time(self.rng.randint(earliest, latest - 1), self.rng.choice([0, 15, 30, 45])), DENVER
        )

    def days_ago(self, low: int, high: int) -> date:
        return self.today - timedelta(days=self.rng.randint(low, high))

    def days_ahead(self, low: int, high: int) -> date:
        return self.today + timedelta(days=self.rng.randint(low, high))

    # the tenant and its staff -----------------------------------------------------------

    def build_users(self) -> None:
        password = make_password(DEMO_PASSWORD)  # hashed once: six hashes would take seconds
        self.staff = {}
        for role, first, last in STAFF:
            self.staff[role], _ = self.rows.model("crm.User").objects.get_or_create(
                username=staff_username(role),
                defaults={
                    "email": f"{role}@{EMAIL_DOMAIN}",
                    "first_name": first,
                    "last_name": last,
                    "is_staff": True,
                    "password": password,
                },
            )
        self.ops, _ = self.rows.model("crm.User").objects.get_or_create(
            username=OPS_USERNAME,
            defaults={"email": OPS_EMAIL, "is_staff": True, "is_superuser": True, "password": password},
        )
        # Who enters leads and works them: never the read-only viewer.
        self.sales = [self.staff[Role.OWNER], self.staff[Role.ADMIN], self.staff[Role.MANAGER], self.staff[Role.MEMBER]]

    def build_tenant(self) -> None:
        # The old system had no time zone per tenant: Ridgeline's is set after the upgrade.
        self.tenant = self.create(
            "crm.Tenant",
            name=TENANT_NAME,
            subdomain=TENANT_SUBDOMAIN,
            subscription_status="active",
            primary_color="#b3261e",
            secondary_color="#1f2937",
            settings={
                "service_area": "Colorado Front Range",
                "license_number": "CO-RC-048213",
                "business_hours": {"open": "07:00", "close": "18:00"},
            },
            features={"storm_tracking": True, "insurance_claims": True},
        )
        for role in (Role.OWNER, Role.ADMIN, Role.MANAGER, Role.MEMBER, Role.VIEWER):
            self.create("crm.Membership", tenant=self.tenant, user=self.staff[role], role=role.value)

    # contacts ---------------------------------------------------------------------------

    def build_contacts(self) -> None:
        self.contacts = []
        assignees = [
            (self.staff[Role.MEMBER], 40),
            (self.staff[Role.MANAGER], 25),
            (self.staff[Role.ADMIN], 15),
            (self.staff[Role.OWNER], 10),
            (None, 10),
        ]
        for stage in self.spread(CONTACT_STAGES):
            assignee = self.weighted(assignees)
            creator = assignee or self.staff[Role.ADMIN]
            fields = self.contact_fields(stage, assignee)
            self.contacts.append(self.create("contacts.Contact", tenant=self.tenant, created_by=creator, **fields))

    def contact_fields(self, stage: str, assignee: Row | None) -> dict[str, Any]:
        rng, fake = self.rng, self.fake
        first, last = fake.first_name(), fake.last_name()
        city, zips, area_code, lat, lon, _ = self.weighted([(city, city[-1]) for city in CITIES])
        source = self.weighted(LEAD_SOURCES)
        storm = rng.choice(list(STORMS)) if source in {"Door knock", "Storm canvass"} or rng.random() < 0.25 else None
        property_type = self.weighted(PROPERTY_TYPES)
        roof_type = self.weighted(COMMERCIAL_ROOFS if property_type == "commercial" else RESIDENTIAL_ROOFS)
        property_value = Decimal(rng.randint(320, 1250) * 1000)
        square_feet = rng.randint(60, 240) * 100 if property_type == "commercial" else rng.randint(12, 48) * 100
        carrier = rng.choice(CARRIERS) if rng.random() < 0.8 else None
        claim = carrier is not None and (storm is not None or rng.random() < 0.2)
        tags = [storm] if storm else []
        tags += ["insurance-claim"] if claim else []
        tags += rng.sample(EXTRA_TAGS, k=self.weighted([(0, 5), (1, 4), (2, 2)]))
        score_low, score_high = LEAD_SCORES[stage]
        return {
            "first_name": first,
            "last_name": last,
            "email": self.email(first, last) if rng.random() < 0.85 else None,
            "phone": self.phone(area_code),
            "mobile_phone": self.phone(rng.choice(["303", "720", area_code])) if rng.random() < 0.6 else None,
            "address_street": self.street(),
            "address_city": city,
            "address_state": "CO",
            "address_zip": rng.choice(zips),
            "latitude": Decimal(f"{lat + rng.uniform(-0.04, 0.04):.6f}"),
            "longitude": Decimal(f"{lon + rng.uniform(-0.05, 0.05):.6f}"),
            "type": TYPE_FOR_STAGE.get(stage) or rng.choice(["lead", "prospect"]),
            "stage": stage,
            "source": source,
            "source_details": self.source_details(source, storm, city),
            "assigned_to": assignee,
            "property_type": property_type,
            "roof_type": roof_type,
            "roof_age": rng.randint(1, 32),
            "last_inspection_date": self.days_ago(2, 150) if stage not in {"new", "contacted"} else None,
            "property_value": property_value,
            "square_footage": square_feet,
            "stories": self.weighted([(1, 45), (2, 48), (3, 7)]),
            "insurance_carrier": carrier[0] if carrier else None,
            "policy_number": fake.bothify(carrier[1], letters="ABCDEFGHJKLMNPRSTUVWXYZ") if carrier else None,
            "claim_number": fake.bothify(carrier[2], letters="ABCDEFGHJKLMNPRSTUVWXYZ") if carrier and claim else None,
            "deductible": self.deductible(property_value) if carrier else None,
            "lead_score": rng.randint(score_low, score_high),
            "priority": self.weighted([("low", 20), ("normal", 50), ("high", 20), ("urgent", 10)]),
            "custom_fields": self.custom_fields(),
            "tags": tags,
        }

    def source_details(self, source: str, storm: str | None, city: str) -> dict[str, Any]:
        fake, rng = self.fake, self.rng
        match source:
            case "Door knock" | "Storm canvass":
                details = {
                    "canvasser": rng.choice(["Jake Romero", "Priya Raman", "Cole Jensen"]),
                    "neighborhood": f"{city}, {rng.choice(STREET_NAMES)} area",
                }
                return details | ({"storm": STORMS[storm]["event"]} if storm else {})
            case "Referral":
                return {"referred_by": fake.name()}
            case "Google Ads":
                return {
                    "campaign": f"Roof repair - {city}",
                    "keyword": rng.choice(["roof repair near me", "hail damage roof", "roofer denver"]),
                    "gclid": fake.bothify("Cj0KCQjw##??##??##??##"),
                }
            case "HomeAdvisor":
                return {"lead_id": fake.numerify("HA-########"), "task": "Repair or replace a roof"}
            case "Website":
                return {"form": rng.choice(["free-inspection", "contact-us", "financing"])}
            case "Yard sign":
                return {"job_site": self.street()}
            case _:
                return {"ad_set": "Hail season 2024"}

    def deductible(self, property_value: Decimal) -> Decimal:
        # Colorado policies often carry a 1 % or 2 % wind/hail deductible.
        if self.rng.random() < 0.3:
            return _cents(property_value * Decimal(self.rng.choice(["0.01", "0.02"])))
        return Decimal(self.rng.choice([1000, 1500, 2000, 2500, 5000]))

    def custom_fields(self) -> dict[str, Any]:
        options = {
            "gate_code": self.fake.numerify("####"),
            "dog_on_property": True,
            "preferred_contact_time": self.rng.choice(["mornings", "evenings", "weekends"]),
            "hoa_approval_required": True,
        }
        keys = self.rng.sample(sorted(options), k=self.weighted([(0, 5), (1, 4), (2, 1)]))
        return {key: options[key] for key in keys}

    # organizations (legacy) -------------------------------------------------------------

    def build_organizations(self) -> None:
        people = [c for c in self.contacts if c.email and c.stage in {"won", "negotiation", "proposal"}]
        self.rng.shuffle(people)
        self.organizations = []
        for spec in ORGANIZATIONS:
            city, zips, area_code, *_ = self.weighted([(city, city[-1]) for city in CITIES])
            organization = self.create(
                "contacts.Organization",
                tenant=self.tenant,
                created_by=self.staff[Role.ADMIN],
                is_deleted=spec.is_deleted,  # the old column had no default: NULL occurs
                name=spec.name,
                org_type=spec.org_type,
                stage=spec.stage,
                primary_contact=people.pop() if spec.has_primary_contact else None,
                address_street=self.street(),
                address_city=city,
                address_state="CO",
                address_zip=self.rng.choice(zips),
                phone=self.phone(area_code),
                email=f"office@{spec.domain}",
                website=f"https://www.{spec.domain}/",
                notes=self.rng.choice(ORGANIZATION_NOTES) if self.rng.random() < 0.7 else None,
                tags=self.rng.sample(ORGANIZATION_TAGS, k=2) if self.rng.random() < 0.7 else None,
                default_assignee=self.rng.choice([self.staff[Role.MANAGER], self.staff[Role.MEMBER], None]),
            )
            self.organizations.append((organization, spec))

    # projects ---------------------------------------------------------------------------

    def build_projects(self) -> None:
        by_stage: dict[str, list[Row]] = {}
        for person in self.contacts:
            by_stage.setdefault(person.stage, []).append(person)
        links = [(organization, kind) for organization, spec in self.organizations for kind in spec.project_contacts]
        self.projects, self.project_sites, self.organization_projects = [], {}, set()
        for number, (status, job_type) in enumerate(
            zip(self.spread(PROJECT_STATUSES), self.spread(PROJECT_TYPES), strict=True), start=1001
        ):
            organization, kind = links.pop() if links else (None, "other")
            contact: Row | None = None
            if kind == "primary":
                contact = organization.primary_contact  # type: ignore[union-attr]
            elif kind == "other":
                contact = self.rng.choice([c for stage in STAGES_FOR_STATUS[status] for c in by_stage[stage]])
            site = contact.address_street if contact else organization.address_street  # type: ignore[union-attr]
            project = self.create(
                "crm.Project",
                tenant=self.tenant,
                created_by=self.project_owner(contact),
                organization=organization,
                **self.project_fields(status, job_type, contact, site, number=number),
            )
            self.projects.append(project)
            self.project_sites[project.pk] = site
            if organization is not None:
                self.organization_projects.add(project.pk)
        self.build_subprojects(start=1001 + len(self.projects))

    def project_owner(self, contact: Row | None) -> Row:
        if contact is not None and contact.assigned_to is not None:
            return contact.assigned_to
        return self.staff[Role.MANAGER]

    def build_subprojects(self, *, start: int) -> None:
        """Gutter jobs done alongside two roof replacements, as child projects."""
        parents = [p for p in self.projects if p.type == "replacement" and p.status in {"scheduled", "completed"}]
        for number, parent in enumerate(parents[:2], start=start):
            site = self.project_sites[parent.pk]
            fields = self.project_fields(parent.status, "repair", parent.contact, site, number=number)
            fields |= {
                "name": f"{site} - seamless gutter replacement",
                "parent_project": parent,
                "description": "Replace hail-dented gutters and downspouts with 6-inch seamless aluminum.",
                "crew_assigned": [CREWS[3]] if parent.status == "completed" else [],
            }
            project = self.create(
                "crm.Project", tenant=self.tenant, created_by=self.project_owner(parent.contact), **fields
            )
            self.projects.append(project)
            self.project_sites[project.pk] = site

    def project_fields(
        self, status: str, job_type: str, contact: Row | None, site: str, *, number: int
    ) -> dict[str, Any]:
        rng = self.rng
        (low, high), (min_days, max_days) = JOB_SIZES[job_type]
        estimated = _money(low, high, rng)
        days = rng.randint(min_days, max_days)
        roof = (contact.roof_type if contact else None) or "architectural_shingle"
        floor_area = (contact.square_footage if contact else None) or 2000
        # A roof covers about 1.2 times the floor area (pitch and overhangs); a square is 100 sq ft.
        squares = max(3, floor_area * 12 // 1000) if job_type == "replacement" else rng.randint(1, 4)
        permit = {"permit_number": self.fake.numerify(f"RES-{self.today.year}-######")}
        fields: dict[str, Any] = {
            "contact": contact,
            "name": f"{site} - {JOB_LABELS[job_type]}",
            "project_number": f"SR-{number}",
            "status": status,
            "type": job_type,
            "estimated_value": estimated,
            "description": self.job_description(job_type, roof, squares),
            "scope_of_work": self.scope_of_work(job_type),
            "materials_list": self.materials(job_type, squares),
            "custom_fields": permit if job_type == "replacement" else {},
        }
        start = self.days_ahead(7, 45)
        if status == "cancelled":
            start = self.days_ago(5, 90)
            fields["description"] += f" Cancelled: {rng.choice(CANCEL_REASONS)}"
        fields["estimated_start"] = start
        fields["estimated_completion"] = start + timedelta(days=days)
        if status in {"approved", "scheduled", "in_progress", "completed"}:
            fields["approved_value"] = _cents(estimated * Decimal(rng.uniform(0.96, 1.06)))
            insured = contact is not None and contact.claim_number is not None and job_type != "maintenance"
            if insured:
                fields["insurance_approved"] = True
                fields["insurance_approval_amount"] = fields["approved_value"]
        if status == "scheduled":
            fields["scheduled_start"] = fields["estimated_start"] = self.days_ahead(2, 21)
            fields["estimated_completion"] = fields["scheduled_start"] + timedelta(days=days)
        if status in {"in_progress", "completed"}:
            actual_start = self.days_ago(0, 4) if status == "in_progress" else self.days_ago(10, 240)
            delays = self.weighted([(0, 6), (1, 2), (2, 1)])
            fields |= {
                "scheduled_start": actual_start,
                "estimated_start": actual_start,
                "actual_start": actual_start,
                "estimated_completion": actual_start + timedelta(days=days),
                "crew_assigned": [rng.choice(CREWS[:3])],
                "weather_delays": delays,
                "deductible_collected": bool(fields.get("insurance_approved")),
            }
            if fields.get("insurance_approved"):
                fields["supplements"] = self.supplements()
        if status == "completed":
            final = _cents(fields["approved_value"] * Decimal(rng.uniform(1.0, 1.08)))
            materials = _cents(final * Decimal(rng.uniform(0.34, 0.42)))
            labor = _cents(final * Decimal(rng.uniform(0.22, 0.28)))
            overhead = _cents(final * Decimal(rng.uniform(0.08, 0.12)))
            fields |= {
                "actual_completion": fields["actual_start"] + timedelta(days=days + fields["weather_delays"]),
                "final_value": final,
                "materials_cost": materials,
                "labor_cost": labor,
                "overhead_cost": overhead,
                "profit_margin": _cents((final - materials - labor - overhead) / final * 100),
                "quality_score": rng.randint(78, 100),
            }
        return fields

    def job_description(self, job_type: str, roof: str, squares: int) -> str:
        roof_name = roof.replace("_", " ")
        return {
            "replacement": f"Tear off and replace the {roof_name} roof ({squares} squares) after hail damage.",
            "repair": f"Replace damaged {roof_name} on the north slope and reseal the chimney flashing.",
            "maintenance": "Annual inspection: clear gutters, reseal pipe boots, replace cracked vent caps.",
            "emergency": "Emergency tarp after a branch punctured the roof; permanent repair to follow.",
        }[job_type]

    def scope_of_work(self, job_type: str) -> str:
        steps = {
            "replacement": [
                "Pull permit",
                "Tear off to deck, replace damaged decking",
                "Ice & water shield at eaves and valleys",
                "Synthetic underlayment",
                "Install shingles, ridge vent and drip edge",
                "Magnetic sweep and haul-off",
            ],
            "repair": ["Remove damaged shingles", "Replace underlayment as needed", "Install matching shingles"],
            "maintenance": ["Inspect roof and attic", "Clean gutters", "Seal penetrations", "Photo report"],
            "emergency": ["Tarp the opening", "Dry-in the deck", "Document damage for the insurer"],
        }[job_type]
        return "\n".join(f"{n}. {step}" for n, step in enumerate(steps, start=1))

    def materials(self, job_type: str, squares: int) -> list[dict[str, Any]]:
        if job_type == "maintenance":
            return [{"item": "Pipe boot", "quantity": self.rng.randint(1, 4), "unit": "each"}]
        shingle = self.rng.choice(["GAF Timberline HDZ", "Owens Corning Duration", "CertainTeed Landmark"])
        items = [{"item": f"{shingle} shingles", "quantity": squares, "unit": "square"}]
        if job_type == "replacement":
            items += [
                {"item": "Synthetic underlayment", "quantity": max(1, squares // 10), "unit": "roll"},
                {"item": "Ice & water shield", "quantity": max(1, squares // 6), "unit": "roll"},
                {"item": "Ridge cap", "quantity": max(1, squares // 8), "unit": "bundle"},
                {"item": "Drip edge", "quantity": max(4, squares), "unit": "10 ft"},
            ]
        if job_type == "emergency":
            items.append({"item": "Heavy-duty tarp 20x30", "quantity": 1, "unit": "each"})
        return items

    def supplements(self) -> list[dict[str, Any]]:
        options = [
            ("Code upgrade: ice & water shield", 380, 900),
            ("Drip edge (code)", 250, 600),
            ("Additional layer tear-off", 900, 2400),
            ("Steep-slope charge", 400, 1500),
        ]
        chosen = self.rng.sample(options, k=self.rng.randint(1, 2))
        return [
            {
                "item": item,
                "amount": str(_money(low, high, self.rng)),
                "status": self.rng.choice(["approved", "pending"]),
            }
            for item, low, high in chosen
        ]

    # activities -------------------------------------------------------------------------

    def build_activities(self) -> None:
        # Jobs with no contact of their own get their site meetings and notes on the project alone.
        contactless = [p for p in self.projects if p.contact is None]
        jobs: dict[int, list[Row]] = {}
        for job in self.projects:
            if job.contact_id is not None:
                jobs.setdefault(job.contact_id, []).append(job)
        reachable = {
            "door_knock": [c for c in self.contacts if c.source in {"Door knock", "Storm canvass"}],
            "email": [c for c in self.contacts if c.email],
            "sms": [c for c in self.contacts if c.mobile_phone],
        }
        fields_for = {
            "call": self.call_fields,
            "email": self.email_fields,
            "sms": self.sms_fields,
            "meeting": self.meeting_fields,
            "note": self.note_fields,
            "task": self.task_fields,
            "door_knock": self.door_knock_fields,
        }
        self.external_ids = 0
        for activity_type in self.spread(ACTIVITY_TYPES):
            contact: Row | None
            project: Row | None = None
            if activity_type in {"meeting", "note"} and contactless:
                contact, project = None, contactless.pop()
            else:
                contact = self.rng.choice(reachable.get(activity_type, self.contacts))
                if contact.pk in jobs and activity_type != "door_knock" and self.rng.random() < 0.6:
                    project = self.rng.choice(jobs[contact.pk])
            owner = contact.assigned_to if contact is not None and contact.assigned_to else self.rng.choice(self.sales)
            fields = fields_for[activity_type](contact, project, owner)
            self.create(
                "crm.Activity",
                tenant=self.tenant,
                created_by=owner,
                performed_by=owner,
                contact=contact,
                project=project,
                type=activity_type,
                **fields,
            )

    def next_external_id(self, prefix: str) -> str:
        self.external_ids += 1
        return f"{prefix}-{self.external_ids:06d}"

    def _counterpart(self, contact: Row | None, project: Row | None) -> str:
        if contact is not None:
            return f"{contact.first_name} {contact.last_name}".strip() or contact.email
        return project.name if project is not None else ""

    def call_fields(self, contact: Row | None, project: Row | None, owner: Row) -> dict[str, Any]:
        rng = self.rng
        direction = self.weighted([("outbound", 65), ("inbound", 35)])
        outcome = self.weighted(
            [
                ("connected", 40),
                ("voicemail", 25),
                ("no_answer", 12),
                ("appointment_set", 15),
                ("callback_requested", 8),
            ]
        )
        seconds = {"voicemail": (20, 50), "no_answer": (15, 35)}.get(outcome, (90, 1500))
        duration = rng.randint(*seconds)
        external_id = self.next_external_id("RC")
        subtype = rng.choice(
            ["initial_contact", "follow_up", "inspection_scheduling", "estimate_review", "claim_status"]
        )
        their_phone = (contact.mobile_phone or contact.phone) if contact else None
        recorded = outcome in {"connected", "appointment_set"} and rng.random() < 0.5
        ended = self.moment(self.days_ago(0, 180))
        return {
            "subtype": subtype,
            "subject": f"{subtype.replace('_', ' ').capitalize()} call with {self._counterpart(contact, project)}",
            "content": rng.choice(
                [
                    "Discussed hail damage on the south slope; homeowner wants an inspection before the adjuster.",
                    "Walked through the estimate line by line; questions about the deductible and financing.",
                    "Left details about our workmanship warranty and next available install dates.",
                    "Homeowner asked about impact-resistant shingles and the insurance discount they bring.",
                ]
            ),
            "direction": direction,
            "from_address": OFFICE_PHONE if direction == "outbound" else their_phone,
            "to_address": their_phone if direction == "outbound" else OFFICE_PHONE,
            "outcome": outcome,
            "outcome_details": {"next_step": rng.choice(["send estimate", "schedule inspection", "call back Friday"])}
            if outcome in {"connected", "appointment_set", "callback_requested"}
            else {},
            "duration_seconds": duration,
            "recording_url": f"https://recordings.{EMAIL_DOMAIN}/calls/{external_id}.mp3" if recorded else None,
            "transcript": "Rep: Thanks for calling Summit Roofing...\nCaller: We had hail last night and..."
            if recorded
            else None,
            "completed_at": ended,
            "external_id": external_id,
        }

    def email_fields(self, contact: Row | None, project: Row | None, owner: Row) -> dict[str, Any]:
        direction = self.weighted([("outbound", 70), ("inbound", 30)])
        subtype, subject = self.rng.choice(
            [
                ("estimate_sent", "Your roof estimate from Summit Roofing"),
                ("inspection_photos", "Photos from today's roof inspection"),
                ("claim_documents", "Insurance claim: documents the adjuster needs"),
                ("scheduling", "Scheduling your roof installation"),
                ("invoice", "Invoice and lien waiver for your completed roof"),
                ("warranty", "Your workmanship warranty certificate"),
            ]
        )
        their_email = contact.email if contact else None
        return {
            "subtype": subtype,
            "subject": subject if direction == "outbound" else f"Re: {subject}",
            "content": EMAIL_BODIES[subtype],
            "direction": direction,
            "from_address": owner.email if direction == "outbound" else their_email,
            "to_address": their_email if direction == "outbound" else owner.email,
            "outcome": self.weighted([("sent", 40), ("opened", 30), ("replied", 25), ("bounced", 5)]),
            "completed_at": self.moment(self.days_ago(0, 180)),
            "external_id": f"<{self.next_external_id('msg')}@{EMAIL_DOMAIN}>",
        }

    def sms_fields(self, contact: Row | None, project: Row | None, owner: Row) -> dict[str, Any]:
        direction = self.weighted([("outbound", 70), ("inbound", 30)])
        their_phone = (contact.mobile_phone or contact.phone) if contact else None
        first = contact.first_name if contact else "there"
        content = (
            self.rng.choice(
                [
                    f"Hi {first}, this is {owner.first_name} from Summit Roofing. Our crew arrives at 7:30am tomorrow.",
                    f"Hi {first}, your inspection is confirmed for Thursday between 9 and 11am.",
                    f"Hi {first}, the adjuster approved the supplement. We'll call to schedule.",
                ]
            )
            if direction == "outbound"
            else self.rng.choice(["Sounds good, thanks!", "Can we move it to Friday?", "Gate code is on the fence."])
        )
        return {
            "subject": "Text message",
            "content": content,
            "direction": direction,
            "from_address": OFFICE_PHONE if direction == "outbound" else their_phone,
            "to_address": their_phone if direction == "outbound" else OFFICE_PHONE,
            "outcome": self.weighted([("delivered", 70), ("replied", 25), ("failed", 5)]),
            "completed_at": self.moment(self.days_ago(0, 180)),
            "external_id": self.next_external_id("SMS"),
        }

    def meeting_fields(self, contact: Row | None, project: Row | None, owner: Row) -> dict[str, Any]:
        subtype = self.rng.choice(
            ["inspection", "adjuster_meeting", "estimate_presentation", "contract_signing", "final_walkthrough"]
        )
        upcoming = self.rng.random() < 0.25
        scheduled = self.moment(self.days_ahead(1, 21) if upcoming else self.days_ago(1, 180), latest=17)
        location = self.project_sites[project.pk] if project else contact.address_street  # type: ignore[union-attr]
        fields: dict[str, Any] = {
            "subtype": subtype,
            "subject": f"{subtype.replace('_', ' ').capitalize()} at {location}",
            "content": MEETING_AGENDAS[subtype],
            "scheduled_at": scheduled,
            "reminder_at": scheduled - timedelta(days=1),
            "outcome_details": {"location": location, "attendees": [f"{owner.first_name} {owner.last_name}"]},
        }
        if not upcoming:
            outcome = self.weighted([("completed", 80), ("rescheduled", 12), ("no_show", 8)])
            fields["outcome"] = outcome
            if outcome == "completed":
                duration = self.rng.choice([1800, 2700, 3600, 5400])
                fields |= {"duration_seconds": duration, "completed_at": scheduled + timedelta(seconds=duration)}
        return fields

    def note_fields(self, contact: Row | None, project: Row | None, owner: Row) -> dict[str, Any]:
        return {
            "subject": "Note",
            "content": self.rng.choice(
                [
                    "Dog in the back yard: call before entering the gate.",
                    "Adjuster agreed to re-inspect the garage roof.",
                    "Homeowner prefers text messages over calls.",
                    "HOA requires color approval before the install: submit the shingle sample.",
                    "Satellite dish on the south slope: reinstall after the tear-off.",
                ]
            ),
        }

    def task_fields(self, contact: Row | None, project: Row | None, owner: Row) -> dict[str, Any]:
        subtype = self.rng.choice(
            ["send_estimate", "order_materials", "pull_permit", "submit_supplement", "collect_deductible"]
        )
        done = self.rng.random() < 0.6
        due = self.moment(self.days_ago(1, 120) if done else self.days_ahead(0, 14), earliest=8, latest=17)
        fields: dict[str, Any] = {
            "subtype": subtype,
            "subject": subtype.replace("_", " ").capitalize(),
            "content": TASK_DETAILS[subtype],
            "scheduled_at": due,
            "reminder_at": due - timedelta(hours=2),
        }
        if done:
            finished = self.moment(due.date() - timedelta(days=self.rng.randint(0, 2)), earliest=8, latest=17)
            fields |= {"outcome": "done", "completed_at": finished}
        return fields

    def door_knock_fields(self, contact: Row | None, project: Row | None, owner: Row) -> dict[str, Any]:
        outcome = self.weighted(
            [
                ("not_home", 30),
                ("left_door_hanger", 20),
                ("interested", 20),
                ("appointment_set", 15),
                ("not_interested", 15),
            ]
        )
        return {
            "subtype": self.rng.choice(["storm_canvass", "neighborhood_canvass"]),
            "subject": f"Door knock at {contact.address_street}" if contact else "Door knock",
            "content": self.rng.choice(
                [
                    "Visible hail hits on the ridge cap and dented gutters.",
                    "Neighbors at two houses on the block are getting new roofs.",
                    "Granule loss in the downspouts; soft metals dented.",
                ]
            ),
            "direction": "outbound",
            "outcome": outcome,
            "outcome_details": {"left_door_hanger": outcome in {"not_home", "left_door_hanger"}},
            "duration_seconds": self.rng.randint(30, 90) if outcome == "not_home" else self.rng.randint(120, 900),
            "completed_at": self.moment(self.days_ago(0, 120), earliest=10, latest=19),
        }

    # soft deletes ----------------------------------------------------------------------------

    def build_deletions(self) -> None:
        """Soft-delete a few lost leads and cancelled jobs, so the admin's deleted filter has rows."""
        in_use = {p.contact_id for p in self.projects} | {o.primary_contact_id for o, _ in self.organizations}
        lost = [c.pk for c in self.contacts if c.stage == "lost" and c.pk not in in_use][:DELETED_CONTACTS]
        cancelled = [p.pk for p in self.projects if p.status == "cancelled" and p.pk not in self.organization_projects][
            :DELETED_PROJECTS
        ]
        deleted = {"is_deleted": True, "updated_at": timezone.now()}
        self.rows.model("contacts.Contact").objects.filter(pk__in=lost).update(**deleted)
        self.rows.model("crm.Project").objects.filter(pk__in=cancelled).update(**deleted)

    def build(self) -> Row:
        self.build_users()
        self.build_tenant()
        self.build_contacts()
        self.build_organizations()
        self.build_projects()
        self.build_activities()
        self.build_deletions()
        return self.tenant


def rehearse(*, stdout: TextIO, verbosity: int) -> Tenant:
    """Write Summit Roofing at the legacy schema and upgrade the database with `migrate`.

    Precondition: the database holds no tenant (the caller checked, under its lock).
    """
    apps = migrate_to(LEGACY_STATE)  # forward on a new database, back on an empty migrated one
    with transaction.atomic():
        LegacyDemo(rows=LegacyRows(apps), today=timezone.localdate(timezone=DENVER)).build()
        with connection.cursor() as cursor:
            # Check the new rows' foreign keys now: when this runs inside an outer transaction
            # (the tests), `migrate` alters these tables next and PostgreSQL refuses pending checks.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    out = OutputWrapper(stdout)
    out.write(f"Wrote {TENANT_NAME} as the old system held it; upgrading the database like a customer's:")
    call_command("migrate", interactive=False, verbosity=verbosity, stdout=stdout)
    tenant = Tenant.objects.get(subdomain=TENANT_SUBDOMAIN)
    ops = User.objects.get(username=OPS_USERNAME)
    tenant_update(tenant=tenant, actor=Actor(tenant=None, user=ops, source=Source.TASK), timezone=TENANT_TIMEZONE)
    out.write(summary(tenant))
    return tenant


def _breakdown(queryset: Any, field: str) -> str:
    counts = queryset.order_by(field).values_list(field).annotate(n=Count("pk"))
    return ", ".join(f"{n} {value or 'none'}" for value, n in counts)


def summary(tenant: Tenant) -> str:
    contacts = Contact.objects.filter(tenant=tenant)
    people, companies = contacts.filter(is_organization=False), contacts.filter(is_organization=True)
    merged = MergedOrganization.objects.filter(tenant=tenant)
    projects = Project.objects.filter(tenant=tenant)
    activities = Activity.objects.filter(tenant=tenant)
    parties = ProjectContact.objects.filter(tenant=tenant)
    return "\n".join(
        [
            f"Created the demo tenant {tenant.name} (subdomain {tenant.subdomain}, {tenant.timezone}):",
            f"  {tenant.memberships.count()} staff members ({_breakdown(tenant.memberships.all(), 'role')}) "
            f"and the superuser {OPS_USERNAME}",
            f"  {people.count()} people ({people.filter(is_deleted=True).count()} soft-deleted, "
            f"{people.filter(company_contact__isnull=False).count()} working for a company); "
            f"types: {_breakdown(people, 'type')}; stages: {_breakdown(people, 'stage')}",
            f"  {companies.count()} company contacts, {merged.count()} of them merged from legacy organizations "
            f"({companies.filter(is_deleted=True).count()} deleted); categories: "
            f"{_breakdown(companies, 'contact_category')}",
            f"  {projects.count()} projects ({projects.filter(is_deleted=True).count()} soft-deleted); "
            f"statuses: {_breakdown(projects, 'status')}; types: {_breakdown(projects, 'type')}",
            f"  {parties.count()} project parties: {_breakdown(parties, 'role')}",
            f"  {activities.count()} activities: {_breakdown(activities, 'type')}",
        ]
    )
