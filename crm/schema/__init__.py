"""Schema integrity: what the migrations describe compared with what a database holds.

- `introspection`: a snapshot of a database's schema, read from `pg_catalog`.
- `comparison`: two snapshots compared, with the normalisation that makes a freshly
  migrated database compare clean.
- `shadow`: a temporary database migrated from the migration graph, the reference.
- `check`: `schema_check` and `adopt_database` built from the three above.
- `report`: the text and JSON forms of a check's result.
- `lint`: the migration lint (`lint_migrations`).

This package is core plumbing: it imports no feature app.
"""
