"""Invitations and the old system's deactivation columns on tenant_users (issue 11, section 2).

Adding someone by email is an invitation: a pending membership for `invited_email`, with
no user until the owner of that email accepts it (so `user_id` becomes nullable; a check
keeps a row without a user a pending invitation). `deactivated_at`, `deactivated_by` and
`deactivated_reason` are the old system's columns, set by the service that deactivates a
membership. Every column is nullable, so existing rows need no rewrite; reversing drops
them (a database holding invitations without a user cannot go back: delete them first).
"""

import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0011_tenant_subdomain_valid"),
    ]

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
    ]
