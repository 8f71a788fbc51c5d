"""The impersonation log: one row per "log in as" session, append-only.

A row is written when a session starts; afterwards only its ending columns (`status`,
`ended_at`, `end_reason`) and its counters change. The database refuses any other UPDATE
and every DELETE (trigger in migration 0002), whatever path tries.
"""

from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Now
from django.utils.timezone import now

from crm.fields import choices_check, non_negative_check
from crm.models import Tenant


class ImpersonationStatus(models.TextChoices):
    ACTIVE = "active"
    ENDED = "ended"
    EXPIRED = "expired"
    TERMINATED = "terminated"


class EndReason(models.TextChoices):
    STOPPED = "stopped"
    EXPIRED = "expired"
    LOGOUT = "logout"
    TARGET_DEACTIVATED = "target_deactivated"
    ADMIN_DEACTIVATED = "admin_deactivated"
    MEMBERSHIP_REMOVED = "membership_removed"
    REPLACED = "replaced"


# The status a session ends in, by why it ended.
STATUS_FOR_REASON = {
    EndReason.STOPPED: ImpersonationStatus.ENDED,
    EndReason.EXPIRED: ImpersonationStatus.EXPIRED,
}


class AppendOnly(Exception):
    """An ORM edit or delete of a log row (the database refuses them too)."""


class ImpersonationLogQuerySet(models.QuerySet["ImpersonationLog"]):
    def active(self) -> "ImpersonationLogQuerySet":
        return self.filter(status=ImpersonationStatus.ACTIVE)

    def delete(self) -> NoReturn:
        raise AppendOnly("Impersonation logs are append-only: they are never deleted.")


class ImpersonationLog(models.Model):
    Status = ImpersonationStatus
    EndReason = EndReason

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(
        Tenant,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # impersonation_logs_tenant_idx leads with it
    )
    admin_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    impersonated_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # impersonation_logs_target_idx leads with it
    )
    started_at = models.DateTimeField(default=now, db_default=Now())
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.GeneratedField(
        expression=RawSQL("(EXTRACT(EPOCH FROM (ended_at - started_at)))::integer", ()),
        output_field=models.IntegerField(null=True),
        db_persist=True,
    )
    reason = models.TextField()
    ticket = models.CharField(max_length=100, blank=True, default="", db_default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True, default="", db_default="")
    status = models.CharField(
        max_length=20, choices=ImpersonationStatus.choices, default=ImpersonationStatus.ACTIVE, db_default="active"
    )
    allow_writes = models.BooleanField(default=False, db_default=False)
    expires_at = models.DateTimeField()
    end_reason = models.CharField(max_length=30, choices=EndReason.choices, null=True, blank=True)  # noqa: DJ001
    request_count = models.PositiveIntegerField(default=0, db_default=0)
    write_count = models.PositiveIntegerField(default=0, db_default=0)
    # The credential the session is bound to: it stops when that ends (never shown).
    token_digest = models.CharField(max_length=128, null=True, blank=True, unique=True, editable=False)  # noqa: DJ001
    admin_token_digest = models.CharField(max_length=128, null=True, blank=True, editable=False)  # noqa: DJ001
    admin_session_key = models.CharField(max_length=40, null=True, blank=True, editable=False)  # noqa: DJ001
    created_at = models.DateTimeField(default=now, db_default=Now(), editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    objects = ImpersonationLogQuerySet.as_manager()

    class Meta:
        db_table = "impersonation_logs"
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(admin_user=models.F("impersonated_user")),
                name="impersonation_logs_not_self",
                violation_error_message="Nobody can impersonate themselves.",
            ),
            choices_check("status", ImpersonationStatus, "impersonation_logs_status_valid"),
            choices_check("end_reason", EndReason, "impersonation_logs_end_reason_valid"),
            models.CheckConstraint(
                condition=(Q(status="active") & Q(ended_at__isnull=True) & Q(end_reason__isnull=True))
                | (~Q(status="active") & Q(ended_at__isnull=False) & Q(end_reason__isnull=False)),
                name="impersonation_logs_ended_consistent",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("started_at")), name="impersonation_logs_expires_after_start"
            ),
            models.CheckConstraint(
                condition=Q(token_digest__isnull=False)
                | Q(admin_token_digest__isnull=False)
                | Q(admin_session_key__isnull=False),
                name="impersonation_logs_bound_to_a_credential",
            ),
            models.UniqueConstraint(
                fields=["admin_user"],
                condition=Q(status="active"),
                name="impersonation_logs_one_active_per_admin",
                violation_error_message="This admin already has an active impersonation.",
            ),
            *non_negative_check(["request_count", "write_count"], "impersonation_logs"),
        ]
        indexes = [
            models.Index(fields=["tenant", "-started_at"], name="impersonation_logs_tenant_idx"),
            models.Index(fields=["impersonated_user", "-started_at"], name="impersonation_logs_target_idx"),
            models.Index(fields=["expires_at"], condition=Q(status="active"), name="impersonation_logs_live_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.admin_user} as {self.impersonated_user} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnly("Impersonation logs are append-only: end a session through its service.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Impersonation logs are append-only: they are never deleted.")

    @property
    def is_active(self) -> bool:
        return self.status == ImpersonationStatus.ACTIVE
