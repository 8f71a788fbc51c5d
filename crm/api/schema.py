"""OpenAPI: the tenant header on every tenant-scoped operation, the 409 error shape, and
the API token's security scheme."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_standardized_errors.openapi import AutoSchema
from knox.settings import knox_settings

TENANT_HEADER = OpenApiParameter(
    name="X-Tenant",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "The tenant to act in: all digits is its id, anything else its subdomain. Required when "
        "your user belongs to more than one tenant (400 without it); a tenant you are not a member "
        "of is a 403."
    ),
)


class TenantAutoSchema(AutoSchema):
    def get_override_parameters(self) -> list:
        # Imported here: DRF loads this class while crm.api.views is still being defined.
        from crm.api.views import TenantMixin

        parameters = list(super().get_override_parameters())
        if isinstance(self.view, TenantMixin):
            parameters.append(TENANT_HEADER)
        return parameters


class TokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Token <token>` (crm.auth.TokenAuthentication, a knox token)."""

    target_class = "crm.auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=knox_settings.AUTH_HEADER_PREFIX
        )
