"""The import's decisions, as pure functions: no database, tested on their own.

The I/O (legacy_import/importer.py) asks these what a stray value becomes, which substatus is
a status's default, and how to name a run; it applies the answers with set-based SQL.
"""

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from filters.fields import Kind, field_spec
from filters.language import GROUP_KEYS, CatalogField, normalise_flat, tree_validate

# The key, in a row's `custom_fields` (activities: `outcome_details`; tenants: `settings`),
# under which values Ridgeline has no place for are kept: {"<column>": <old value>, ...}.
PARKED_KEY = "legacy_import"


@dataclass(frozen=True)
class Choice:
    """A value list of the old system (no CHECK there) and where its stray values go."""

    values: tuple[str, ...]
    default: str | None  # what a parked value's column is set to
    synonyms: dict[str, str] = field(default_factory=dict)  # normalised spelling -> value


CHOICES: dict[tuple[str, str], Choice] = {
    ("tenants", "subscription_status"): Choice(
        ("trial", "active", "past_due", "cancelled", "suspended"), "trial", {"canceled": "cancelled"}
    ),
    ("tenant_users", "role"): Choice(
        ("owner", "admin", "manager", "member", "viewer"), "member", {"administrator": "admin"}
    ),
    ("contacts", "type"): Choice(("lead", "customer", "prospect"), "lead"),
    ("contacts", "stage"): Choice(
        ("new", "contacted", "qualified", "proposal", "negotiation", "won", "lost"),
        "new",
        {"closed_won": "won", "closed_lost": "lost"},
    ),
    ("contacts", "priority"): Choice(("low", "normal", "high", "urgent"), "normal", {"medium": "normal"}),
    ("projects", "status"): Choice(
        ("estimate", "approved", "scheduled", "in_progress", "completed", "cancelled"),
        "estimate",
        {"canceled": "cancelled", "complete": "completed", "inprogress": "in_progress"},
    ),
    ("projects", "type"): Choice(("repair", "replacement", "maintenance", "emergency"), None),
    ("activities", "type"): Choice(
        ("call", "email", "sms", "meeting", "note", "task", "door_knock"), "note", {"doorknock": "door_knock"}
    ),
    ("activities", "direction"): Choice(("inbound", "outbound"), None),
}


def normalised(raw: str) -> str:
    """`In Progress`, `in-progress` and ` IN_PROGRESS ` all read `in_progress`."""
    return re.sub(r"[\s\-]+", "_", raw.strip().lower())


@dataclass(frozen=True)
class Mapped:
    value: str | None
    parked: bool  # the old value goes to the row's PARKED_KEY and `value` is the default


def map_value(choice: Choice, raw: str | None) -> Mapped:
    """What an old value becomes: itself, a certain mapping (case, separators, synonyms) or parked."""
    if raw is None or raw in choice.values:
        return Mapped(raw if raw is not None else choice.default, parked=False)
    key = normalised(raw)
    if key in choice.values:
        return Mapped(key, parked=False)
    if key in choice.synonyms:
        return Mapped(choice.synonyms[key], parked=False)
    return Mapped(choice.default, parked=True)


ENTITIES = {"contacts": "contact", "projects": "project"}


@dataclass(frozen=True)
class CatalogRow:
    """One row of the old status_substatus_configs, its status already mapped."""

    old_id: str
    tenant: str
    entity: str  # Ridgeline's: contact, project
    status: str
    key: str
    display_order: int
    is_default: bool
    is_active: bool


@dataclass(frozen=True)
class CatalogDecision:
    tenant: str
    entity: str
    status: str
    default_old_id: str
    marked: int  # how many rows the old catalog marked default in this status

    def describe(self) -> str:
        why = {0: "none was marked: the first by display order"}.get(self.marked, f"{self.marked} were marked")
        return f"{self.entity} {self.status}: default {self.default_old_id} ({why})"


def catalog_defaults(rows: Iterable[CatalogRow]) -> list[CatalogDecision]:
    """Exactly one default per tenant, entity and status: the first marked one, else the first.

    "First" is by display order then old id. A default must be active: an inactive marked row
    counts only when no active one is marked.
    """
    groups: dict[tuple[str, str, str], list[CatalogRow]] = defaultdict(list)
    for row in rows:
        groups[(row.tenant, row.entity, row.status)].append(row)
    decisions = []
    for (tenant, entity, status), members in sorted(groups.items()):
        ordered = sorted(members, key=lambda row: (not row.is_active, row.display_order, row.old_id))
        marked = [row for row in ordered if row.is_default]
        chosen = (marked or ordered)[0]
        decisions.append(CatalogDecision(tenant, entity, status, chosen.old_id, len(marked)))
    return decisions


@dataclass(frozen=True)
class TenantFilterContext:
    """What converting one old saved filter needs of its tenant (read by the importer)."""

    catalog: dict[str, CatalogField]  # the tenant's filter catalog for the filter's entity, by field name
    users: dict[str, int]  # old user uuid -> Ridgeline user id (imported users)
    members: frozenset[int]  # the tenant's members (user ids), current or former
    substatuses: dict[str, list[int]]  # substatus key -> the tenant's substatus ids of the entity


def _translated(node: Any, entity_type: str, context: TenantFilterContext) -> Any:
    """The tree with old user uuids and substatus keys as Ridgeline ids where the answer is certain."""
    if not isinstance(node, dict):
        return node
    groups = [key for key in GROUP_KEYS if key in node]
    if groups and len(node) == 1:
        key = groups[0]
        children = node[key]
        if key == "not":
            return {"not": _translated(children, entity_type, context)}
        if isinstance(children, list):
            return {key: [_translated(child, entity_type, context) for child in children]}
        return node
    name = node.get("field")
    spec = field_spec(entity_type, name) if isinstance(name, str) and name in context.catalog else None
    if spec is None or "value" not in node or spec.kind not in (Kind.USER, Kind.SUBSTATUS):
        return node

    def one(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if spec.kind == Kind.USER:
            return context.users.get(value, value)
        ids = context.substatuses.get(value, [])
        return ids[0] if len(ids) == 1 else value

    value = node["value"]
    return {**node, "value": [one(item) for item in value] if isinstance(value, list) else one(value)}


def convert_filter(raw: Any, entity_type: str, context: TenantFilterContext) -> tuple[Any, list[str]]:
    """An old saved filter's criteria as a Ridgeline filter tree, or the problems that prevent it.

    The old flat format becomes an AND tree (`filters.language.normalise_flat`), old user uuids
    become the imported users' ids and substatus keys the tenant's substatus ids (when one key
    names one substatus); then the tree is validated as the filters app validates a saved one
    (the tenant's catalog, members and substatuses). Precondition: none; any JSON is accepted.
    """
    tree = _translated(normalise_flat(raw), entity_type, context)
    normalised, state = tree_validate(tree=tree, entity_type=entity_type, catalog=context.catalog)
    errors = list(state.errors)
    if not errors:
        known = {substatus for ids in context.substatuses.values() for substatus in ids}
        for user_id, paths in state.user_ids.items():
            if user_id not in context.members:
                errors += [f"{path}: user {user_id} is not a member of this tenant" for path in paths]
        for substatus_id, paths in state.substatus_ids.items():
            if substatus_id not in known:
                errors += [f"{path}: substatus {substatus_id} is not one of this tenant's" for path in paths]
    return normalised, errors


def run_key(source: str, tenants: Sequence[str]) -> str:
    """Names a run (its checkpoints): the source without its password, and the tenants asked for."""
    return hashlib.sha256("\n".join([source, *sorted(tenants)]).encode()).hexdigest()[:64]


@dataclass
class TableReport:
    table: str
    read: int = 0
    written: int = 0
    skipped: int = 0  # imported by an earlier run
    refused: int = 0
    seconds: float = 0.0
    source_rows: int = 0
    target_rows: int = 0  # rows of the import's mapping for this table, after the run

    def progress(self) -> str:
        return (
            f"{self.table:<26} read {self.read:>9}  written {self.written:>9}  skipped {self.skipped:>9}  "
            f"refused {self.refused:>6}  {self.seconds:8.2f} s"
        )


@dataclass
class Report:
    tables: dict[str, TableReport] = field(default_factory=dict)
    # (table, column, old value) -> (new value, rows, parked)
    values: dict[tuple[str, str, str], tuple[str | None, int, bool]] = field(default_factory=dict)
    refused: list[dict[str, str]] = field(default_factory=list)  # table, old_id, reason
    # Imported rows with a part Ridgeline cannot use kept as it was: table, old_id, reason
    parked_rows: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def table(self, name: str) -> TableReport:
        return self.tables.setdefault(name, TableReport(name))

    def value(self, table: str, column: str, raw: str, mapped: Mapped, rows: int) -> None:
        _, before, _ = self.values.get((table, column, raw), (None, 0, False))
        self.values[(table, column, raw)] = (mapped.value, before + rows, mapped.parked)

    def refuse(self, table: str, old_id: str, reason: str) -> None:
        self.refused.append({"table": table, "old_id": old_id, "reason": reason})

    def park_row(self, table: str, old_id: str, reason: str) -> None:
        self.parked_rows.append({"table": table, "old_id": old_id, "reason": reason})

    def as_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "tables": {
                name: {
                    "old": t.source_rows,
                    "new": t.target_rows,
                    "read": t.read,
                    "written": t.written,
                    "skipped": t.skipped,
                    "refused": t.refused,
                    "seconds": round(t.seconds, 3),
                }
                for name, t in self.tables.items()
            },
            "values": [
                {"table": table, "column": column, "old": raw, "new": new, "rows": rows, "parked": parked}
                for (table, column, raw), (new, rows, parked) in sorted(self.values.items())
            ],
            "refused": self.refused,
            "parked_rows": self.parked_rows,
            "notes": self.notes,
        }

    def as_text(self) -> str:
        lines = ["Import report" + (" (--dry-run: nothing was written)" if self.dry_run else ""), ""]
        lines.append(f"{'table':<26} {'old':>9} {'imported':>9} {'refused':>8}")
        for name, t in self.tables.items():
            lines.append(f"{name:<26} {t.source_rows:>9} {t.target_rows:>9} {t.refused:>8}")
        if self.values:
            lines += ["", f"Values mapped or parked (parked ones are kept under custom_fields.{PARKED_KEY}):"]
            for (table, column, raw), (new, rows, parked) in sorted(self.values.items()):
                how = f"parked, {column} set to {new!r}" if parked else f"mapped to {new!r}"
                lines.append(f"  {table}.{column} {raw!r}: {how} ({rows} rows)")
        if self.refused:
            lines += ["", f"Refused rows ({len(self.refused)}):"]
            lines += [f"  {r['table']} {r['old_id']}: {r['reason']}" for r in self.refused]
        if self.parked_rows:
            lines += ["", f"Imported with a part kept as it was ({len(self.parked_rows)}):"]
            lines += [f"  {r['table']} {r['old_id']}: {r['reason']}" for r in self.parked_rows]
        if self.notes:
            lines += ["", "Notes:", *(f"  {note}" for note in self.notes)]
        return "\n".join(lines)
