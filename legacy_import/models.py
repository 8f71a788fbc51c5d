"""What `manage.py import_legacy` keeps in the target database.

`LegacyId` maps every imported row's old uuid to its new bigint id, one keyed table for all
imported tables (a `legacy_id` column on each model would touch every model, its admin, its
serializers and the organizations merge's column lists). `ImportCheckpoint` records how far
each table of an unfinished run got, batch by batch. Organizations (and the organization of
each project) wait in the two staging tables until the organizations merge takes them.
"""

from django.contrib.postgres.fields import ArrayField
from django.db import models


class LegacyId(models.Model):
    id = models.BigAutoField(primary_key=True)
    source_table = models.CharField(max_length=40, help_text="The old system's table.")
    old_id = models.UUIDField()
    new_id = models.BigIntegerField(help_text="The row's id in Ridgeline's table (organizations: the legacy id).")
    tenant_id = models.BigIntegerField(null=True, blank=True, help_text="Ridgeline's tenant of the row.")
    imported_at = models.DateTimeField(db_default=models.functions.Now(), editable=False)

    class Meta:
        db_table = "legacy_ids"
        constraints = [models.UniqueConstraint(fields=["source_table", "old_id"], name="legacy_ids_unique_old_id")]
        indexes = [models.Index(fields=["source_table", "new_id"], name="legacy_ids_new_id_idx")]

    def __str__(self) -> str:
        return f"{self.source_table} {self.old_id} -> {self.new_id}"


class ImportCheckpoint(models.Model):
    id = models.BigAutoField(primary_key=True)
    run_key = models.CharField(max_length=64, help_text="The source and tenants of the run (a digest).")
    source_table = models.CharField(max_length=40)
    last_old_id = models.UUIDField(null=True, blank=True, help_text="The last old id of the last committed batch.")
    rows_read = models.BigIntegerField(default=0)
    rows_written = models.BigIntegerField(default=0)
    rows_skipped = models.BigIntegerField(default=0)
    rows_refused = models.BigIntegerField(default=0)
    finished = models.BooleanField(default=False)
    updated_at = models.DateTimeField(db_default=models.functions.Now())

    class Meta:
        db_table = "legacy_import_checkpoints"
        constraints = [
            models.UniqueConstraint(fields=["run_key", "source_table"], name="legacy_import_checkpoints_unique")
        ]

    def __str__(self) -> str:
        return f"{self.source_table} after {self.last_old_id}"


class StagedOrganization(models.Model):
    """An imported organization waiting for the merge, in the legacy organizations table's shape."""

    id = models.BigIntegerField(primary_key=True)
    tenant_id = models.BigIntegerField()
    name = models.TextField()
    org_type = models.TextField(null=True, blank=True)  # noqa: DJ001 - the legacy column, NULL and '' differ
    stage = models.TextField(null=True, blank=True)  # noqa: DJ001 - the legacy column, NULL and '' differ
    primary_contact_id = models.BigIntegerField(null=True, blank=True)
    address_street = models.TextField(null=True, blank=True)  # noqa: DJ001 - legacy column
    address_city = models.TextField(null=True, blank=True)  # noqa: DJ001 - legacy column
    address_state = models.TextField(null=True, blank=True)  # noqa: DJ001 - legacy column
    address_zip = models.TextField(null=True, blank=True)  # noqa: DJ001 - legacy column
    phone = models.TextField(null=True, blank=True)  # noqa: DJ001 - legacy column
    email = models.TextField(null=True, blank=True)  # noqa: DJ001 - legacy column
    website = models.TextField(null=True, blank=True)  # noqa: DJ001 - legacy column
    notes = models.TextField(null=True, blank=True)  # noqa: DJ001 - legacy column
    tags = ArrayField(models.TextField(), null=True, blank=True)
    default_assignee_id = models.BigIntegerField(null=True, blank=True)
    is_deleted = models.BooleanField(null=True, blank=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "legacy_import_organizations"

    def __str__(self) -> str:
        return self.name


class StagedProjectOrganization(models.Model):
    """An imported project's legacy organization, until the merge links them."""

    project_id = models.BigIntegerField(primary_key=True)
    organization_id = models.BigIntegerField()

    class Meta:
        db_table = "legacy_import_project_organizations"

    def __str__(self) -> str:
        return f"project {self.project_id} -> organization {self.organization_id}"


class LegacyImpersonationLog(models.Model):
    """An old-system impersonation session, kept verbatim as history (never a Ridgeline session).

    Ridgeline's `impersonation_logs` is append-only and each row is a session bound to a
    credential, with an expiry and an end reason the old rows do not have; an old "active"
    row there would be a live session. So the old rows land here, every column as it was,
    the users resolved where they were imported (their old uuids always kept).
    """

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey("crm.Tenant", on_delete=models.CASCADE, related_name="+")
    admin_user = models.ForeignKey(
        "crm.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    impersonated_user = models.ForeignKey(
        "crm.User", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    old_admin_user_id = models.UUIDField(help_text="The admin's uuid in the old system.")
    old_impersonated_user_id = models.UUIDField(help_text="The impersonated user's uuid in the old system.")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.IntegerField(null=True, blank=True)
    reason = models.TextField(null=True, blank=True)  # noqa: DJ001 - the old column, NULL and '' differ
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(null=True, blank=True)  # noqa: DJ001 - the old column, NULL and '' differ
    status = models.TextField(help_text="As the old system left it (an old 'active' session is not live here).")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "legacy_import_impersonation_logs"
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-started_at"], name="legacy_imp_logs_tenant_idx")]

    def __str__(self) -> str:
        return f"{self.old_admin_user_id} as {self.old_impersonated_user_id} ({self.status})"
