"""Invitations and the old system's deactivation columns on tenant_users (issue 11, section 2).

Adding someone by email is an invitation: a pending membership for `invited_email`, with
no user until the owner of that email accepts it (so `user_id` becomes nullable; a check
keeps a row without a user a pending invitation). `deactivated_at`, `deactivated_by` and
`deactivated_reason` are the old system's columns, set by the service that deactivates a
membership. Every column is nullable, so existing rows need no rewrite. Reversing drops
them; it refuses, listing them, while invitations without a user exist (the old schema has
no place for them): revoke or accept them first.
"""

import django.db.models.deletion
import django.db.models.functions.text
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.db import migrations, models


class InvitationsWithoutUser(CommandError):
    pass


def check_no_invitations_without_user(connection: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id, tenant_id, invited_email FROM tenant_users WHERE user_id IS NULL ORDER BY id")
        pending = cursor.fetchall()
    if pending:
        listed = "\n".join(f"  membership {pk} (tenant {tenant}): {email}" for pk, tenant, email in pending)
        raise InvitationsWithoutUser(
            f"{len(pending)} pending invitation(s) have no user yet, and tenant_users before crm 0013 needs "
            f"one:\n{listed}\nRevoke them (DELETE FROM tenant_users WHERE user_id IS NULL) or wait until "
            "they are accepted, then migrate back again. Nothing was changed."
        )


def refuse_invitations_without_user(apps: Any, schema_editor: Any) -> None:
    check_no_invitations_without_user(schema_editor.connection)


class Migration(migrations.Migration):
    # `migrate` runs it before its plan reverses any later migration (crm/migrating.py).
    reverse_preflight = staticmethod(check_no_invitations_without_user)
    dependencies = [("crm", "0012_sub_contractor")]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="deactivated_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="membership",
            name="deactivated_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="membership",
            name="deactivated_reason",
            field=models.TextField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="membership",
            name="invited_at",
            field=models.DateTimeField(
                blank=True,
                help_text="When the invitation was last sent; a link sent before no longer works.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="membership",
            name="invited_by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="membership",
            name="invited_email",
            field=models.EmailField(
                blank=True, help_text="Whom a pending invitation is for.", max_length=254, null=True
            ),
        ),
        migrations.AlterField(
            model_name="membership",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="memberships",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="membership",
            constraint=models.UniqueConstraint(
                models.F("tenant"),
                django.db.models.functions.text.Lower("invited_email"),
                condition=models.Q(("status", "pending"), ("user__isnull", True)),
                name="tenant_users_one_invitation_per_email",
                violation_error_message="This email has already been invited: resend the invitation instead.",
            ),
        ),
        migrations.AddConstraint(
            model_name="membership",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("user__isnull", False),
                    models.Q(("invited_email__isnull", False), ("status", "pending")),
                    _connector="OR",
                ),
                name="tenant_users_user_or_invitation",
                violation_error_message="A membership without a user is a pending invitation for an email.",
            ),
        ),
        # Last, so that going back checks first.
        migrations.RunPython(migrations.RunPython.noop, refuse_invitations_without_user),
    ]
