"""Organizations merge, step 2 of 4: the columns and tables the merged model needs.

Contacts gain what a company contact needs (`is_organization`, `company`, `website`,
`notes`, `contact_category`) and a person's link to the company they work for
(`company_contact`). Email uniqueness now covers people only, so a company may share its
email with a person. `merged_organizations` will record where each organization went.
The data moves in 0006, in a migration of its own: re-pointing foreign keys leaves
deferred trigger events that forbid DDL on the same tables in the same transaction.
The indexes for `is_organization` and `contact_category` are built in 0007, once the data is
in; the one for `company_contact` here, while it is empty.
"""

import django.db.models.deletion
import django.db.models.functions.datetime
import django.db.models.functions.text
from django.db import migrations, models

CATEGORIES = [
    ("homeowner", "Homeowner"),
    ("adjuster", "Adjuster"),
    ("subcontractor", "Subcontractor"),
    ("property_manager", "Property Manager"),
    ("real_estate_agent", "Real Estate Agent"),
    ("developer", "Developer"),
    ("local_business", "Local Business"),
    ("other", "Other"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0004_merge_preflight"),
        ("crm", "0005_project_substatus"),
    ]

    lint_exemptions = {
        "blocking-scan": "the merge runs in a maintenance window: checking the new constraints and the "
        "company_contact foreign key reads contacts once, under a second on a million rows",
        "non-concurrent-index": "inside the merge's maintenance window the email rule is rebuilt for people "
        "only and company_contact gets its (still empty) partial index; CONCURRENTLY cannot run in the "
        "migration's transaction",
    }

    operations = [
        migrations.AddField(
            model_name="contact",
            name="is_organization",
            field=models.BooleanField(
                db_default=False, default=False, help_text="A company (its name is `company`) rather than a person."
            ),
        ),
        migrations.AddField(
            model_name="contact",
            name="company",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="A company's name; the company a person works for.",
                max_length=255,
            ),
        ),
        migrations.AddField(
            model_name="contact",
            name="company_contact",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                help_text="The company contact (same tenant) this person works for.",
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="people",
                to="contacts.contact",
            ),
        ),
        migrations.AddField(
            model_name="contact",
            name="contact_category",
            field=models.CharField(choices=CATEGORIES, db_default="homeowner", default="homeowner", max_length=30),
        ),
        migrations.AddField(
            model_name="contact",
            name="website",
            field=models.URLField(blank=True, max_length=500, null=True),
        ),
        migrations.AddField(
            model_name="contact",
            name="notes",
            field=models.TextField(blank=True, null=True),
        ),
        migrations.AddConstraint(
            model_name="contact",
            constraint=models.CheckConstraint(
                condition=models.Q(("contact_category__in", [value for value, _ in CATEGORIES])),
                name="contacts_contact_category_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="contact",
            constraint=models.CheckConstraint(
                condition=models.Q(("is_organization", False), ("company_contact__isnull", True), _connector="OR"),
                name="contacts_company_has_no_company_contact",
                violation_error_message="A company cannot work for another company contact.",
            ),
        ),
        # Built now, while the column is empty: the data step's links use it, and so do the
        # foreign-key checks when reversing deletes the company contacts.
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(
                condition=models.Q(("company_contact__isnull", False)),
                fields=["company_contact"],
                name="contacts_company_contact_idx",
            ),
        ),
        migrations.RemoveConstraint(model_name="contact", name="contacts_email_unique_per_tenant"),
        migrations.AddConstraint(
            model_name="contact",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("email"),
                models.F("tenant"),
                condition=models.Q(
                    ("is_deleted", False),
                    ("is_organization", False),
                    ("email__isnull", False),
                    models.Q(("email", ""), _negated=True),
                ),
                name="contacts_email_unique_per_tenant",
                violation_error_message="Another person of this tenant has this email.",
            ),
        ),
        migrations.CreateModel(
            name="MergedOrganization",
            fields=[
                (
                    "organization_id",
                    models.BigIntegerField(
                        help_text="The legacy organization's id.", primary_key=True, serialize=False
                    ),
                ),
                ("org_type", models.CharField(blank=True, max_length=20, null=True)),
                ("stage", models.CharField(blank=True, max_length=20, null=True)),
                (
                    "merged_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "contact",
                    models.OneToOneField(
                        blank=True,
                        help_text="The company contact it became (empty once that contact is purged).",
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="merged_organization",
                        to="contacts.contact",
                    ),
                ),
                (
                    "tenant",
                    models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="+", to="crm.tenant"),
                ),
            ],
            options={"db_table": "merged_organizations", "ordering": ["organization_id"]},
        ),
    ]
