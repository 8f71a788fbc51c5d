"""What a filter may name, per entity: the whitelist of field paths, their kinds and value lists.

A catalog entry's `field_name` is one of these (the model's plain columns, a few related
paths, `substatus`, `tags`, and `custom_fields.<key>`); nothing else ever reaches the ORM.
"""

import re
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from contacts.models import Contact
from crm.models import Activity, Project
from filters.models import EntityType, FieldType


class Kind:
    """How a field's values are read and compared."""

    TEXT = "text"
    CHOICE = "choice"  # text with a value list
    NUMBER = "number"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"
    ARRAY = "array"  # a text array (tags)
    USER = "user"
    SUBSTATUS = "substatus"
    CUSTOM = "custom"  # a key of the custom_fields JSON: read as its catalog entry's type says


@dataclass(frozen=True)
class FieldSpec:
    name: str  # the catalog's field_name
    path: str  # the ORM path it compiles to
    kind: str
    choices: tuple[str, ...] = ()  # the value list of a CHOICE field
    model: type[models.Model] | None = None  # the model holding the column (for dynamic options)
    integer: bool = False  # a whole-number column: a fraction is refused, not rounded


# The field types a catalog entry may give each kind of column.
KIND_FIELD_TYPES: dict[str, frozenset[str]] = {
    Kind.TEXT: frozenset({FieldType.TEXT, FieldType.SELECT, FieldType.MULTI_SELECT}),
    Kind.CHOICE: frozenset({FieldType.SELECT, FieldType.MULTI_SELECT, FieldType.TEXT}),
    Kind.NUMBER: frozenset({FieldType.NUMBER, FieldType.NUMBER_RANGE}),
    Kind.DATE: frozenset({FieldType.DATE, FieldType.DATE_RANGE}),
    Kind.DATETIME: frozenset({FieldType.DATE, FieldType.DATE_RANGE}),
    Kind.BOOLEAN: frozenset({FieldType.BOOLEAN}),
    Kind.ARRAY: frozenset({FieldType.TAG_SELECT, FieldType.MULTI_SELECT}),
    Kind.USER: frozenset({FieldType.USER_SELECT}),
    Kind.SUBSTATUS: frozenset({FieldType.SELECT, FieldType.MULTI_SELECT}),
    Kind.CUSTOM: frozenset(
        {
            FieldType.TEXT,
            FieldType.SELECT,
            FieldType.MULTI_SELECT,
            FieldType.NUMBER,
            FieldType.NUMBER_RANGE,
            FieldType.DATE,
            FieldType.DATE_RANGE,
            FieldType.BOOLEAN,
        }
    ),
}

ENTITY_MODELS: dict[str, type[models.Model]] = {
    EntityType.CONTACTS: Contact,
    EntityType.PROJECTS: Project,
    EntityType.PIPELINE: Project,
    EntityType.ACTIVITIES: Activity,
}

# Columns that are never filters: identity, plumbing, free-form JSON and the search vector.
_EXCLUDED = frozenset({"id", "tenant", "is_deleted", "search", "updated_by"})

# Related paths: catalog name -> (ORM path, model holding the column, its column).
_RELATED: dict[type[models.Model], dict[str, tuple[str, type[models.Model], str]]] = {
    Project: {
        "contact.city": ("contact__address_city", Contact, "address_city"),
        "contact.assigned_to": ("contact__assigned_to", Contact, "assigned_to"),
    },
    Activity: {
        "contact.stage": ("contact__stage", Contact, "stage"),
        "project.status": ("project__status", Project, "status"),
    },
}

CUSTOM_PREFIX = "custom_fields."
CUSTOM_KEY = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")  # no "__": it would be read as an ORM lookup
CUSTOM_KEY_MAX = 63


def _column_kind(field: models.Field) -> str | None:
    if isinstance(field, models.ForeignKey):
        target = field.related_model
        if target is not None and f"{target._meta.app_label}.{target.__name__}" == settings.AUTH_USER_MODEL:
            return Kind.USER
        if field.name == "substatus":
            return Kind.SUBSTATUS
        return None
    if isinstance(field, ArrayField):
        return Kind.ARRAY
    if isinstance(field, models.BooleanField):
        return Kind.BOOLEAN
    if isinstance(field, models.DateTimeField):
        return Kind.DATETIME
    if isinstance(field, models.DateField):
        return Kind.DATE
    if isinstance(field, models.IntegerField | models.DecimalField | models.FloatField):
        return Kind.NUMBER
    if isinstance(field, models.CharField | models.TextField):
        return Kind.CHOICE if field.choices else Kind.TEXT
    return None


def _spec(name: str, path: str, model: type[models.Model], column: str) -> FieldSpec | None:
    field = model._meta.get_field(column)
    if not isinstance(field, models.Field):
        return None
    kind = _column_kind(field)
    if kind is None:
        return None
    choices = tuple(str(value) for value, _ in field.choices) if kind == Kind.CHOICE and field.choices else ()
    integer = isinstance(field, models.IntegerField)
    return FieldSpec(name=name, path=path, kind=kind, choices=choices, model=model, integer=integer)


@cache
def entity_fields(entity_type: str) -> dict[str, FieldSpec]:
    """The whitelist of `entity_type`, without custom fields (see `field_spec`)."""
    model = ENTITY_MODELS[entity_type]
    fields: dict[str, FieldSpec] = {}
    for field in model._meta.concrete_fields:
        if field.name in _EXCLUDED or isinstance(field, models.GeneratedField):
            continue
        spec = _spec(field.name, field.name, model, field.name)
        if spec is not None:
            fields[field.name] = spec
    for name, (path, holder, column) in _RELATED.get(model, {}).items():
        spec = _spec(name, path, holder, column)
        if spec is not None:
            fields[name] = spec
    return fields


def custom_field_key(field_name: str) -> str | None:
    """The key of a `custom_fields.<key>` name, or None when the name is not one."""
    if not field_name.startswith(CUSTOM_PREFIX):
        return None
    return field_name.removeprefix(CUSTOM_PREFIX)


def field_spec(entity_type: str, field_name: str) -> FieldSpec | None:
    """The whitelist's entry for `field_name`, or None when the entity has no such field."""
    key = custom_field_key(field_name)
    if key is not None:
        model = ENTITY_MODELS[entity_type]
        if not any(field.name == "custom_fields" for field in model._meta.concrete_fields):
            return None
        if len(key) > CUSTOM_KEY_MAX or not CUSTOM_KEY.match(key):
            return None
        return FieldSpec(name=field_name, path=f"custom_fields__{key}", kind=Kind.CUSTOM, model=model)
    return entity_fields(entity_type).get(field_name)


def value_kind(spec: FieldSpec, field_type: str) -> str:
    """The kind a value is read as: a custom field's comes from its catalog entry's type."""
    if spec.kind != Kind.CUSTOM:
        return spec.kind
    kinds: dict[str, str] = {
        FieldType.NUMBER: Kind.NUMBER,
        FieldType.NUMBER_RANGE: Kind.NUMBER,
        FieldType.DATE: Kind.DATE,
        FieldType.DATE_RANGE: Kind.DATE,
        FieldType.BOOLEAN: Kind.BOOLEAN,
    }
    return kinds.get(field_type, Kind.TEXT)
