"""OpenAPI: the tenant header on every tenant-scoped operation, the 409 error shape, and
the API token's security scheme."""

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object, force_instance
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from drf_standardized_errors.openapi import AutoSchema
from knox.settings import knox_settings
from rest_framework.relations import RelatedField
from rest_framework.serializers import CharField, Serializer
from rest_framework.settings import api_settings

from crm.constraints import constraint_codes

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
    """Adds the tenant header, and documents every 400 the API answers with: the parameters our
    own code checks (pagination, ordering, soft-delete flags, the tenant header), the rules the
    database enforces on the written model (crm.constraints) and a new link to a deleted row."""

    def get_override_parameters(self) -> list:
        # Imported here: DRF loads this class while crm.api.views is still being defined.
        from crm.api.views import TenantMixin

        parameters = list(super().get_override_parameters())
        if isinstance(self.view, TenantMixin):
            parameters.append(TENANT_HEADER)
        return parameters

    def _checked_parameters(self) -> list[str]:
        return [parameter["name"] for parameter in self._get_parameters() if parameter["in"] in ("query", "header")]

    def _should_add_validation_error_response(self) -> bool:
        return super()._should_add_validation_error_response() or bool(self._checked_parameters())

    def _get_serializer_for_validation_error_response(self) -> Any:
        """As drf-standardized-errors builds it, except that each field's error has an open
        `code`, with the codes known when the schema was made listed in its description. The
        rules behind a field live in the services, the database and the filter backends apps
        plug in (DEFAULT_FILTER_BACKENDS, e.g. the filter language of `?filter=`), each with
        codes of its own: a client must expect a code it does not know, and acts on `attr` and
        `detail`. A closed enum would make every new rule a breaking change of the schema."""
        serializer = super()._get_serializer_for_validation_error_response()
        errors: Any = serializer._declared_fields["errors"]
        errors = errors.child  # many=True: the proxy of each error
        for attr, error in list(errors.serializers.items()):
            known = ", ".join(sorted(error._declared_fields["code"].choices))
            errors.serializers[attr] = _open_code_serializer(error, f"For example: {known}.")
        return serializer

    def _get_validation_error_codes_by_field(self, data_fields: list) -> dict[str, set[str]]:
        codes = super()._get_validation_error_codes_by_field(data_fields)
        for name in self._checked_parameters():
            codes.setdefault(name, set()).add("invalid")
        if self.method not in ("POST", "PUT", "PATCH"):
            return codes
        serializer = force_instance(self.get_request_serializer())
        model = getattr(getattr(serializer, "Meta", None), "model", None)
        if not isinstance(serializer, Serializer) or model is None:
            return codes
        for attr, names in constraint_codes(model).items():
            codes.setdefault(attr or api_settings.NON_FIELD_ERRORS_KEY, set()).update(names)
        for name, field in serializer.fields.items():
            if field.read_only:
                continue
            if isinstance(field, RelatedField):
                codes.setdefault(name, set()).add("deleted")  # crm.records.record_check_links
            if not field.allow_null:
                codes.setdefault(name, set()).add("null")
        return codes


def _open_code_serializer(error: type[Serializer], help_text: str) -> type[Serializer]:
    """`error` (an attr's error serializer) with its `code` any string."""

    class OpenCodeError(error):  # type: ignore[misc,valid-type]
        code = CharField(help_text=help_text)

        class Meta:
            ref_name = getattr(error, "Meta").ref_name  # noqa: B009 - set on each error class by drf-standardized-errors

    return OpenCodeError


def validation_errors_by_pattern(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    """A postprocessing hook: an error on an item of a list or a dict names it (`tags.0`,
    `custom_fields.color`), where drf-standardized-errors documents `tags.INDEX` and
    `custom_fields.KEY`. Such an `attr` is documented by a pattern instead, and the errors' lists
    match each error against every field's entry (`oneOf`) rather than through a discriminator
    mapping of the exact names."""
    placeholders = {"INDEX": "[0-9]+", "KEY": "[^.]*"}  # a dict's key may be empty
    for component in result.get("components", {}).get("schemas", {}).values():
        attr = component.get("properties", {}).get("attr", {})
        names = attr.get("enum") or []
        if len(names) == 1 and isinstance(names[0], str) and set(names[0].split(".")) & set(placeholders):
            parts = [placeholders.get(part, re.escape(part)) for part in names[0].split(".")]
            attr.pop("enum")
            attr["pattern"] = "^" + r"\.".join(parts) + "$"
        if "oneOf" in component and component.get("discriminator", {}).get("propertyName") == "attr":
            component.pop("discriminator")
    return result


class TokenScheme(OpenApiAuthenticationExtension):
    """`Authorization: Token <token>` (crm.auth.TokenAuthentication, a knox token)."""

    target_class = "crm.auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=knox_settings.AUTH_HEADER_PREFIX
        )
