from django.apps import AppConfig


class ImpersonationConfig(AppConfig):
    name = "impersonation"
    verbose_name = "Impersonation"

    def ready(self) -> None:
        from impersonation import schema  # noqa: F401  (registers the token with drf-spectacular)
