from django.apps import AppConfig


class FiltersConfig(AppConfig):
    name = "filters"
    verbose_name = "Filters"
