"""A snapshot of a database's schema, read from `pg_catalog`.

The snapshot covers the schema Django creates its tables in (`current_schema()`):
tables, views, sequences that no column owns, columns, constraints, indexes, triggers,
functions, enum and domain types, plus the database's extensions. Objects that belong to
an extension are left out (the extension itself is in the snapshot), and so are the
trigger functions PostgreSQL ships in `pg_catalog`.

Definitions come from PostgreSQL's own deparsers (`format_type`, `pg_get_expr`,
`pg_get_constraintdef`, `pg_get_indexdef`, `pg_get_triggerdef`, `pg_get_functiondef`,
`pg_get_viewdef`), so two databases built by different SQL that means the same thing
produce the same text.
"""

from dataclasses import dataclass
from typing import Any

# Objects that belong to an extension (pg_depend deptype 'e') are left out of every
# query: the extension stands for them.

# Kinds in the order a report lists them.
KINDS = (
    "extension",
    "type",
    "table",
    "view",
    "sequence",
    "column",
    "constraint",
    "index",
    "trigger",
    "function",
)
TABLE_KINDS = frozenset({"table", "view"})


@dataclass(frozen=True)
class SchemaName:
    """Which object of a schema: `table` is the owning table for columns, constraints,
    indexes and triggers, and empty for everything else."""

    kind: str
    table: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.table}.{self.name}" if self.table else self.name

    @property
    def identifier(self) -> str:
        """`kind:label`, the form `SCHEMA_CHECK_IGNORE` patterns match."""
        return f"{self.kind}:{self.label}"


@dataclass(frozen=True, order=True)
class SchemaObject(SchemaName):
    """One object of a schema and its definition as PostgreSQL prints it."""

    definition: str


RELATIONS = """
SELECT c.relname, c.relkind, c.relpersistence,
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END
FROM pg_class c
WHERE c.relnamespace = %(schema)s::regnamespace
  AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S')
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
  )
  AND NOT (
      c.relkind = 'S' AND EXISTS (
          SELECT 1 FROM pg_depend d
          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
            AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
      )
  )
"""

COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE c.relnamespace = %(schema)s::regnamespace
  AND c.relkind IN ('r', 'p', 'f')
  AND a.attnum > 0 AND NOT a.attisdropped
"""

CONSTRAINTS = """
SELECT c.relname, con.conname, pg_get_constraintdef(con.oid)
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
WHERE c.relnamespace = %(schema)s::regnamespace
  AND con.contype IN ('p', 'u', 'f', 'c', 'x')
"""

# Indexes that implement a primary key, unique or exclusion constraint are compared as
# that constraint.
INDEXES = """
SELECT t.relname, i.relname, pg_get_indexdef(ix.indexrelid), ix.indisvalid
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
JOIN pg_class t ON t.oid = ix.indrelid
WHERE t.relnamespace = %(schema)s::regnamespace
  AND NOT EXISTS (
      SELECT 1 FROM pg_constraint con
      WHERE con.conindid = ix.indexrelid AND con.conrelid = ix.indrelid
        AND con.contype IN ('p', 'u', 'x')
  )
"""

TRIGGERS = """
SELECT c.relname, tg.tgname, pg_get_triggerdef(tg.oid), tg.tgenabled
FROM pg_trigger tg
JOIN pg_class c ON c.oid = tg.tgrelid
WHERE c.relnamespace = %(schema)s::regnamespace AND NOT tg.tgisinternal
"""

# The schema's own functions, and the functions its triggers call wherever they live.
FUNCTIONS = """
SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid)
FROM pg_proc p
JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE p.prokind IN ('f', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  )
  AND (
      p.pronamespace = %(schema)s::regnamespace
      OR p.oid IN (
          SELECT tg.tgfoid FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
          WHERE c.relnamespace = %(schema)s::regnamespace AND NOT tg.tgisinternal
      )
  )
"""

TYPES = """
SELECT t.typname, t.typtype,
       CASE t.typtype
           WHEN 'e' THEN (
               SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
               FROM pg_enum e WHERE e.enumtypid = t.oid
           )
           ELSE concat_ws(
               ' ',
               format_type(t.typbasetype, t.typtypmod),
               CASE WHEN t.typnotnull THEN 'NOT NULL' END,
               'DEFAULT ' || t.typdefault,
               (
                   SELECT string_agg(pg_get_constraintdef(con.oid), ' ' ORDER BY con.conname)
                   FROM pg_constraint con WHERE con.contypid = t.oid
               )
           )
       END
FROM pg_type t
WHERE t.typnamespace = %(schema)s::regnamespace
  AND t.typtype IN ('e', 'd')
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
  )
"""

EXTENSIONS = """
SELECT e.extname, n.nspname
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
"""

RELATION_KINDS = {
    "r": "table",
    "p": "table",
    "f": "table",
    "v": "view",
    "m": "view",
    "S": "sequence",
}
RELATION_DEFINITIONS = {
    "p": "partitioned table",
    "f": "foreign table",
    "m": "materialized view",
}
TRIGGER_STATES = {"D": "disabled", "R": "enabled on replica only", "A": "enabled always"}


def column_definition(
    data_type: str,
    not_null: bool,
    default: str | None,
    identity: str,
    generated: str,
    collation: str | None,
) -> str:
    parts = [data_type]
    if collation:
        parts.append(f'COLLATE "{collation}"')
    if not_null:
        parts.append("NOT NULL")
    if generated == "s":
        parts.append(f"GENERATED ALWAYS AS ({default}) STORED")
    elif default is not None:
        parts.append(f"DEFAULT {default}")
    if identity:
        parts.append("GENERATED ALWAYS AS IDENTITY" if identity == "a" else "GENERATED BY DEFAULT AS IDENTITY")
    return " ".join(parts)


def introspect(cursor: Any) -> list[SchemaObject]:
    """Snapshot the schema `cursor`'s connection creates tables in.

    `cursor` is any DB-API cursor on PostgreSQL (Django's or psycopg's).
    """
    cursor.execute("SELECT current_schema()")
    schema = cursor.fetchone()[0]
    params = {"schema": schema}

    def rows(query: str) -> list[tuple]:
        cursor.execute(query, params)
        return cursor.fetchall()

    objects: list[SchemaObject] = []
    tables: set[str] = set()
    for name, relkind, persistence, view_definition in rows(RELATIONS):
        kind = RELATION_KINDS[relkind]
        definition = RELATION_DEFINITIONS.get(relkind, kind)
        if persistence == "u":
            definition = f"unlogged {definition}"
        if view_definition is not None:
            definition = f"{definition}: {view_definition.strip()}"
        objects.append(SchemaObject(kind, "", name, definition))
        if kind in TABLE_KINDS:
            tables.add(name)

    for table, name, *attributes in rows(COLUMNS):
        if table in tables:
            objects.append(SchemaObject("column", table, name, column_definition(*attributes)))
    for table, name, definition in rows(CONSTRAINTS):
        if table in tables:
            objects.append(SchemaObject("constraint", table, name, definition))
    for table, name, definition, valid in rows(INDEXES):
        if table in tables:
            objects.append(SchemaObject("index", table, name, definition if valid else f"{definition} -- INVALID"))
    for table, name, definition, enabled in rows(TRIGGERS):
        if table in tables:
            state = TRIGGER_STATES.get(enabled)
            objects.append(SchemaObject("trigger", table, name, f"{definition} -- {state}" if state else definition))
    for signature, definition in rows(FUNCTIONS):
        objects.append(SchemaObject("function", "", signature, definition.strip()))
    for name, typtype, definition in rows(TYPES):
        objects.append(SchemaObject("type", "", name, f"{'enum' if typtype == 'e' else 'domain'} {definition}"))
    for name, extension_schema in rows(EXTENSIONS):
        objects.append(SchemaObject("extension", "", name, f"in schema {extension_schema}"))
    return sorted(objects)
