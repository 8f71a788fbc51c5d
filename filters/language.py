"""The filter language: a JSON tree, validated against the tenant's catalog, compiled to one `Q`.

A tree is a condition `{"field", "op", "value"}` or a group `{"and": [...]}`, `{"or": [...]}`,
`{"not": {...}}`. The old system's flat format (`{"stage": {"operator": "in", "value": [...]}}`,
an AND of its fields) is normalised into a tree first. Every problem is reported at once, each
prefixed with the path of its node in the normalised tree (`and[1].or[0].value: ...`).

Nothing is interpolated into SQL: fields map to whitelisted ORM paths (`filters.fields`),
operators to fixed lookups, and values are parameters.
"""

import datetime as dt
import decimal
import math
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from crm.errors import ApplicationError
from filters.fields import KIND_FIELD_TYPES, FieldSpec, Kind, field_spec, value_kind
from filters.models import FieldType
from filters.operators import (
    DAYS_OPS,
    LIST_OPS,
    NEGATED_OPS,
    NO_VALUE_OPS,
    RELATIVE_OPS,
    Op,
    operators_for,
)

MAX_DEPTH = 5
MAX_CONDITIONS = 50
MAX_LIST = 500
MAX_TEXT = 255
MAX_DAYS = 3650
ME = "me"
GROUP_KEYS = ("and", "or", "not")
CONDITION_KEYS = frozenset({"field", "op", "value"})


class FilterError(ApplicationError):
    """A tree that is not valid; `messages` holds one line per problem, each naming its node's path."""

    default_code = "invalid_filter"


@dataclass(frozen=True)
class CatalogField:
    """What the language needs of a catalog entry."""

    id: int
    field_name: str
    field_label: str
    field_type: str
    is_active: bool


@dataclass(frozen=True)
class Condition:
    """A validated condition: its path in the tree, its catalog entry and its normalised value."""

    path: str
    field: str
    op: str
    value: Any
    config_id: int


@dataclass(frozen=True)
class Compiled:
    tree: dict[str, Any]  # the normalised tree (JSON)
    q: Q
    conditions: list[Condition]


@dataclass
class _Parsed:
    """A condition after validation, before the member and substatus checks."""

    path: str
    spec: FieldSpec
    entry: CatalogField
    op: str
    value: Any  # Python value: date, Decimal, int, str, bool, list or pair of those
    json_value: Any  # the value as the normalised tree holds it


@dataclass
class _State:
    errors: list[str] = field(default_factory=list)
    conditions: list[_Parsed] = field(default_factory=list)
    user_ids: dict[int, list[str]] = field(default_factory=dict)
    substatus_ids: dict[int, list[str]] = field(default_factory=dict)


def normalise_flat(tree: Any) -> Any:
    """The old saved-filter format (`{field: {"operator", "value"}}`) as an AND tree; a tree as is."""
    if not isinstance(tree, dict) or not tree:
        return tree
    if any(key in tree for key in (*GROUP_KEYS, "field")):
        return tree
    conditions: list[Any] = []
    for name, spec in tree.items():
        if isinstance(spec, dict) and set(spec) <= {"operator", "value"}:
            condition: dict[str, Any] = {"field": name, "op": spec.get("operator")}
            if "value" in spec:
                condition["value"] = spec["value"]
            conditions.append(condition)
        else:
            conditions.append({"field": name, "op": spec})
    return {"and": conditions}


def _at(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Validator:
    def __init__(self, *, entity_type: str, catalog: dict[str, CatalogField]) -> None:
        self.entity_type = entity_type
        self.catalog = catalog
        self.state = _State()

    def node(self, node: Any, path: str, depth: int) -> Any:
        """Validate `node`; return its normalised form (None when it is not a node at all)."""
        errors = self.state.errors
        if not isinstance(node, dict):
            errors.append(f"{path or 'filter'}: expected an object (a condition, or and / or / not)")
            return None
        groups = [key for key in GROUP_KEYS if key in node]
        if groups:
            if len(node) != 1:
                errors.append(f"{path or 'filter'}: a group has exactly one key (and, or or not); got {sorted(node)}")
                return None
            key = groups[0]
            if depth >= MAX_DEPTH:
                errors.append(f"{path or 'filter'}: nested deeper than {MAX_DEPTH} levels")
                return None
            child_path = _at(path, key)
            if key == "not":
                return {"not": self.node(node["not"], child_path, depth + 1)}
            children = node[key]
            if not isinstance(children, list):
                errors.append(f"{child_path}: expected a list of conditions")
                return None
            if key == "or" and not children:
                errors.append(f"{child_path}: an or needs at least one condition")
                return None
            return {key: [self.node(child, f"{child_path}[{i}]", depth + 1) for i, child in enumerate(children)]}
        return self.condition(node, path)

    def condition(self, node: dict[str, Any], path: str) -> Any:
        errors = self.state.errors
        unknown = sorted(str(key) for key in node if key not in CONDITION_KEYS)
        if unknown:
            errors.append(f"{path or 'filter'}: unknown key(s) {', '.join(_short(key) for key in unknown)}")
            return None
        name, op = node.get("field"), node.get("op")
        if not isinstance(name, str):
            errors.append(f"{_at(path, 'field')}: expected a field name")
            return None
        entry = self.catalog.get(name)
        spec = field_spec(self.entity_type, name) if entry is not None else None
        if entry is None or spec is None:
            errors.append(f"{_at(path, 'field')}: unknown field {_short(name)} for {self.entity_type}")
            return None
        if not entry.is_active:
            errors.append(f"{_at(path, 'field')}: the filter {name!r} is inactive")
            return None
        allowed = operators_for(entry.field_type, array=spec.kind == Kind.ARRAY)
        if not isinstance(op, str) or op not in allowed:
            errors.append(
                f"{_at(path, 'op')}: {_short(op)} is not an operator of {entry.field_type} fields; "
                f"use one of: {', '.join(allowed)}"
            )
            return None
        parsed = self.value(path, spec, entry, op, node.get("value"), "value" in node)
        if parsed is None:
            return None
        self.state.conditions.append(parsed)
        condition: dict[str, Any] = {"field": name, "op": op}
        if op not in NO_VALUE_OPS:
            condition["value"] = parsed.json_value
        return condition

    def value(
        self, path: str, spec: FieldSpec, entry: CatalogField, op: str, raw: Any, present: bool
    ) -> _Parsed | None:
        at = _at(path, "value")
        errors = self.state.errors
        kind = value_kind(spec, entry.field_type)

        def parsed(value: Any, json_value: Any) -> _Parsed:
            return _Parsed(path=path, spec=spec, entry=entry, op=op, value=value, json_value=json_value)

        if op in NO_VALUE_OPS:
            if present and raw is not None:
                errors.append(f"{at}: {op} takes no value")
                return None
            return parsed(None, None)
        if op in DAYS_OPS:
            if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_DAYS:
                errors.append(f"{at}: expected a whole number of days from 1 to {MAX_DAYS}")
                return None
            return parsed(raw, raw)
        if op in LIST_OPS:
            if not isinstance(raw, list) or not raw or len(raw) > MAX_LIST:
                errors.append(f"{at}: expected a list of 1 to {MAX_LIST} values")
                return None
            items = [self.scalar(f"{at}[{i}]", kind, spec, item) for i, item in enumerate(raw)]
            if any(item is None for item in items):
                return None
            return parsed([item[0] for item in items if item], [item[1] for item in items if item])
        if op == Op.BETWEEN:
            if not isinstance(raw, list) or len(raw) != 2:
                errors.append(f"{at}: expected [low, high]")
                return None
            low, high = (self.scalar(f"{at}[{i}]", kind, spec, item) for i, item in enumerate(raw))
            if low is None or high is None:
                return None
            if low[0] > high[0]:
                errors.append(f"{at}: expected [low, high] with low not above high")
                return None
            return parsed((low[0], high[0]), [low[1], high[1]])
        if op in (Op.CONTAINS, Op.NOT_CONTAINS, Op.STARTS_WITH, Op.ENDS_WITH) and raw == "":
            errors.append(f"{at}: expected some text")
            return None
        item = self.scalar(at, kind, spec, raw)
        return None if item is None else parsed(item[0], item[1])

    def scalar(self, at: str, kind: str, spec: FieldSpec, raw: Any) -> tuple[Any, Any] | None:
        """(Python value, JSON value) of one value, or None after recording the error."""
        errors = self.state.errors
        if kind in (Kind.TEXT, Kind.ARRAY):
            if not isinstance(raw, str) or len(raw) > MAX_TEXT:
                errors.append(f"{at}: expected text of at most {MAX_TEXT} characters")
                return None
            return raw, raw
        if kind == Kind.CHOICE:
            if not isinstance(raw, str) or raw not in spec.choices:
                errors.append(f"{at}: expected one of: {', '.join(spec.choices)}")
                return None
            return raw, raw
        if kind == Kind.NUMBER:
            if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
                errors.append(f"{at}: expected a number")
                return None
            if spec.integer and raw != int(raw):
                errors.append(f"{at}: expected a whole number")
                return None
            return decimal.Decimal(str(raw)), raw
        if kind in (Kind.DATE, Kind.DATETIME):
            try:
                day = dt.date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
            except ValueError:
                day = None
            if day is None:
                errors.append(f"{at}: expected a date (YYYY-MM-DD)")
                return None
            return day, day.isoformat()
        if kind == Kind.BOOLEAN:
            if not isinstance(raw, bool):
                errors.append(f"{at}: expected true or false")
                return None
            return raw, raw
        if kind == Kind.USER:
            if raw == ME:
                return ME, ME
            if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                errors.append(f'{at}: expected a user id or "me"')
                return None
            self.state.user_ids.setdefault(raw, []).append(at)
            return raw, raw
        if kind == Kind.SUBSTATUS:
            if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                errors.append(f"{at}: expected a substatus id")
                return None
            self.state.substatus_ids.setdefault(raw, []).append(at)
            return raw, raw
        raise ValueError(f"no reader for the kind {kind!r}")


# Compiling -------------------------------------------------------------------------------


def _period(op: str, days: int | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """A relative date operator as local dates [start, end)."""
    one = dt.timedelta(days=1)
    if op == Op.TODAY:
        return today, today + one
    if op == Op.YESTERDAY:
        return today - one, today
    if op == Op.LAST_N_DAYS:
        return today - (days or 1) * one + one, today + one
    if op == Op.NEXT_N_DAYS:
        return today, today + (days or 1) * one
    monday = today - today.weekday() * one
    if op == Op.THIS_WEEK:
        return monday, monday + 7 * one
    if op == Op.LAST_WEEK:
        return monday - 7 * one, monday
    first = today.replace(day=1)
    if op == Op.THIS_MONTH:
        return first, _add_months(first, 1)
    if op == Op.LAST_MONTH:
        return _add_months(first, -1), first
    if op == Op.THIS_QUARTER:
        start = first.replace(month=(first.month - 1) // 3 * 3 + 1)
        return start, _add_months(start, 3)
    if op == Op.THIS_YEAR:
        return today.replace(month=1, day=1), today.replace(year=today.year + 1, month=1, day=1)
    raise ValueError(f"{op!r} is not a relative date operator")


def _add_months(first: dt.date, months: int) -> dt.date:
    index = first.year * 12 + first.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


class _Builder:
    def __init__(self, *, zone: zoneinfo.ZoneInfo, now: dt.datetime, user_id: int | None) -> None:
        self.zone = zone
        self.today = now.astimezone(zone).date()
        self.user_id = user_id

    def bound(self, spec: FieldSpec, day: dt.date) -> Any:
        """Where a local day starts, as the column compares it."""
        if spec.kind == Kind.DATETIME:
            return dt.datetime.combine(day, dt.time.min, tzinfo=self.zone)
        if spec.kind == Kind.CUSTOM:
            return day.isoformat()
        return day

    def empty(self, spec: FieldSpec, kind: str) -> Q:
        """NULL, and for text and arrays also empty (what "is empty" means to a person)."""
        q = Q(**{f"{spec.path}__isnull": True})
        if spec.kind == Kind.CUSTOM:
            q |= Q(**{spec.path: None})
        if kind in (Kind.TEXT, Kind.CHOICE):
            q |= Q(**{spec.path: ""})
        if kind == Kind.ARRAY:
            q |= Q(**{spec.path: []})
        return q

    def positive(self, parsed: _Parsed, kind: str, op: str) -> Q:
        spec, value, path = parsed.spec, parsed.value, parsed.spec.path
        text = kind == Kind.TEXT
        if kind == Kind.USER:
            value = [self.me(item) for item in value] if isinstance(value, list) else self.me(value)
        if spec.kind == Kind.CUSTOM and kind == Kind.NUMBER:
            value = [float(item) for item in value] if isinstance(value, list | tuple) else float(value)
        dated = kind in (Kind.DATE, Kind.DATETIME)
        if dated and (spec.kind in (Kind.DATETIME, Kind.CUSTOM)) and op in (Op.EQUALS, Op.NOT_EQUALS):
            day: dt.date = value
            return Q(**{f"{path}__gte": self.bound(spec, day), f"{path}__lt": self.bound(spec, day + dt.timedelta(1))})
        if op in (Op.EQUALS, Op.NOT_EQUALS):
            return Q(**{f"{path}__iexact" if text else path: value})
        if op in (Op.CONTAINS, Op.NOT_CONTAINS):
            return Q(**{f"{path}__icontains": value})
        if op == Op.STARTS_WITH:
            return Q(**{f"{path}__istartswith": value})
        if op == Op.ENDS_WITH:
            return Q(**{f"{path}__iendswith": value})
        if op in (Op.IN, Op.NOT_IN):
            if text:
                q = Q()
                for item in value:
                    q |= Q(**{f"{path}__iexact": item})
                return q
            return Q(**{f"{path}__in": value})
        if op in (Op.ANY_OF, Op.NONE_OF):
            return Q(**{f"{path}__overlap": value})
        if op == Op.ALL_OF:
            return Q(**{f"{path}__contains": value})
        if dated:
            return self.dated(spec, op, value)
        lookup = {
            Op.GREATER_THAN: "gt",
            Op.GREATER_THAN_OR_EQUAL: "gte",
            Op.LESS_THAN: "lt",
            Op.LESS_THAN_OR_EQUAL: "lte",
        }.get(op)
        if lookup is not None:
            return Q(**{f"{path}__{lookup}": value})
        if op == Op.BETWEEN:
            return Q(**{f"{path}__gte": value[0], f"{path}__lte": value[1]})
        raise ValueError(f"no compiler for {op!r} on {kind}")

    def dated(self, spec: FieldSpec, op: str, value: Any) -> Q:
        """Date comparisons on whole local days: [start, end) bounds that suit dates and timestamps alike."""
        path, one = spec.path, dt.timedelta(days=1)
        if op in RELATIVE_OPS:
            start, end = _period(op, value, self.today)
            return Q(**{f"{path}__gte": self.bound(spec, start), f"{path}__lt": self.bound(spec, end)})
        if op == Op.GREATER_THAN:
            return Q(**{f"{path}__gte": self.bound(spec, value + one)})
        if op == Op.GREATER_THAN_OR_EQUAL:
            return Q(**{f"{path}__gte": self.bound(spec, value)})
        if op == Op.LESS_THAN:
            return Q(**{f"{path}__lt": self.bound(spec, value)})
        if op == Op.LESS_THAN_OR_EQUAL:
            return Q(**{f"{path}__lt": self.bound(spec, value + one)})
        if op == Op.BETWEEN:
            return Q(**{f"{path}__gte": self.bound(spec, value[0]), f"{path}__lt": self.bound(spec, value[1] + one)})
        raise ValueError(f"no date compiler for {op!r}")

    def me(self, value: Any) -> Any:
        return self.user_id if value == ME else value

    def condition(self, parsed: _Parsed) -> Q:
        kind = value_kind(parsed.spec, parsed.entry.field_type)
        if parsed.op == Op.IS_NULL:
            return self.empty(parsed.spec, kind)
        if parsed.op == Op.IS_NOT_NULL:
            return ~self.empty(parsed.spec, kind)
        q = self.positive(parsed, kind, parsed.op)
        if parsed.op in NEGATED_OPS:
            return ~q | self.empty(parsed.spec, kind)
        return q

    def tree(self, node: dict[str, Any], parsed: list[_Parsed]) -> Q:
        """`node` (normalised) as a Q; `parsed` yields its conditions in document order."""
        if "and" in node or "or" in node:
            key = "and" if "and" in node else "or"
            children = [self.tree(child, parsed) for child in node[key]]
            if not children:
                return Q()
            combined = children[0]
            for child in children[1:]:
                combined = combined & child if key == "and" else combined | child
            return combined
        if "not" in node:
            return ~self.tree(node["not"], parsed)
        return self.condition(parsed.pop(0))


def tree_validate(*, tree: Any, entity_type: str, catalog: dict[str, CatalogField]) -> tuple[Any, _State]:
    """The normalised tree and what validation found (errors, conditions, ids to check)."""
    validator = _Validator(entity_type=entity_type, catalog=catalog)
    normalised = validator.node(normalise_flat(tree), "", 0)
    count = len(validator.state.conditions)
    if count > MAX_CONDITIONS:
        validator.state.errors.append(f"filter: {count} conditions; at most {MAX_CONDITIONS}")
    return normalised, validator.state


def tree_compile(
    *, normalised: dict[str, Any], state: _State, zone: zoneinfo.ZoneInfo, now: dt.datetime, user_id: int | None
) -> Compiled:
    """Precondition: `state` has no errors (`tree_validate` and the member checks passed)."""
    builder = _Builder(zone=zone, now=now, user_id=user_id)
    q = builder.tree(normalised, list(state.conditions))
    conditions = [
        Condition(path=p.path, field=p.entry.field_name, op=p.op, value=p.json_value, config_id=p.entry.id)
        for p in state.conditions
    ]
    return Compiled(tree=normalised, q=q, conditions=conditions)


# The catalog's own checks ------------------------------------------------------------------


def catalog_field_check(*, entity_type: str, field_name: str, field_type: str) -> FieldSpec:
    """The whitelist's spec for a catalog entry; ApplicationError naming the field when refused."""
    spec = field_spec(entity_type, field_name)
    if spec is None:
        raise ApplicationError(
            f"{field_name!r} is not a field {entity_type} can be filtered on.", code="invalid", attr="field_name"
        )
    if field_type not in KIND_FIELD_TYPES[spec.kind]:
        allowed = ", ".join(sorted(KIND_FIELD_TYPES[spec.kind]))
        raise ApplicationError(
            f"{field_name!r} cannot be a {field_type} filter; use one of: {allowed}.", code="invalid", attr="field_type"
        )
    return spec


def uses_array_operators(entity_type: str, field_name: str) -> bool:
    spec = field_spec(entity_type, field_name)
    return spec is not None and spec.kind == Kind.ARRAY


def is_select(field_type: str) -> bool:
    return field_type in (FieldType.SELECT, FieldType.MULTI_SELECT)
