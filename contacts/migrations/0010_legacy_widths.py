"""Contacts at the old system's widths: `email` varchar(255), `latitude` numeric(10,8),
`longitude` numeric(11,8), `lead_score` any integer, `tags` text[].

PostgreSQL cannot make these changes in its catalog alone: a numeric's scale (6 to 8 decimals),
smallint to integer and varchar(50)[] to text[] change how every row is stored, and it refuses
to change the type of `email` while the stored generated `search` column and the
`contacts_person_reachable` triggers (contacts 0008) read it. So one ALTER TABLE drops `search`,
changes the five columns and adds `search` back with the same expression: one rewrite of
`contacts` (and of its indexes) under one lock, instead of one per column. The triggers are
dropped and created again around it, and `contacts_search_gin` (dropped with the column) is
built again under the same lock: the rewrite rebuilds every other index of `contacts` anyway,
and CREATE INDEX CONCURRENTLY cannot run inside the migration's transaction (nor inside the
transactions in which the legacy rehearsal and the tests migrate).

`lead_score` loses its 0-100 rule (and the `>= 0` of a positive small integer): the old column
was a plain integer with no check, so the rows it holds may have any integer.

Reversing refuses, before changing anything, when a row holds what the narrower columns cannot
(a longer email or tag, a lead score outside 0-100, a coordinate with more than 6 decimals),
naming the column and how many rows: PostgreSQL would otherwise fail half-way or round.
"""

import django.contrib.postgres.fields
import django.core.validators
from django.db import migrations, models

REACHABLE_BY = ["first_name", "last_name", "email", "phone", "mobile_phone"]


def reachable(row: str) -> str:
    """SQL: `row` has one of the columns with something in it besides white space (as contacts 0008)."""
    return "(" + " OR ".join(rf"coalesce({row}.{column}, '') ~ '\S'" for column in REACHABLE_BY) + ")"


DROP_TRIGGERS = """
DROP TRIGGER contacts_person_reachable_insert ON contacts;
DROP TRIGGER contacts_person_reachable_update ON contacts;
"""

CREATE_TRIGGERS = f"""
CREATE TRIGGER contacts_person_reachable_insert
    BEFORE INSERT ON contacts
    FOR EACH ROW
    WHEN (NOT NEW.is_organization AND NOT {reachable("NEW")})
    EXECUTE FUNCTION contacts_person_reachable();
CREATE TRIGGER contacts_person_reachable_update
    BEFORE UPDATE OF {", ".join(REACHABLE_BY)}, is_organization ON contacts
    FOR EACH ROW
    WHEN (NOT NEW.is_organization AND NOT {reachable("NEW")} AND (OLD.is_organization OR {reachable("OLD")}))
    EXECUTE FUNCTION contacts_person_reachable();
"""

# The expression of contacts 0007, as `sqlmigrate contacts 0007` prints it.
ADD_SEARCH = (
    "ADD COLUMN search tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, "
    "COALESCE(\"first_name\", '') || ' ' || COALESCE(\"last_name\", '') || ' ' || COALESCE(\"company\", '') "
    "|| ' ' || COALESCE(regexp_replace(\"email\", '[[:punct:]]+', ' ', 'g'), '') "
    "|| ' ' || COALESCE(regexp_replace(\"phone\", '[^0-9]+', ' ', 'g'), '') "
    "|| ' ' || COALESCE(regexp_replace(\"phone\", '[^0-9]+', '', 'g'), '') "
    "|| ' ' || COALESCE(regexp_replace(\"mobile_phone\", '[^0-9]+', ' ', 'g'), '') "
    "|| ' ' || COALESCE(regexp_replace(\"mobile_phone\", '[^0-9]+', '', 'g'), '') "
    "|| ' ' || COALESCE(regexp_replace(regexp_replace(\"website\", '^[[:alpha:]]+://(www[.])?', '', 'g'), "
    "'[[:punct:]]+', ' ', 'g'), ''))) STORED"
)

WIDEN = f"""
ALTER TABLE contacts
    DROP CONSTRAINT contacts_lead_score_range,
    DROP CONSTRAINT contacts_lead_score_check,
    DROP COLUMN search,
    ALTER COLUMN email TYPE varchar(255),
    ALTER COLUMN latitude TYPE numeric(10, 8),
    ALTER COLUMN longitude TYPE numeric(11, 8),
    ALTER COLUMN lead_score TYPE integer,
    ALTER COLUMN tags TYPE text[],
    ALTER COLUMN tags SET DEFAULT '{{}}'::text[],
    {ADD_SEARCH};
CREATE INDEX contacts_search_gin ON contacts USING gin (search);
"""

# What the narrower columns cannot hold: (column, SQL condition on a row, what it means).
NOT_NARROWABLE = [
    ("email", "length(email) > 254", "is longer than 254 characters"),
    ("latitude", "latitude <> round(latitude, 6)", "has more than 6 decimals"),
    ("longitude", "longitude <> round(longitude, 6)", "has more than 6 decimals"),
    ("lead_score", "lead_score NOT BETWEEN 0 AND 100", "is outside 0-100"),
    ("tags", "EXISTS (SELECT FROM unnest(tags) AS tag WHERE length(tag) > 50)", "has a tag over 50 characters"),
]

REFUSE_NARROWING = (
    "DO $refuse$\nDECLARE\n    found bigint;\nBEGIN\n"
    + "".join(
        f"    SELECT count(*) INTO found FROM contacts WHERE {condition};\n"
        f"    IF found > 0 THEN\n"
        f"        RAISE EXCEPTION 'cannot reverse contacts 0010: contacts.{column} {meaning} in % rows, which the "
        f"narrower column cannot hold', found;\n"
        f"    END IF;\n"
        for column, condition, meaning in NOT_NARROWABLE
    )
    + "END\n$refuse$;"
)

NARROW = f"""
ALTER TABLE contacts
    DROP COLUMN search,
    ALTER COLUMN email TYPE varchar(254),
    ALTER COLUMN latitude TYPE numeric(9, 6),
    ALTER COLUMN longitude TYPE numeric(9, 6),
    ALTER COLUMN lead_score TYPE smallint,
    ALTER COLUMN tags TYPE varchar(50)[],
    ALTER COLUMN tags SET DEFAULT '{{}}'::varchar(50)[],
    ADD CONSTRAINT contacts_lead_score_check CHECK (lead_score >= 0),
    ADD CONSTRAINT contacts_lead_score_range CHECK (lead_score <= 100),
    {ADD_SEARCH};
CREATE INDEX contacts_search_gin ON contacts USING gin (search);
"""


class Migration(migrations.Migration):
    dependencies = [("contacts", "0009_legacy_columns")]

    lint_exemptions = {
        "table-rewrite": "PostgreSQL cannot widen these in its catalog: a numeric's scale, smallint to integer "
        "and varchar(50)[] to text[] change every stored row, and email's type cannot change under the "
        "generated search column that reads it; all in one ALTER TABLE, so contacts is rewritten once",
        "non-concurrent-index": "the search column's GIN index, dropped with the column, is built again under the "
        "rewrite's lock, which rebuilds every other index of contacts anyway",
    }

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(DROP_TRIGGERS, reverse_sql=CREATE_TRIGGERS),
                migrations.RunSQL(WIDEN, reverse_sql=NARROW),
                migrations.RunSQL(CREATE_TRIGGERS, reverse_sql=REFUSE_NARROWING + DROP_TRIGGERS),
            ],
            state_operations=[
                migrations.RemoveConstraint(model_name="contact", name="contacts_lead_score_range"),
                migrations.AlterField(
                    model_name="contact",
                    name="email",
                    field=models.EmailField(blank=True, max_length=255, null=True),
                ),
                migrations.AlterField(
                    model_name="contact",
                    name="latitude",
                    field=models.DecimalField(
                        blank=True,
                        decimal_places=8,
                        max_digits=10,
                        null=True,
                        validators=[
                            django.core.validators.MinValueValidator(-90),
                            django.core.validators.MaxValueValidator(90),
                        ],
                    ),
                ),
                migrations.AlterField(
                    model_name="contact",
                    name="longitude",
                    field=models.DecimalField(
                        blank=True,
                        decimal_places=8,
                        max_digits=11,
                        null=True,
                        validators=[
                            django.core.validators.MinValueValidator(-180),
                            django.core.validators.MaxValueValidator(180),
                        ],
                    ),
                ),
                migrations.AlterField(
                    model_name="contact",
                    name="lead_score",
                    field=models.IntegerField(
                        db_default=0,
                        default=0,
                        help_text="Any whole number, as the old system kept it (no fixed range).",
                    ),
                ),
                migrations.AlterField(
                    model_name="contact",
                    name="tags",
                    field=django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), blank=True, db_default=[], default=list, size=None
                    ),
                ),
            ],
        ),
    ]
