"""The job role `subcontractor` is spelled `sub_contractor`, as the contact category is
(contacts 0011): the check constraint changes around the renaming, in one transaction.
Reversing renames the rows back."""

from django.db import migrations, models

ROLES = [
    "homeowner",
    "adjuster",
    "sub_contractor",
    "property_manager",
    "real_estate_agent",
    "developer",
    "local_business",
    "other",
    "organization",
    "insurance_company",
]


ROLE_CHECK = models.CheckConstraint(condition=models.Q(role__in=ROLES), name="project_contacts_role_valid")


RENAME = "UPDATE project_contacts SET role = 'sub_contractor' WHERE role = 'subcontractor';"
RENAME_BACK = "UPDATE project_contacts SET role = 'subcontractor' WHERE role = 'sub_contractor';"


class Migration(migrations.Migration):
    dependencies = [("crm", "0011_legacy_columns")]

    operations = [
        migrations.RemoveConstraint(model_name="projectcontact", name="project_contacts_role_valid"),
        migrations.AlterField(
            model_name="projectcontact",
            name="role",
            field=models.CharField(
                choices=[
                    ("homeowner", "Homeowner"),
                    ("adjuster", "Adjuster"),
                    ("sub_contractor", "Sub-contractor"),
                    ("property_manager", "Property Manager"),
                    ("real_estate_agent", "Real Estate Agent"),
                    ("developer", "Developer"),
                    ("local_business", "Local Business"),
                    ("other", "Other"),
                    ("organization", "Organization"),
                    ("insurance_company", "Insurance Company"),
                ],
                max_length=30,
            ),
        ),
        migrations.RunSQL(RENAME, reverse_sql=RENAME_BACK),
        migrations.AddConstraint(model_name="projectcontact", constraint=ROLE_CHECK),
    ]
