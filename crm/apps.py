from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Ridgeline CRM"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from crm.constraints import constraint_register
        from crm.db import grant_after_migrate

        # Once per migrate (and per test database): the application role's grants.
        post_migrate.connect(grant_after_migrate, sender=self, dispatch_uid="crm.db.grant_after_migrate")

        constraint_register("activities_recipient_only_on_notices", attr="recipient")
