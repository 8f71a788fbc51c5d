"""What a step says and does: merge fields, each step type's configuration, the step graph.

Message bodies use merge fields only (`{{ contact.first_name }}`): the "template language"
is a lookup in a fixed table of names, so a body can reach nothing else (no attribute
access, no filters, no tags). An unknown name is refused when the step is saved.
"""

import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.db import models

from campaigns.models import MESSAGE_STEPS, StepType
from contacts.models import Contact
from contacts.services import CONTACT_WRITABLE_FIELDS
from crm.errors import ApplicationError
from crm.models import Project, Role, Tenant, User
from crm.services import PROJECT_WRITABLE_FIELDS

CONTACTS = "contacts"  # the filters app's entity type for contact trees


def consent_refusal(contact: Contact, channel: str | None) -> bool:
    """True when the contact may not receive `channel` (a message step type)."""
    if channel == StepType.SEND_EMAIL:
        return not contact.email or contact.email_opt_out or contact.email_invalid
    if channel == StepType.SEND_SMS:
        return not (contact.mobile_phone or contact.phone) or not contact.sms_opt_in or contact.sms_opt_out
    return False


@dataclass(frozen=True)
class MergeContext:
    """Who a message is for: the rows its merge fields read."""

    tenant: Tenant
    contact: Contact | None = None
    project: Project | None = None
    user: User | None = None  # the contact's owner (assigned user), or the sender
    unsubscribe_url: str = ""


MERGE_FIELDS: dict[str, Callable[[MergeContext], Any]] = {
    "contact.first_name": lambda c: c.contact and c.contact.first_name,
    "contact.last_name": lambda c: c.contact and c.contact.last_name,
    "contact.display_name": lambda c: c.contact and c.contact.display_name,
    "contact.company": lambda c: c.contact and c.contact.company,
    "contact.address_street": lambda c: c.contact and c.contact.address_street,
    "contact.address_city": lambda c: c.contact and c.contact.address_city,
    "project.name": lambda c: c.project and c.project.name,
    "project.project_number": lambda c: c.project and c.project.project_number,
    "tenant.name": lambda c: c.tenant.name,
    "user.first_name": lambda c: c.user and c.user.first_name,
    "user.last_name": lambda c: c.user and c.user.last_name,
    "user.email": lambda c: c.user and c.user.email,
    "unsubscribe_url": lambda c: c.unsubscribe_url,
}

_TAG = re.compile(r"\{\{(.*?)\}\}|\{%|%\}|\{#|#\}", re.DOTALL)


def merge_fields_used(text: str, *, attr: str) -> list[str]:
    """The merge fields `text` uses; anything that is not one of MERGE_FIELDS is a 400 naming it."""
    used = []
    for match in _TAG.finditer(text):
        if match.group(1) is None:
            raise ApplicationError(
                f"{attr}: only merge fields like {{{{ contact.first_name }}}} are allowed, not {match.group(0)!r}.",
                code="template_syntax",
                attr=attr.split(".")[0],
            )
        name = match.group(1).strip()
        if name not in MERGE_FIELDS:
            raise ApplicationError(
                f"{attr}: unknown merge field {{{{ {name} }}}}; use one of: {', '.join(MERGE_FIELDS)}.",
                code="unknown_merge_field",
                attr=attr.split(".")[0],
            )
        used.append(name)
    if "{{" in _TAG.sub("", text) or "}}" in _TAG.sub("", text):
        raise ApplicationError(f"{attr}: an unclosed {{{{ ... }}}}.", code="template_syntax", attr=attr.split(".")[0])
    return used


def render(text: str, context: MergeContext) -> str:
    """Fill the merge fields (checked first); a missing value renders empty."""
    merge_fields_used(text, attr="text")

    def value(match: re.Match[str]) -> str:
        found = MERGE_FIELDS[match.group(1).strip()](context)
        return "" if found is None else str(found)

    return _TAG.sub(value, text)


# Step configuration ----------------------------------------------------------------------

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# update_field: the record's columns a manager may change through the API, minus links and
# the columns a campaign must not rewrite (who owns it, its status's substatus, deletion).
_NOT_BY_CAMPAIGN = frozenset({"assigned_to", "company_contact", "contact", "parent_project", "substatus"})
UPDATABLE_FIELDS: dict[str, tuple[type[models.Model], frozenset[str]]] = {
    "contact": (Contact, CONTACT_WRITABLE_FIELDS - _NOT_BY_CAMPAIGN),
    "project": (Project, PROJECT_WRITABLE_FIELDS - _NOT_BY_CAMPAIGN),
}


def _text(config: Mapping[str, Any], key: str, *, attr: str, required: bool = True, limit: int = 10_000) -> str:
    value = config.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ApplicationError(f"{attr}.{key}: required text.", code="required", attr=attr.split(".")[0])
    if len(value) > limit:
        raise ApplicationError(f"{attr}.{key}: at most {limit} characters.", code="max_length", attr=attr.split(".")[0])
    return value


def _only(config: Mapping[str, Any], allowed: Iterable[str], *, attr: str) -> None:
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise ApplicationError(
            f"{attr}: unknown key(s) {unknown}; allowed: {sorted(allowed)}.", code="unknown_key", attr=attr
        )


def _message(content: Mapping[str, Any], *, step_type: str, attr: str) -> None:
    if step_type == StepType.SEND_EMAIL:
        _only(content, {"subject", "body", "key", "weight"}, attr=attr)
        merge_fields_used(_text(content, "subject", attr=attr, limit=255), attr=f"{attr}.subject")
    else:
        _only(content, {"body", "key", "weight"}, attr=attr)
    merge_fields_used(_text(content, "body", attr=attr), attr=f"{attr}.body")


def _clock(value: Any, *, attr: str) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise ApplicationError(f"{attr}: expected a time of day (HH:MM).", code="invalid", attr=attr) from None


def validate_step_config(step_type: str, config: Any, *, members: Callable[[list[int]], set[int]]) -> None:
    """Check one step's `step_config` for its type; `members(ids)` gives the ids that are
    active members of the tenant (a user of another tenant is "does not exist")."""
    attr = "step_config"
    if not isinstance(config, dict):
        raise ApplicationError("step_config must be an object.", code="invalid", attr=attr)
    if step_type in MESSAGE_STEPS:
        _message(config, step_type=step_type, attr=attr)
    elif step_type == StepType.CREATE_TASK:
        _only(config, {"title", "description", "assign_to", "due_in_days"}, attr=attr)
        merge_fields_used(_text(config, "title", attr=attr, limit=255), attr=f"{attr}.title")
        merge_fields_used(_text(config, "description", attr=attr, required=False), attr=f"{attr}.description")
        _user(config.get("assign_to", "owner"), attr=f"{attr}.assign_to", members=members, allow_owner=True)
        due = config.get("due_in_days", 0)
        if not isinstance(due, int) or isinstance(due, bool) or due < 0:
            raise ApplicationError(f"{attr}.due_in_days: a whole number ≥ 0.", code="invalid", attr=attr)
    elif step_type == StepType.WAIT:
        _wait(config, attr=attr)
    elif step_type == StepType.UPDATE_FIELD:
        _only(config, {"entity", "field", "value"}, attr=attr)
        entity = config.get("entity", "contact")
        if entity not in UPDATABLE_FIELDS:
            raise ApplicationError(f"{attr}.entity: contact or project.", code="invalid", attr=attr)
        model, allowed = UPDATABLE_FIELDS[entity]
        name = config.get("field")
        if name not in allowed:
            raise ApplicationError(
                f"{attr}.field: {name!r} is not a {entity} field a campaign may change.", code="invalid", attr=attr
            )
        field = model._meta.get_field(name)
        try:
            field.clean(field.to_python(config.get("value")), None)  # type: ignore[union-attr]
        except ValidationError as exc:
            raise ApplicationError(f"{attr}.value: {' '.join(exc.messages)}", code="invalid", attr=attr) from exc
    elif step_type == StepType.MANAGE_TAGS:
        _only(config, {"add", "remove"}, attr=attr)
        for key in ("add", "remove"):
            tags = config.get(key, [])
            if not isinstance(tags, list) or not all(isinstance(tag, str) and 0 < len(tag) <= 50 for tag in tags):
                raise ApplicationError(f"{attr}.{key}: a list of tags (1 to 50 characters).", code="invalid", attr=attr)
        if not config.get("add") and not config.get("remove"):
            raise ApplicationError(f"{attr}: tags to add or remove.", code="required", attr=attr)
    elif step_type == StepType.NOTIFY:
        _only(config, {"user", "role", "message"}, attr=attr)
        merge_fields_used(_text(config, "message", attr=attr, limit=1000), attr=f"{attr}.message")
        if ("user" in config) == ("role" in config):
            raise ApplicationError(f"{attr}: name a user or a role (one of them).", code="invalid", attr=attr)
        if "user" in config:
            _user(config["user"], attr=f"{attr}.user", members=members, allow_owner=True)
        elif config["role"] not in Role.values:
            raise ApplicationError(f"{attr}.role: one of {Role.values}.", code="invalid", attr=attr)
    elif step_type == StepType.WEBHOOK:
        _only(config, {"url", "payload"}, attr=attr)
        url = _text(config, "url", attr=attr, limit=2000)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ApplicationError(f"{attr}.url: an http(s) URL.", code="invalid", attr=attr)
        if not isinstance(config.get("payload", {}), dict):
            raise ApplicationError(f"{attr}.payload: an object.", code="invalid", attr=attr)
    elif step_type in (StepType.CONDITIONAL, StepType.EXIT_CAMPAIGN):
        _only(config, set(), attr=attr)


def _user(value: Any, *, attr: str, members: Callable[[list[int]], set[int]], allow_owner: bool) -> None:
    if allow_owner and value == "owner":
        return
    if not isinstance(value, int) or isinstance(value, bool) or value not in members([value]):
        raise ApplicationError(
            f'{attr}: User "{value}" is not an active member of this tenant.',
            code="does_not_exist",
            attr=attr.split(".")[0],
        )


def _wait(config: Mapping[str, Any], *, attr: str) -> None:
    """A wait is its delay (empty config), until a date (and time), or until a weekday and time."""
    _only(config, {"until_date", "weekday", "time"}, attr=attr)
    if "until_date" in config:
        if "weekday" in config:
            raise ApplicationError(f"{attr}: until_date or weekday, not both.", code="invalid", attr=attr)
        try:
            date.fromisoformat(config["until_date"])
        except (TypeError, ValueError):
            raise ApplicationError(f"{attr}.until_date: a date (YYYY-MM-DD).", code="invalid", attr=attr) from None
    elif "weekday" in config and config["weekday"] not in WEEKDAYS:
        raise ApplicationError(f"{attr}.weekday: one of {WEEKDAYS}.", code="invalid", attr=attr)
    if "time" in config:
        _clock(config["time"], attr=f"{attr}.time")
    elif "weekday" in config:
        raise ApplicationError(f"{attr}.time: a weekday needs a time of day.", code="required", attr=attr)


def validate_variants(step_type: str, variants: Any) -> None:
    attr = "variants"
    if not isinstance(variants, list):
        raise ApplicationError("variants must be a list.", code="invalid", attr=attr)
    if not variants:
        return
    if step_type not in MESSAGE_STEPS:
        raise ApplicationError("Only email and SMS steps have A/B variants.", code="invalid", attr=attr)
    if len(variants) < 2 or len(variants) > 5:
        raise ApplicationError("An A/B test has 2 to 5 variants.", code="invalid", attr=attr)
    keys = set()
    for index, variant in enumerate(variants):
        where = f"variants[{index}]"
        if not isinstance(variant, dict):
            raise ApplicationError(f"{where}: an object.", code="invalid", attr=attr)
        key, weight = variant.get("key"), variant.get("weight")
        if not isinstance(key, str) or not key or key in keys:
            raise ApplicationError(f"{where}.key: a name of its own.", code="invalid", attr=attr)
        keys.add(key)
        if not isinstance(weight, int) or isinstance(weight, bool) or weight < 1:
            raise ApplicationError(f"{where}.weight: a whole number ≥ 1.", code="invalid", attr=attr)
        _message(variant, step_type=step_type, attr=where)


def validate_business_hours(hours: Any) -> None:
    if not isinstance(hours, dict):
        raise ApplicationError("business_hours must be an object.", code="invalid", attr="business_hours")
    for day, window in hours.items():
        where = f"business_hours.{day}"
        if day not in WEEKDAYS:
            raise ApplicationError(f"{where}: not a weekday ({WEEKDAYS}).", code="invalid", attr="business_hours")
        if not isinstance(window, dict) or set(window) != {"start", "end"}:
            raise ApplicationError(f"{where}: {{start, end}}.", code="invalid", attr="business_hours")
        if _clock(window["start"], attr=where) >= _clock(window["end"], attr=where):
            raise ApplicationError(f"{where}: start before end.", code="invalid", attr="business_hours")


def tenant_zone(tenant: Tenant) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(tenant.timezone)


def contact_zone(tenant: Tenant, contact: Contact) -> zoneinfo.ZoneInfo:
    """The contact's time zone when it has one, else the tenant's (business hours, waits, days)."""
    return zoneinfo.ZoneInfo(contact.timezone or tenant.timezone)
