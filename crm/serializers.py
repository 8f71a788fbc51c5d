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
        read_only_fields = ["created_by", "performed_by", "on_behalf_of", "created_at"]


class UserSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = get_user_model()
        fields = ["id", "username", "email", "first_name", "last_name"]
        read_only_fields = fields


class MembershipSerializer(serializers.ModelSerializer):
    user = UserSummarySerializer(read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "status", "joined_at"]
        read_only_fields = ["id", "user", "joined_at"]


class MembershipCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(help_text="The email of an existing Ridgeline user.")
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)

    def validate_email(self, value: str) -> Any:
        """Returns the user with this email (case-insensitive)."""
        user = get_user_model()._default_manager.filter(email__iexact=value.strip()).first()
        if user is None:
            raise serializers.ValidationError(f"No Ridgeline user has the email {value!r}.", code="does_not_exist")
        return user


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
