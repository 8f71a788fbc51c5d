"""Validate the category constraint of contacts 0011: a scan that lets writes go on."""

from django.contrib.postgres.operations import ValidateConstraint
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("contacts", "0011_sub_contractor")]

    operations = [ValidateConstraint(model_name="contact", name="contacts_contact_category_valid")]
