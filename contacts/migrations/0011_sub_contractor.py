"""The category `subcontractor` is spelled `sub_contractor`, as the old system stores it.

The check constraint changes around the renaming, in one transaction, so no moment accepts
either spelling. The new constraint is added NOT VALID (the renaming already made every row
fit it; new writes are checked at once) and validated by contacts 0012 without blocking
writes. Reversing renames the rows back.
"""

from django.contrib.postgres.operations import AddConstraintNotValid
from django.db import migrations, models

CATEGORIES = [
    "homeowner",
    "adjuster",
    "sub_contractor",
    "property_manager",
    "real_estate_agent",
    "developer",
    "local_business",
    "other",
]


CATEGORY_CHECK = models.CheckConstraint(
    condition=models.Q(contact_category__in=CATEGORIES), name="contacts_contact_category_valid"
)


RENAME = "UPDATE contacts SET contact_category = 'sub_contractor' WHERE contact_category = 'subcontractor';"
RENAME_BACK = "UPDATE contacts SET contact_category = 'subcontractor' WHERE contact_category = 'sub_contractor';"


class Migration(migrations.Migration):
    dependencies = [("contacts", "0010_legacy_widths")]

    operations = [
        migrations.RemoveConstraint(model_name="contact", name="contacts_contact_category_valid"),
        migrations.AlterField(
            model_name="contact",
            name="contact_category",
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
                ],
                db_default="homeowner",
                default="homeowner",
                max_length=30,
            ),
        ),
        migrations.RunSQL(RENAME, reverse_sql=RENAME_BACK),
        AddConstraintNotValid(model_name="contact", constraint=CATEGORY_CHECK),
    ]
