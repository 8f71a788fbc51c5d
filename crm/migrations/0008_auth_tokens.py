"""API tokens (django-rest-knox, `crm.AuthToken`): stored as digests, with an expiry.

The trigger ends a user's tokens when their credentials change, on every path that can
change them (the admin's password form, `manage.py changepassword`, `set_password()` and
`save()` anywhere, raw SQL): a new password, or deactivation. A later reactivation does
not bring them back.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

END_TOKENS = """
CREATE FUNCTION auth_tokens_end_for_user() RETURNS trigger
    LANGUAGE plpgsql
    AS $function$
BEGIN
    DELETE FROM auth_tokens WHERE user_id = NEW.id;
    RETURN NULL;
END
$function$;

CREATE TRIGGER auth_tokens_end_on_credentials_change
    AFTER UPDATE OF password, is_active ON users
    FOR EACH ROW
    WHEN (NEW.password IS DISTINCT FROM OLD.password OR (OLD.is_active AND NOT NEW.is_active))
    EXECUTE FUNCTION auth_tokens_end_for_user();
"""

DROP_END_TOKENS = """
DROP TRIGGER auth_tokens_end_on_credentials_change ON users;
DROP FUNCTION auth_tokens_end_for_user();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0007_remove_project_organization"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuthToken",
            fields=[
                ("token_key", models.CharField(db_index=True, max_length=25)),
                ("created", models.DateTimeField(auto_now_add=True)),
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("digest", models.CharField(max_length=128, unique=True)),
                (
                    "expiry",
                    models.DateTimeField(help_text="The token stops working at this time unless it is used before."),
                ),
                (
                    "max_expiry",
                    models.DateTimeField(
                        blank=True, help_text="Use never extends the token past this time (empty: no limit).", null=True
                    ),
                ),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="auth_token_set",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "auth_tokens",
                "ordering": ["-created", "-id"],
                "indexes": [models.Index(fields=["expiry"], name="auth_tokens_expiry_idx")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("max_expiry__isnull", True), ("expiry__lte", models.F("max_expiry")), _connector="OR"
                        ),
                        name="auth_tokens_expiry_within_max",
                    )
                ],
            },
        ),
        migrations.RunSQL(END_TOKENS, reverse_sql=DROP_END_TOKENS),
    ]
