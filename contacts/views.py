from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from contacts.filtersets import ContactFilterSet
from contacts.models import Contact
from contacts.serializers import ContactSerializer
from contacts.services import contact_create, contact_delete, contact_purge, contact_restore, contact_update
from contacts.tasks import contacts_reassign_task
from crm.api.fields import TenantMemberField
from crm.api.views import SoftDeleteViewSet, restore_schema
from crm.models import Role
from crm.request import TenantRequest


class ReassignSerializer(serializers.Serializer):
    from_user = TenantMemberField(active_only=False, help_text="Whose contacts move (a current or former member).")
    to_user = TenantMemberField(allow_null=True, help_text="Who takes them (null: leave them unassigned).")


class ReassignAcceptedSerializer(serializers.Serializer):
    contacts = serializers.IntegerField(help_text="How many contacts will move.")


@restore_schema(ContactSerializer)
class ContactViewSet(SoftDeleteViewSet):
    """People (and, after the organizations merge, companies) a roofing company works with."""

    serializer_class = ContactSerializer
    filterset_class = ContactFilterSet
    filter_entity = "contacts"
    ordering_fields = [
        "created_at",
        "updated_at",
        "first_name",
        "last_name",
        "company",
        "contact_category",
        "email",
        "stage",
        "substatus_since",
        "type",
        "priority",
        "lead_score",
        "address_city",
        "last_inspection_date",
    ]
    ordering = ["-created_at"]
    action_roles = {"reassign": Role.MANAGER}

    def get_tenant_queryset(self) -> QuerySet:
        return Contact.objects.all()

    def perform_create(self, serializer: Any) -> None:
        serializer.instance = contact_create(actor=self.request.actor, **serializer.validated_data)

    def perform_update(self, serializer: Any) -> None:
        serializer.instance = contact_update(
            contact=serializer.instance, actor=self.request.actor, **serializer.validated_data
        )

    def perform_soft_delete(self, record: Contact) -> None:
        contact_delete(contact=record, actor=self.request.actor)

    def perform_restore(self, record: Contact) -> Contact:
        return contact_restore(contact=record, actor=self.request.actor)

    def perform_purge(self, record: Contact) -> None:
        contact_purge(contact=record, actor=self.request.actor)

    @extend_schema(request=ReassignSerializer, responses={202: ReassignAcceptedSerializer})
    @action(detail=False, methods=["post"])
    def reassign(self, request: TenantRequest) -> Response:
        """Move every live contact of one member to another, in the background (manager+)."""
        payload = ReassignSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        from_user, to_user = payload.validated_data["from_user"], payload.validated_data["to_user"]
        count = Contact.objects.alive().filter(tenant=request.tenant, assigned_to=from_user).count()
        arguments = {
            **request.actor.ids(),
            "from_user_id": from_user.pk,
            "to_user_id": to_user.pk if to_user else None,
        }
        # Under Django every task is a DjangoTask, which has delay_on_commit; celery-types types
        # shared_task as returning a plain Task.
        contacts_reassign_task.delay_on_commit(**arguments)  # type: ignore[attr-defined]
        return Response({"contacts": count}, status=status.HTTP_202_ACCEPTED)
