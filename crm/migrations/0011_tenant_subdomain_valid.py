"""Subdomains are DNS labels that are not all digits and not reserved (issue 11, section 4).

`X-Tenant` reads digits as a tenant id, so a subdomain such as `1` would capture the
requests meant for tenant 1. Before the check constraint is added, the tenants that break
it are listed and the migration stops: renaming a customer's subdomain changes their
addresses, so it is ops' decision, not the migration's. Reversing drops the constraint.
"""

from typing import Any

from django.db import migrations, models

import crm.models

PATTERN = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
ALL_DIGITS = "^[0-9]+$"
RESERVED = [
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "cdn",
    "dashboard",
    "docs",
    "ftp",
    "help",
    "imap",
    "login",
    "mail",
    "media",
    "ns1",
    "ns2",
    "ops",
    "pop",
    "portal",
    "smtp",
    "sso",
    "static",
    "status",
    "support",
    "webmail",
    "www",
]


class InvalidSubdomains(Exception):
    pass


def report_invalid_subdomains(apps: Any, schema_editor: Any) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, subdomain FROM tenants "
            "WHERE subdomain !~ %s OR subdomain ~ %s OR subdomain = ANY(%s) ORDER BY id",
            [PATTERN, ALL_DIGITS, RESERVED],
        )
        offending = cursor.fetchall()
    if offending:
        listed = "\n".join(f"  tenant {pk}: {subdomain!r}" for pk, subdomain in offending)
        raise InvalidSubdomains(
            f"{len(offending)} tenant(s) have a subdomain that is not a lowercase DNS label, is all digits "
            f"or is reserved ({', '.join(RESERVED)}):\n{listed}\n"
            "Give each a valid subdomain (UPDATE tenants SET subdomain = '...' WHERE id = ...), tell those "
            "tenants their new address, and run migrate again. Nothing was changed."
        )


class Migration(migrations.Migration):
    dependencies = [("crm", "0010_drop_authtoken")]

    operations = [
        migrations.RunPython(report_invalid_subdomains, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="tenant",
            name="subdomain",
            field=models.SlugField(
                help_text=(
                    "A subdomain is 1-63 lowercase letters, digits and hyphens, not starting or ending with a "
                    "hyphen, not all digits, and not a name Ridgeline keeps for itself (www, api, admin, app, "
                    "static, ...)."
                ),
                max_length=63,
                unique=True,
                validators=[crm.models.validate_subdomain],
            ),
        ),
        migrations.AddConstraint(
            model_name="tenant",
            constraint=models.CheckConstraint(
                condition=models.Q(subdomain__regex=PATTERN)
                & ~models.Q(subdomain__regex=ALL_DIGITS)
                & ~models.Q(subdomain__in=RESERVED),
                name="tenants_subdomain_valid",
                violation_error_message=(
                    "A subdomain is 1-63 lowercase letters, digits and hyphens, not starting or ending with a "
                    "hyphen, not all digits, and not a name Ridgeline keeps for itself (www, api, admin, app, "
                    "static, ...)."
                ),
            ),
        ),
    ]
