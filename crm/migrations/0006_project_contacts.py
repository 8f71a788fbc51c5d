"""Organizations merge, step 2 of 4 (crm's part): `project_contacts`, a job's other parties.

The merge records there the company contact of a project's organization whenever it is not
the project's contact (role `organization`); staff add adjusters, sub-contractors and the
like afterwards.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

ROLES = [
    ("homeowner", "Homeowner"),
    ("adjuster", "Adjuster"),
    ("subcontractor", "Subcontractor"),
    ("property_manager", "Property Manager"),
    ("real_estate_agent", "Real Estate Agent"),
    ("developer", "Developer"),
    ("local_business", "Local Business"),
    ("other", "Other"),
    ("organization", "Organization"),
    ("insurance_company", "Insurance Company"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0005_merge_schema"),
        ("crm", "0005_project_substatus"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ProjectContact",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("role", models.CharField(choices=ROLES, max_length=30)),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        default=django.utils.timezone.now,
                        editable=False,
                    ),
                ),
                (
                    "contact",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="project_parts",
                        to="contacts.contact",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="parties", to="crm.project"
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="crm.tenant"),
                ),
            ],
            options={
                "db_table": "project_contacts",
                "ordering": ["project", "role", "id"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("contact", "role", "project"),
                        name="project_contacts_unique",
                        violation_error_message="This contact already has this role on the project.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("role__in", [value for value, _ in ROLES])),
                        name="project_contacts_role_valid",
                    ),
                ],
            },
        ),
    ]
