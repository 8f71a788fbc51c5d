from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from anymail.signals import tracking

        from campaigns.public import anymail_tracking_received
        from crm.constraints import constraint_register
        from crm.errors import Conflict

        # What the ESPs report through django-anymail's webhooks (bounces, complaints, delivery).
        tracking.connect(anymail_tracking_received, dispatch_uid="campaigns.anymail_tracking")

        # Rules kept by triggers (campaigns/migrations/0002_database_rules.py).
        for table in ("campaign_steps", "campaign_triggers"):
            constraint_register(
                f"{table}_published_frozen",
                attr=None,
                message="This version is published and never changes: edit the campaign's draft version.",
                error=Conflict,
            )
        constraint_register(
            "campaign_versions_published_stays",
            attr=None,
            message="A published version stays published.",
            error=Conflict,
        )
        constraint_register("campaigns_catch_up_hours", attr="catch_up_hours")
        constraint_register("campaign_enrollments_one_active", attr="contact", error=Conflict)
        constraint_register("campaign_enrollments_rotation_unique", attr="contact", error=Conflict)
