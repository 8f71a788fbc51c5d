"""The demo tenant `make run` loads, and the registry through which every app adds its rows.

The demo, Summit Roofing, is built in two parts (crm/demo/runner.py runs them):

1. the legacy rehearsal (crm/demo/rehearsal.py), on a database without tenants: the tenant as
   the old system held it, written at the legacy schema, then `migrate` upgrades the database
   like a customer's, the organizations merge included;
2. the steps: each app registers its own demo rows in its `demo.py` with
   `demo_register(DemoStep(...))`. A step writes through the app's services with
   `demo_actor()`, after the steps it names in `after`, and says what it added. A step whose
   rows are present is skipped: on a database an earlier version built, only the steps added
   since then write anything.

The core imports no feature app: the runner finds the steps by importing every installed
app's `demo` module, as the admin finds `admin` modules.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import autodiscover_modules

from crm.actor import Actor, Source
from crm.models import Role, Tenant, User

DEMO_PASSWORD = "ridgeline-demo"  # noqa: S105 - published on purpose (README), refused unless DEBUG
TENANT_NAME = "Summit Roofing"
TENANT_SUBDOMAIN = "summit"
TENANT_TIMEZONE = "America/Denver"
EMAIL_DOMAIN = "summitroofing.example"
# The demo staff: username summit-<role>, email <role>@summitroofing.example.
STAFF = [
    (Role.OWNER, "Dana", "Whitaker"),
    (Role.ADMIN, "Marcus", "Lee"),
    (Role.MANAGER, "Priya", "Raman"),
    (Role.MEMBER, "Jake", "Romero"),
    (Role.VIEWER, "Erin", "Cho"),
]
OPS_USERNAME = "ops"
OPS_EMAIL = "ops@ridgeline.example"


def staff_username(role: Role) -> str:
    return f"{TENANT_SUBDOMAIN}-{role}"


@dataclass(frozen=True)
class DemoStep:
    """One app's demo rows.

    `build(actor)` writes them through the app's services (in one transaction) and returns
    what it added, e.g. "8 adjusters"; `present(tenant)` says whether they are there already
    (by their natural keys), so that a second run adds nothing.
    """

    name: str  # "<app>.<what>", e.g. "contacts.parties"
    build: Callable[[Actor], str]
    present: Callable[[Tenant], bool]
    after: tuple[str, ...] = ()


class DemoRegistry:
    def __init__(self) -> None:
        self._steps: dict[str, DemoStep] = {}

    def register(self, step: DemoStep) -> DemoStep:
        if step.name in self._steps:
            raise ImproperlyConfigured(f"The demo step {step.name} is registered twice.")
        self._steps[step.name] = step
        return step

    def steps(self) -> list[DemoStep]:
        return demo_order(self._steps.values())


demo_registry = DemoRegistry()


def demo_register(step: DemoStep) -> DemoStep:
    """Add an app's step to the demo (call it in the app's `demo.py`)."""
    return demo_registry.register(step)


def demo_steps() -> list[DemoStep]:
    """Every installed app's steps, in the order they run."""
    autodiscover_modules("demo")
    return demo_registry.steps()


def demo_order(steps: Iterable[DemoStep]) -> list[DemoStep]:
    """Each step after the steps it names in `after`, otherwise in the given order."""
    remaining = list(steps)
    names = {step.name for step in remaining}
    for step in remaining:
        unknown = sorted(set(step.after) - names)
        if unknown:
            raise ImproperlyConfigured(f"The demo step {step.name} runs after {', '.join(unknown)}: no such step.")
    ordered: list[DemoStep] = []
    done: set[str] = set()
    while remaining:
        ready = next((step for step in remaining if done.issuperset(step.after)), None)
        if ready is None:
            raise ImproperlyConfigured(
                f"The demo steps {', '.join(step.name for step in remaining)} wait for each other."
            )
        ordered.append(ready)
        done.add(ready.name)
        remaining.remove(ready)
    return ordered


def demo_actor(tenant: Tenant) -> Actor:
    """Who the steps write as: the tenant's admin, from a command rather than a request."""
    return Actor(tenant=tenant, user=User.objects.get(username=staff_username(Role.ADMIN)), source=Source.TASK)
