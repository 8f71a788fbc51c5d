"""`manage.py merge_backups list | drop`: the organizations merge's backups, kept until ops drop
them all at once (after which the merge can no longer be reversed)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from crm.legacy import contacts_before_merge, latest_state, migrate_to, pre_merge_state
from tests.contacts.legacy import backup_schema_exists, load_legacy

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("merge_backups", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def merged():
    load_legacy(migrate_to(pre_merge_state()))
    migrate_to(latest_state())


def age_backups(days: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE merge_backups.info SET created_at = now() - make_interval(days => %s)", [days])


def test_lists_the_keyed_backup_tables_with_their_rows_and_age(merged):
    age_backups(3)

    lines = run("list").splitlines()

    assert lines[0].startswith("Organizations merge backups in schema merge_backups, taken ")
    assert lines[0].endswith(" (3 day(s) ago) by contacts.0006_merge_organizations:")
    assert [(line.split()[0], line.split()[1], line.split(" kB  ")[-1]) for line in lines[1:4]] == [
        ("merge_backups.info", "1", "PRIMARY KEY (migration)"),
        ("merge_backups.organizations", "7", "PRIMARY KEY (id)"),
        ("merge_backups.projects", "11", "PRIMARY KEY (id)"),
    ]
    assert lines[4] == (
        f"While they exist the merge can be reversed (manage.py migrate contacts {contacts_before_merge()}). "
        "Drop them, all at once, when you are satisfied: manage.py merge_backups drop --older-than 7d --yes"
    )


def test_backups_younger_than_asked_are_kept(merged):
    age_backups(6)

    assert run("drop", "--older-than", "7d", "--yes") == (
        "The organizations merge backups are 6 day(s) old, not older than 7 day(s): nothing dropped.\n"
    )
    assert backup_schema_exists()


def test_dropping_needs_yes_because_the_merge_becomes_irreversible(merged):
    age_backups(8)

    with pytest.raises(CommandError) as refused:
        run("drop", "--older-than", "7d")

    assert str(refused.value) == (
        "Dropping the organizations merge backups (merge_backups.info, merge_backups.organizations, "
        f"merge_backups.projects) makes the merge irreversible: `manage.py migrate contacts {contacts_before_merge()}` "
        "will refuse afterwards. Run again with --yes to drop them."
    )
    assert backup_schema_exists()


def test_drop_removes_every_backup_table_at_once(merged):
    age_backups(8)

    output = run("drop", "--older-than", "7d", "--yes")

    assert output == (
        "Dropped merge_backups.info, merge_backups.organizations, merge_backups.projects. The organizations merge "
        "can no longer be reversed (migrate refuses to).\n"
    )
    assert not backup_schema_exists()
    assert run("list") == (
        "No organizations merge backups: they were dropped (or the merge found no organizations to back up). "
        "A merge whose backups were dropped can no longer be reversed.\n"
    )


def test_before_the_merge_there_is_nothing_to_list():
    migrate_to(pre_merge_state())

    assert run("list") == "No organizations merge backups: the merge has not run on this database.\n"


@pytest.mark.parametrize("value", ["7", "7w", "d", "1.5d", ""])
def test_an_age_that_is_not_a_duration_is_refused(value):
    with pytest.raises(CommandError, match=f"argument --older-than: invalid duration value: '{value}'"):
        run("drop", "--older-than", value)
