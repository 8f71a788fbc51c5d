from typing import Any

from rest_framework import serializers

from contacts.models import Contact
from crm.api.fields import TenantMemberField
from crm.api.serializers import TenantModelSerializer


class ContactSerializer(TenantModelSerializer):
    display_name = serializers.CharField(read_only=True)
    assigned_to = TenantMemberField(allow_null=True, required=False)

    class Meta:
        model = Contact
        exclude = ["tenant", "search"]
        read_only_fields = ["created_by", "updated_by", "created_at", "updated_at", "is_deleted"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """A contact keeps a name, an email or a phone, however a create or an update leaves it."""
        attrs = super().validate(attrs)
        if not any(
            attrs.get(name, getattr(self.instance, name, None))
            for name in ("first_name", "last_name", "email", "phone", "mobile_phone")
        ):
            raise serializers.ValidationError({"first_name": ["Give the contact a name, an email or a phone number."]})
        return attrs
