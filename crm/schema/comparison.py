"""Two schema snapshots compared: what the migrations describe and what a database holds.

Objects are matched by kind and name, with these normalisations so that a database
migrated by Django, created by hand to the same schema, or restored from pg_dump,
compares clean:

- Index definitions are compared without the index's name (`CREATE INDEX ON ...`).
- A constraint or index whose name was generated (Django's hashed names such as
  `contacts_tenant_id_23e151d7_fk_tenants_id`, PostgreSQL's `contacts_pkey`,
  `users_username_key`, `contacts_roof_age_check`) matches an object of the same
  definition on the same table whatever that one is called: code never refers to such a
  name, Django finds those objects by their columns. A name a migration chose
  (`contacts_type_valid`) must match too, because a later migration drops it by name;
  the same definition under another name is reported as different.
- A list of varchar literals reads the same before and after a pg_dump round trip.

Anything else is compared as PostgreSQL prints it, so an expression written another
way (`email <> ''` for `NOT (email = '')`) is reported: recreate the object as the
migration writes it.
"""

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from crm.schema.introspection import KINDS, TABLE_KINDS, SchemaName, SchemaObject

UNTRACKED = "untracked"
MISSING = "missing"
DIFFERENT = "different"

DJANGO_GENERATED_NAME = re.compile(r"_[0-9a-f]{8}(_[a-z0-9_]+)?$")
POSTGRES_GENERATED_SUFFIX = re.compile(r"_(key|check|fkey)[0-9]*$")
LITERAL = re.compile(r"'(?:[^']|'')*'")
VARCHAR_ARRAY = re.compile(
    r"\(ARRAY\[(?:'(?:[^']|'')*'::character varying(?:, )?)+\]\)::text\[\]"
    r"|ARRAY\[(?:\('(?:[^']|'')*'::character varying\)::text(?:, )?)+\]"
)
INDEX_NAME = re.compile(r"^(CREATE (?:UNIQUE )?INDEX )(?:\"(?:[^\"]|\"\")+\"|\S+) ON ")


@dataclass(frozen=True)
class Difference(SchemaName):
    status: str  # UNTRACKED, MISSING or DIFFERENT
    expected: str | None  # the migrations' definition
    actual: str | None  # the database's definition

    @classmethod
    def of(cls, obj: SchemaObject, status: str, expected: str | None, actual: str | None) -> "Difference":
        return cls(obj.kind, obj.table, obj.name, status, expected, actual)


@dataclass
class Comparison:
    differences: list[Difference] = field(default_factory=list)
    ignored: list[Difference] = field(default_factory=list)

    def of_status(self, status: str) -> list[Difference]:
        return [difference for difference in self.differences if difference.status == status]


def is_generated_name(obj: SchemaObject) -> bool:
    """True when no code can depend on the name: PostgreSQL or Django made it up."""
    if obj.kind not in {"constraint", "index"}:
        return False
    if DJANGO_GENERATED_NAME.search(obj.name) or obj.name == f"{obj.table}_pkey":
        return True
    return (
        obj.kind == "constraint"
        and obj.name.startswith(f"{obj.table}_")
        and bool(POSTGRES_GENERATED_SUFFIX.search(obj.name))
    )


def varchar_array(match: re.Match) -> str:
    return f"ARRAY[{', '.join(LITERAL.findall(match[0]))}]::text[]"


def comparable(obj: SchemaObject) -> str:
    """The definition as compared: an index's without its own name, and a list of
    varchar literals (`x IN ('a', 'b')`) in one form whether or not it went through
    pg_dump, which reads Django's `(ARRAY['a'::character varying])::text[]` back as
    `ARRAY[('a'::character varying)::text]`."""
    definition = obj.definition
    if obj.kind == "index":
        definition = INDEX_NAME.sub(r"\1ON ", definition, count=1)
    if obj.kind in {"column", "constraint", "index", "view", "type"}:
        definition = VARCHAR_ARRAY.sub(varchar_array, definition)
    return definition


def matching_key(obj: SchemaObject) -> tuple[str, str, str]:
    return obj.kind, obj.table, comparable(obj)


def named(obj: SchemaObject) -> str:
    return f"{obj.name}: {comparable(obj)}"


def pair_by_name(expected: list[SchemaObject], actual: list[SchemaObject]) -> Iterable[Difference]:
    """Match objects of the same kind, table and name; consume the matched ones."""
    actual_by_key = {(obj.kind, obj.table, obj.name): obj for obj in actual}
    for obj in list(expected):
        other = actual_by_key.get((obj.kind, obj.table, obj.name))
        if other is None:
            continue
        expected.remove(obj)
        actual.remove(other)
        if comparable(obj) != comparable(other):
            yield Difference.of(obj, DIFFERENT, comparable(obj), comparable(other))


def pair_by_definition(expected: list[SchemaObject], actual: list[SchemaObject]) -> Iterable[Difference]:
    """Match constraints and indexes of the same table and definition under other names."""
    for obj in list(expected):
        if obj.kind not in {"constraint", "index"}:
            continue
        key = matching_key(obj)
        other = next((candidate for candidate in actual if matching_key(candidate) == key), None)
        if other is None:
            continue
        expected.remove(obj)
        actual.remove(other)
        if not is_generated_name(obj):
            yield Difference.of(obj, DIFFERENT, named(obj), named(other))


def compare(
    expected: Sequence[SchemaObject], actual: Sequence[SchemaObject], *, ignore: Sequence[str] = ()
) -> Comparison:
    """Compare `actual` (a database) with `expected` (the migrations).

    `ignore` holds `fnmatch` patterns over identifiers (`table:spatial_ref_sys`,
    `index:contacts.*_trgm`); ignoring a table ignores its columns, constraints, indexes
    and triggers. Ignored differences are returned apart, so a report can list them.
    """
    expected_left, actual_left = list(expected), list(actual)
    differences = [
        *pair_by_name(expected_left, actual_left),
        *pair_by_definition(expected_left, actual_left),
    ]
    # A table only one side has is one difference, not one per column.
    lone_tables = {obj.label for obj in [*expected_left, *actual_left] if obj.kind in TABLE_KINDS}
    for status, objects in ((MISSING, expected_left), (UNTRACKED, actual_left)):
        for obj in objects:
            if obj.table in lone_tables:
                continue
            definition = comparable(obj)
            differences.append(
                Difference.of(
                    obj,
                    status,
                    definition if status == MISSING else None,
                    definition if status == UNTRACKED else None,
                )
            )

    def ignored(difference: Difference) -> bool:
        return any(
            fnmatch.fnmatchcase(difference.identifier, pattern)
            or (difference.table and fnmatch.fnmatchcase(f"table:{difference.table}", pattern))
            for pattern in ignore
        )

    order = {kind: position for position, kind in enumerate(KINDS)}
    differences.sort(key=lambda difference: (order[difference.kind], difference.label))
    result = Comparison()
    for difference in differences:
        (result.ignored if ignored(difference) else result.differences).append(difference)
    return result
