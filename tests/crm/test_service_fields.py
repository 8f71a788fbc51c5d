"""The services' keyword fields are typed: each TypedDict names what its service writes.

The services' writable-field sets come from the models, so a new column is writable at once;
these tests fail until the column's TypedDict entry (with the model's type) is added too.
"""

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import GenericAlias
from typing import Any, get_type_hints

import pytest
from django.apps import apps
from django.contrib.postgres.fields import ArrayField
from django.db import models

from contacts.models import Contact
from contacts.services import CONTACT_WRITABLE_FIELDS, ContactFields
from crm.models import Activity, Membership, Project, ProjectContact, Tenant
from crm.services import (
    ACTIVITY_WRITABLE_FIELDS,
    MEMBERSHIP_WRITABLE_FIELDS,
    PROJECT_CONTACT_WRITABLE_FIELDS,
    PROJECT_WRITABLE_FIELDS,
    TENANT_WRITABLE_FIELDS,
    ActivityFields,
    MembershipFields,
    ProjectContactFields,
    ProjectFields,
    TenantFields,
)
from substatus.models import SubstatusConfig
from substatus.services import WRITABLE_FIELDS, SubstatusFields

REPO = Path(__file__).resolve().parents[2]

SERVICE_FIELDS = [
    pytest.param(ContactFields, Contact, CONTACT_WRITABLE_FIELDS, id="contact"),
    pytest.param(ProjectFields, Project, PROJECT_WRITABLE_FIELDS, id="project"),
    pytest.param(ProjectContactFields, ProjectContact, PROJECT_CONTACT_WRITABLE_FIELDS, id="project_contact"),
    pytest.param(ActivityFields, Activity, ACTIVITY_WRITABLE_FIELDS, id="activity"),
    pytest.param(TenantFields, Tenant, TENANT_WRITABLE_FIELDS, id="tenant"),
    pytest.param(MembershipFields, Membership, MEMBERSHIP_WRITABLE_FIELDS, id="membership"),
    pytest.param(SubstatusFields, SubstatusConfig, WRITABLE_FIELDS, id="substatus"),
]

# The Python type a value of each kind of column takes; subclasses first (DateTimeField is a DateField).
PYTHON_TYPES: list[tuple[type[models.Field], type]] = [
    (models.BooleanField, bool),
    (models.DecimalField, Decimal),
    (models.DateTimeField, dt.datetime),
    (models.DateField, dt.date),
    (models.IntegerField, int),
    (models.CharField, str),
    (models.TextField, str),
]


def python_type(field: Any) -> Any:
    """The type a service accepts for `field`: the related model for a foreign key."""
    if field.is_relation:
        kind: Any = field.related_model
    elif isinstance(field, ArrayField):
        kind = GenericAlias(list, (python_type(field.base_field),))
    elif isinstance(field, models.JSONField):
        kind = dict[str, Any] if field.default is dict else list[Any]
    else:
        kind = next(python for column, python in PYTHON_TYPES if isinstance(field, column))
    return kind | None if field.null else kind


@pytest.mark.parametrize(("fields", "model", "writable"), SERVICE_FIELDS)
def test_a_services_typeddict_names_exactly_its_writable_fields(fields, model, writable):
    assert fields.__required_keys__ == frozenset()
    assert fields.__optional_keys__ == writable


@pytest.mark.parametrize(("fields", "model", "writable"), SERVICE_FIELDS)
def test_a_services_typeddict_gives_each_field_its_columns_type(fields, model, writable):
    # Forward references (a substatus foreign key) name models.
    hints = get_type_hints(fields, localns={found.__name__: found for found in apps.get_models()})
    assert hints == {name: python_type(model._meta.get_field(name)) for name in writable}


def test_python_type_reads_the_model():
    """The expectation above is computed, so check it on columns whose types are known."""
    assert python_type(Contact._meta.get_field("first_name")) is str
    assert python_type(Contact._meta.get_field("email")) == str | None
    assert python_type(Contact._meta.get_field("assigned_to")) == apps.get_model("crm", "User") | None
    assert python_type(Contact._meta.get_field("tags")) == list[str]
    assert python_type(Contact._meta.get_field("custom_fields")) == dict[str, Any]
    assert python_type(Project._meta.get_field("materials_list")) == list[Any]
    assert python_type(Project._meta.get_field("estimated_value")) == Decimal | None
    assert python_type(Activity._meta.get_field("scheduled_at")) == dt.datetime | None
    assert python_type(Project._meta.get_field("scheduled_start")) == dt.date | None


CALLS = """\
from contacts.models import Contact
from crm.actor import Actor
from crm.models import Activity, Membership, Project, ProjectContact, Tenant
from contacts.services import contact_create, contact_update
from crm.services import (
    activity_create, activity_update, membership_update, project_contact_update, project_create,
    project_update, tenant_create, tenant_update,
)
from substatus.models import SubstatusConfig
from substatus.services import substatus_create, substatus_update


def calls(
    actor: Actor, contact: Contact, project: Project, activity: Activity, tenant: Tenant,
    membership: Membership, party: ProjectContact, substatus: SubstatusConfig,
) -> None:
    contact_create(actor=actor, first_name="Dana", frist_name="Dana")
    contact_update(contact=contact, actor=actor, lead_score="high")
    project_create(actor=actor, name="Roof", contact=contact.pk)
    project_update(project=project, actor=actor, is_deleted=True)
    activity_create(actor=actor, type="call", performed_by=None)
    activity_update(activity=activity, actor=actor, duration_seconds="60")
    tenant_create(actor=actor, name="Summit", colour="#ffffff")
    tenant_update(tenant=tenant, actor=actor, is_active="yes")
    membership_update(actor=actor, membership=membership, user=None)
    project_contact_update(actor=actor, project_contact=party, project=project)
    substatus_create(actor=actor, entity="contact", status="new", key="k", label="K", tenant=tenant)
    substatus_update(substatus=substatus, actor=actor, position="1")
"""


def test_a_wrong_keyword_or_value_fails_type_checking(tmp_path):
    """mypy (as `make lint` runs it) refuses what the services would refuse only at run time."""
    calls = tmp_path / "service_calls.py"
    calls.write_text(CALLS)
    checked = subprocess.run(  # noqa: S603 - this interpreter's mypy on the file written above
        [sys.executable, "-m", "mypy", "--no-error-summary", "--hide-error-context", str(calls)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line.split(": error: ", 1)[1] for line in checked.stdout.splitlines() if ": error: " in line]
    assert errors == [
        'Unexpected keyword argument "frist_name" for "contact_create"; did you mean "first_name"?  [call-arg]',
        'Argument "lead_score" to "contact_update" has incompatible type "str"; expected "int"  [arg-type]',
        'Argument "contact" to "project_create" has incompatible type "int"; expected "Contact | None"  [arg-type]',
        'Unexpected keyword argument "is_deleted" for "project_update"  [call-arg]',
        'Unexpected keyword argument "performed_by" for "activity_create"  [call-arg]',
        'Argument "duration_seconds" to "activity_update" has incompatible type "str"; expected "int | None"'
        "  [arg-type]",
        'Unexpected keyword argument "colour" for "tenant_create"  [call-arg]',
        'Argument "is_active" to "tenant_update" has incompatible type "str"; expected "bool"  [arg-type]',
        'Unexpected keyword argument "user" for "membership_update"  [call-arg]',
        'Unexpected keyword argument "project" for "project_contact_update"  [call-arg]',
        'Unexpected keyword argument "tenant" for "substatus_create"  [call-arg]',
        'Argument "position" to "substatus_update" has incompatible type "str"; expected "int"  [arg-type]',
    ], checked.stdout + checked.stderr
