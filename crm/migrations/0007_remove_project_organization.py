"""Organizations merge, step 4 of 4 (crm's part): drop the legacy `projects.organization`.

contacts 0006 carried every link over (the project's contact or a `project_contacts` row)
and kept the column's values in its backups; reversing brings them back from there. A
migration of its own: the data step's deferred foreign-key events must be behind us.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0006_merge_organizations"),
        ("crm", "0006_project_contacts"),
    ]

    operations = [migrations.RemoveField(model_name="project", name="organization")]
