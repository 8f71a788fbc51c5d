from rest_framework import serializers

from contacts.models import Contact
from crm.api.fields import TenantMemberField, TenantPrimaryKeyRelatedField
from crm.api.serializers import TenantModelSerializer


class ContactSerializer(TenantModelSerializer):
    display_name = serializers.CharField(read_only=True)
    assigned_to = TenantMemberField(allow_null=True, required=False)
    substatus = TenantPrimaryKeyRelatedField(
        Contact._meta.get_field("substatus").related_model,
        allow_null=True,
        required=False,
        help_text="A substatus of the contact's stage; omitted on a stage change: the stage's default.",
    )
    reason = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text="Why the stage or substatus changes; kept in the substatus history.",
    )
    company_contact = TenantPrimaryKeyRelatedField(
        Contact, allow_null=True, required=False, help_text="The company contact this person works for."
    )

    class Meta:
        model = Contact
        exclude = ["tenant", "search"]
        read_only_fields = ["created_by", "updated_by", "created_at", "updated_at", "is_deleted", "substatus_since"]
