"""A person needs a name, an email or a phone: the rule, in the database, for every write path.

Two row triggers refuse a write that leaves a person (not a company: a company is named by
`company`) with no first name, last name, email, phone or mobile phone: an INSERT, and an
UPDATE of those columns (or of `is_organization`) that takes the last of them away, or turns
a company without them into a person. The error names the rule `contacts_person_reachable`,
which `contacts.apps` maps to the `first_name` field and its message.

Why triggers and not a CHECK constraint: the old system had no such rule, and rows it wrote
may already break it. Validating a CHECK would fail on them, and even a CHECK left NOT VALID
refuses every later UPDATE of such a row, including the ones that never touch its names (a
substatus moving on in the automatic transitions, the contacts reassignment): one of those
rows in a batch would stop the whole batch. The triggers hold new writes to the rule and
leave old rows workable until someone edits their names. Adding them reads no row: no lock
waits on the size of `contacts`.
"""

from django.db import migrations

REACHABLE_BY = ["first_name", "last_name", "email", "phone", "mobile_phone"]


def reachable(row: str) -> str:
    """SQL: `row` has one of the columns with something in it besides white space."""
    return "(" + " OR ".join(rf"coalesce({row}.{column}, '') ~ '\S'" for column in REACHABLE_BY) + ")"


FUNCTION = """
CREATE FUNCTION contacts_person_reachable() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    RAISE EXCEPTION 'contact % would be a person without a name, an email or a phone', NEW.id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'contacts_person_reachable';
END
$function$;
"""

INSERT_TRIGGER = f"""
CREATE TRIGGER contacts_person_reachable_insert
    BEFORE INSERT ON contacts
    FOR EACH ROW
    WHEN (NOT NEW.is_organization AND NOT {reachable("NEW")})
    EXECUTE FUNCTION contacts_person_reachable();
"""

UPDATE_TRIGGER = f"""
CREATE TRIGGER contacts_person_reachable_update
    BEFORE UPDATE OF {", ".join(REACHABLE_BY)}, is_organization ON contacts
    FOR EACH ROW
    WHEN (NOT NEW.is_organization AND NOT {reachable("NEW")} AND (OLD.is_organization OR {reachable("OLD")}))
    EXECUTE FUNCTION contacts_person_reachable();
"""


class Migration(migrations.Migration):
    dependencies = [("contacts", "0007_merge_finish")]

    operations = [
        migrations.RunSQL(FUNCTION, reverse_sql="DROP FUNCTION contacts_person_reachable();"),
        migrations.RunSQL(INSERT_TRIGGER, reverse_sql="DROP TRIGGER contacts_person_reachable_insert ON contacts;"),
        migrations.RunSQL(UPDATE_TRIGGER, reverse_sql="DROP TRIGGER contacts_person_reachable_update ON contacts;"),
    ]
