"""Notices: an activity addressed to one member (issue 13, notifying an impersonated user).

`activities.recipient` (nullable; every existing row keeps NULL, so nothing is rewritten)
and the `notice` type. The rule "an activity needs a contact or a project" lets a notice
go without one, and a second check says a notice has a recipient and no other activity
does. The checks are added NOT VALID (every existing row fits them: they only loosen the old
rule or concern the new, all-NULL column; new writes are checked at once) and validated
by crm 0015 without blocking writes. The recipient's foreign key and its partial index
(only notices have a recipient: it starts empty) cost a pass over activities here. `tenants.settings` gains a declared key (`notify_impersonated_users`): its validator
and help text change nothing in the database. Reversing refuses, listing them, while
notices exist (the old schema has no place for them): delete them first.
"""

from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.contrib.postgres.operations import AddConstraintNotValid
from django.core.management.base import CommandError
from django.db import migrations, models

import crm.models


class NoticesExist(CommandError):
    pass


def check_no_notices(connection: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, tenant_id, recipient_id FROM activities WHERE type = 'notice' ORDER BY id")
        notices = cursor.fetchall()
    if notices:
        listed = "\n".join(f"  activity {pk} (tenant {tenant}): to user {user}" for pk, tenant, user in notices)
        raise NoticesExist(
            f"{len(notices)} notice(s) exist, and activities before crm 0014 have no recipient nor a notice "
            f"type:\n{listed}\nDelete them (DELETE FROM activities WHERE type = 'notice'), then migrate back "
            "again. Nothing was changed."
        )


def refuse_notices(apps: Any, schema_editor: Any) -> None:
    check_no_notices(schema_editor.connection)


class Migration(migrations.Migration):
    # `migrate` runs it before its plan reverses any later migration (crm/migrating.py).
    reverse_preflight = staticmethod(check_no_notices)
    # Not CONCURRENTLY: the demo and the tests run migrations inside a transaction.
    lint_exemptions = {
        "blocking-scan": (
            "the foreign key on the new, all-NULL activities.recipient is checked in one sequential pass over "
            "activities with no row to look up in users"
        ),
        "non-concurrent-index": (
            "the partial index of notices' recipients starts empty: one pass over activities, like the foreign "
            "key's check in the same transaction"
        ),
    }

    dependencies = [
        ("contacts", "0012_sub_contractor_validate"),
        ("crm", "0013_membership_invitations"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="activity", name="activities_type_valid"),
        migrations.RemoveConstraint(model_name="activity", name="activities_contact_or_project"),
        migrations.AddField(
            model_name="activity",
            name="recipient",
            field=models.ForeignKey(
                blank=True,
                help_text="The member a notice is addressed to (only they see it); empty on every other activity.",
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="+",
                db_index=False,
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="activity",
            name="type",
            field=models.CharField(
                choices=[
                    ("call", "Call"),
                    ("email", "Email"),
                    ("sms", "SMS"),
                    ("meeting", "Meeting"),
                    ("note", "Note"),
                    ("task", "Task"),
                    ("door_knock", "Door Knock"),
                    ("notice", "Notice"),
                ],
                max_length=20,
            ),
        ),
        migrations.AlterField(
            model_name="tenant",
            name="settings",
            field=models.JSONField(
                blank=True,
                db_default={},
                default=dict,
                help_text=(
                    "The tenant's settings (a JSON object). `notify_impersonated_users` (true or false, default "
                    "false): when an admin starts impersonating a member, that member gets a notice on their "
                    "activity feed saying who viewed their account and why."
                ),
                validators=[crm.models.validate_tenant_settings],
            ),
        ),
        AddConstraintNotValid(
            model_name="activity",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("type__in", ["call", "email", "sms", "meeting", "note", "task", "door_knock", "notice"])
                ),
                name="activities_type_valid",
            ),
        ),
        AddConstraintNotValid(
            model_name="activity",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("contact__isnull", False), ("project__isnull", False), ("type", "notice"), _connector="OR"
                ),
                name="activities_contact_or_project",
                violation_error_message="An activity needs a contact or a project.",
            ),
        ),
        AddConstraintNotValid(
            model_name="activity",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("recipient__isnull", False), ("type", "notice")),
                    models.Q(models.Q(("type", "notice"), _negated=True), ("recipient__isnull", True)),
                    _connector="OR",
                ),
                name="activities_recipient_only_on_notices",
                violation_error_message="A notice is addressed to one member (recipient); no other activity has one.",
            ),
        ),
        migrations.AddIndex(
            model_name="activity",
            index=models.Index(
                condition=models.Q(("recipient__isnull", False)), fields=["recipient"], name="activities_recipient_idx"
            ),
        ),
        # Last, so that going back checks first.
        migrations.RunPython(migrations.RunPython.noop, refuse_notices),
    ]
