"""The old system's contact columns that had no home: QuickBooks and ProLine ids, the time zone,
and SMS and email consent; `roof_type` at the old width (100).

Each new column is NULL or has a constant default, and the widening is of a varchar: PostgreSQL
changes its catalog only, whatever the size of `contacts`.
"""

from django.db import migrations, models

import crm.models


def consent_date(label: str) -> models.DateTimeField:
    return models.DateTimeField(blank=True, null=True, verbose_name=label)


class Migration(migrations.Migration):
    dependencies = [("contacts", "0008_person_reachable")]

    operations = [
        migrations.AddField(
            model_name="contact",
            name="quickbooks_customer_id",
            field=models.CharField(blank=True, max_length=100, null=True, verbose_name="QuickBooks customer id"),
        ),
        migrations.AddField(
            model_name="contact",
            name="proline_id",
            field=models.CharField(blank=True, max_length=100, null=True, verbose_name="ProLine id"),
        ),
        migrations.AddField(
            model_name="contact",
            name="timezone",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="IANA time zone (e.g. America/Denver); empty: the tenant's.",
                max_length=64,
                validators=[crm.models.validate_timezone],
            ),
        ),
        migrations.AddField(
            model_name="contact",
            name="sms_opt_in",
            field=models.BooleanField(db_default=False, default=False, verbose_name="SMS opt-in"),
        ),
        migrations.AddField(model_name="contact", name="sms_opt_in_date", field=consent_date("SMS opt-in date")),
        migrations.AddField(
            model_name="contact",
            name="sms_opt_out",
            field=models.BooleanField(db_default=False, default=False, verbose_name="SMS opt-out"),
        ),
        migrations.AddField(model_name="contact", name="sms_opt_out_date", field=consent_date("SMS opt-out date")),
        migrations.AddField(
            model_name="contact",
            name="sms_opt_out_reason",
            field=models.TextField(blank=True, null=True, verbose_name="SMS opt-out reason"),
        ),
        migrations.AddField(
            model_name="contact", name="email_opt_out", field=models.BooleanField(db_default=False, default=False)
        ),
        migrations.AddField(
            model_name="contact", name="email_opt_out_date", field=models.DateTimeField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="contact", name="email_opt_out_reason", field=models.TextField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="contact",
            name="email_invalid",
            field=models.BooleanField(db_default=False, default=False, help_text="Mail to it bounces."),
        ),
        migrations.AddField(
            model_name="contact", name="email_invalid_date", field=models.DateTimeField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="contact", name="email_invalid_reason", field=models.TextField(blank=True, null=True)
        ),
        migrations.AlterField(
            model_name="contact",
            name="roof_type",
            field=models.CharField(blank=True, max_length=100, null=True),
        ),
    ]
