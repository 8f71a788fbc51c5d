from django.apps import AppConfig


class FiltersConfig(AppConfig):
    name = "filters"
    verbose_name = "Filters"

    def ready(self) -> None:
        from crm.constraints import constraint_register

        # The name is what a person changes to get past it (the field guessed would be entity_type).
        constraint_register("saved_filters_unique_name", attr="name")
