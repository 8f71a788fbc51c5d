from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contacts.models import Contact
from crm.api.fields import TenantPrimaryKeyRelatedField
from crm.api.serializers import TenantModelSerializer
from crm.models import Activity, AuthToken, Membership, Project, ProjectContact, Role, Tenant
from crm.services import tenant_editable_fields


class ProjectSerializer(TenantModelSerializer):
    contact = TenantPrimaryKeyRelatedField(Contact, allow_null=True, required=False)
    parent_project = TenantPrimaryKeyRelatedField(Project, allow_null=True, required=False)
    substatus = TenantPrimaryKeyRelatedField(
        Project._meta.get_field("substatus").related_model,
        allow_null=True,
        required=False,
        help_text="A substatus of the project's status; omitted on a status change: the status's default.",
    )
    reason = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=1000,
        help_text="Why the status or substatus changes; kept in the substatus history.",
    )

    class Meta:
        model = Project
        exclude = ["tenant"]
        read_only_fields = ["created_by", "updated_by", "created_at", "updated_at", "is_deleted", "substatus_since"]


class ProjectContactSerializer(TenantModelSerializer):
    """A party on a job; the project is the one in the URL."""

    contact = TenantPrimaryKeyRelatedField(Contact)
    contact_display_name = serializers.CharField(source="contact.display_name", read_only=True)

    class Meta:
        model = ProjectContact
        fields = ["id", "contact", "contact_display_name", "role", "created_by", "created_at"]
        read_only_fields = ["created_by", "created_at"]


class ActivitySerializer(TenantModelSerializer):
    contact = TenantPrimaryKeyRelatedField(Contact, allow_null=True, required=False)
    project = TenantPrimaryKeyRelatedField(Project, allow_null=True, required=False)

    class Meta:
        model = Activity
        exclude = ["tenant"]
        read_only_fields = ["created_by", "performed_by", "on_behalf_of", "recipient", "created_at"]
        extra_kwargs = {
            "type": {
                "help_text": "`notice`: a notice addressed to you (`recipient`), e.g. that an admin viewed your "
                "account; Ridgeline writes notices, the API does not take them."
            }
        }


class UserSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "first_name", "last_name"]
        read_only_fields = fields


class MembershipSerializer(serializers.ModelSerializer):
    """A member, or a pending invitation: then only the invited email, never the account's fields."""

    user = UserSummarySerializer(read_only=True, allow_null=True, help_text="Empty while the invitation is pending.")
    email = serializers.CharField(read_only=True, help_text="The invited email while pending, else the member's.")
    deactivated_reason = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=1000,
        help_text="Why the membership is deactivated (with `status: deactivated`).",
    )

    class Meta:
        model = Membership
        fields = [
            "id",
            "user",
            "email",
            "role",
            "status",
            "joined_at",
            "invited_by",
            "invited_at",
            "deactivated_at",
            "deactivated_by",
            "deactivated_reason",
        ]
        read_only_fields = [
            "id",
            "user",
            "joined_at",
            "invited_by",
            "invited_at",
            "deactivated_at",
            "deactivated_by",
        ]

    def to_representation(self, instance: Membership) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.status == Membership.Status.PENDING:
            data["user"] = None  # an account outside the tenant says nothing until it accepts
        return data


class MembershipCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(
        help_text="Whom to invite: they get an email with a link to accept (with their account, or a new one)."
    )
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class InvitationTokenSerializer(serializers.Serializer):
    token = serializers.CharField(max_length=1000, help_text="The token of the invitation's link.")


class InvitationAcceptSerializer(InvitationTokenSerializer):
    """Signed in with the invited email: the token alone. Otherwise the new account's fields too."""

    username = serializers.CharField(required=False, max_length=150)
    password = serializers.CharField(
        required=False, max_length=128, style={"input_type": "password"}, trim_whitespace=False
    )
    first_name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")
    last_name = serializers.CharField(required=False, allow_blank=True, max_length=150, default="")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("username" in attrs) != ("password" in attrs):
            missing = "password" if "username" in attrs else "username"
            raise serializers.ValidationError({missing: ["A new account needs both a username and a password."]})
        return attrs


class InvitationSerializer(serializers.Serializer):
    """What an invitation link offers, for the page that accepts it."""

    tenant = serializers.CharField(source="tenant.name")
    email = serializers.CharField()
    role = serializers.CharField()
    invited_at = serializers.DateTimeField()


class TenantSerializer(serializers.ModelSerializer):
    """The request's tenant. Every member reads it; who changes which field: `editable_fields`."""

    editable_fields = serializers.SerializerMethodField(
        help_text="The fields you may change: admins the profile, owners also the subdomain and custom domain, "
        "Ridgeline's operators everything."
    )

    class Meta:
        model = Tenant
        fields = [
            "id",
            "name",
            "subdomain",
            "custom_domain",
            "logo_url",
            "primary_color",
            "secondary_color",
            "timezone",
            "settings",
            "features",
            "subscription_status",
            "subscription_expires_at",
            "is_active",
            "created_at",
            "updated_at",
            "editable_fields",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def get_editable_fields(self, tenant: Tenant) -> list[str]:
        return sorted(tenant_editable_fields(actor=self.context["request"].actor, tenant=tenant))


class TenantSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField(source="tenant.id")
    subdomain = serializers.CharField(source="tenant.subdomain")
    name = serializers.CharField(source="tenant.name")
    timezone = serializers.CharField(source="tenant.timezone")
    role = serializers.CharField()


class MeSerializer(serializers.ModelSerializer):
    memberships = serializers.SerializerMethodField()

    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "first_name", "last_name", "memberships"]
        read_only_fields = fields

    @extend_schema_field(TenantSummarySerializer(many=True))
    def get_memberships(self, user: Any) -> list[dict[str, Any]]:
        memberships = Membership.objects.active().filter(user=user).select_related("tenant").order_by("tenant__name")
        # many=True builds a ListSerializer, whose data is a list; the stubs type it as one row's.
        return TenantSummarySerializer(memberships, many=True).data  # type: ignore[return-value]


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(help_text="Username or email.")
    password = serializers.CharField(style={"input_type": "password"}, trim_whitespace=False)


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`; it is shown only this once.")
    expiry = serializers.DateTimeField(help_text="When it stops working unless used before (use moves it forward).")


class AuthTokenSerializer(serializers.ModelSerializer):
    """One of the user's API tokens, without its secret."""

    token_key = serializers.CharField(read_only=True, help_text="The token's first characters, to recognise it.")
    current = serializers.SerializerMethodField(help_text="Whether this request was made with this token.")

    class Meta:
        model = AuthToken
        fields = ["id", "token_key", "created", "expiry", "last_used_at", "current"]
        read_only_fields = fields

    def get_current(self, token: AuthToken) -> bool:
        used = getattr(self.context.get("request"), "auth", None)
        return isinstance(used, AuthToken) and used.pk == token.pk
