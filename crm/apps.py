from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Ridgeline CRM"

    def ready(self) -> None:
        from crm.constraints import constraint_register

        constraint_register("activities_recipient_only_on_notices", attr="recipient")
