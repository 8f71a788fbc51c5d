"""OpenAPI: the tenant header on every tenant-scoped operation, and the 409 error shape."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_standardized_errors.openapi import AutoSchema

TENANT_HEADER = OpenApiParameter(
    name="X-Tenant",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "The tenant to act in, by subdomain or id. Required when your user belongs to more "
        "than one tenant (400 without it); a tenant you are not a member of is a 403."
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
