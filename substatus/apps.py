from django.apps import AppConfig


class SubstatusConfig(AppConfig):
    name = "substatus"
    verbose_name = "Substatuses"
