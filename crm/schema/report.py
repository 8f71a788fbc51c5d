"""A check's result as text for people and as JSON for machines."""

import json

from crm.schema.check import Result
from crm.schema.comparison import DIFFERENT, MISSING, UNTRACKED, Difference

HEADINGS = {
    UNTRACKED: "untracked (in the database, not in the migrations)",
    MISSING: "missing (in the migrations, not in the database)",
    DIFFERENT: "different",
}


def one_line(definition: str) -> str:
    return " ".join(definition.split())


def difference_lines(difference: Difference) -> list[str]:
    title = f"  {difference.kind} {difference.label}"
    if difference.status == DIFFERENT:
        return [
            title,
            f"      migrations: {one_line(difference.expected or '')}",
            f"      database:   {one_line(difference.actual or '')}",
        ]
    definition = difference.expected if difference.status == MISSING else difference.actual
    if difference.kind in {"table", "extension"} or not definition:
        return [title]
    return [f"{title}: {one_line(definition)}"]


def as_text(result: Result, *, against: str) -> str:
    """`against` names the reference, e.g. "its 34 applied migrations"."""
    lines = [f'Database "{result.database}" compared with {against}.', ""]
    for status, heading in HEADINGS.items():
        differences = result.comparison.of_status(status)
        if differences:
            lines.append(f"{heading}: {len(differences)}")
            for difference in differences:
                lines.extend(difference_lines(difference))
            lines.append("")
    if result.applied_not_in_code:
        lines.append(f"migrations applied in the database, not in the code: {len(result.applied_not_in_code)}")
        lines.extend(f"  {name}" for name in result.applied_not_in_code)
        lines.append("")
    if result.not_applied:
        lines.append(f"migrations in the code, not applied: {len(result.not_applied)}")
        lines.extend(f"  {name}" for name in result.not_applied)
        lines.append("")
    if result.comparison.ignored:
        lines.append(f"ignored (SCHEMA_CHECK_IGNORE): {len(result.comparison.ignored)}")
        lines.extend(f"  {difference.status} {difference.identifier}" for difference in result.comparison.ignored)
        lines.append("")
    return "\n".join(lines) + "\n"


def difference_json(difference: Difference) -> dict:
    return {
        "kind": difference.kind,
        "object": difference.label,
        "migrations": difference.expected,
        "database": difference.actual,
    }


def as_json(result: Result) -> str:
    document = {
        "database": result.database,
        "clean": result.clean,
        **{status: [difference_json(d) for d in result.comparison.of_status(status)] for status in HEADINGS},
        "migration_records": {
            "applied_not_in_code": result.applied_not_in_code,
            "not_applied": result.not_applied,
        },
        "ignored": [
            {"status": difference.status, "object": difference.identifier} for difference in result.comparison.ignored
        ],
        "shadow_migrations": result.migrations,
        "seconds": round(result.seconds, 3),
    }
    return json.dumps(document, indent=2)
