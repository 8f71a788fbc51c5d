"""Index the words of the email and the digits of the phones, so search finds them.

The first search column ran the raw columns through PostgreSQL's parser, which keeps an
email whole (`jane.doe@example.com`, so `doe` found nothing) and reads `123-4567` as
`123` and `-4567` (so `4567` and `5551234567` found nothing). PostgreSQL cannot alter a
generated column's expression, so the column (and its index) is dropped and added again;
reversing restores the previous expression.
"""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.db import migrations, models


def regexp_replace(field, pattern, replacement):
    return models.Func(
        models.F(field),
        models.Value(pattern),
        models.Value(replacement),
        models.Value("g"),
        function="regexp_replace",
        output_field=models.TextField(),
    )


class Migration(migrations.Migration):
    dependencies = [("contacts", "0002_updated_by_search")]

    operations = [
        migrations.RemoveIndex(model_name="contact", name="contacts_search_gin"),
        migrations.RemoveField(model_name="contact", name="search"),
        migrations.AddField(
            model_name="contact",
            name="search",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.contrib.postgres.search.SearchVector(
                    "first_name",
                    "last_name",
                    regexp_replace("email", "[[:punct:]]+", " "),
                    regexp_replace("phone", "[^0-9]+", " "),
                    regexp_replace("phone", "[^0-9]+", ""),
                    regexp_replace("mobile_phone", "[^0-9]+", " "),
                    regexp_replace("mobile_phone", "[^0-9]+", ""),
                    config="simple",
                ),
                help_text=(
                    "Full-text search over names, the words of the email and the digits of the phones, "
                    "grouped as written and run together (query it with crm.search.prefix_search_query)."
                ),
                output_field=django.contrib.postgres.search.SearchVectorField(),
            ),
        ),
        migrations.AddIndex(
            model_name="contact",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search"], name="contacts_search_gin"),
        ),
    ]
