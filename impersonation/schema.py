"""The impersonation token in the OpenAPI schema: it is sent in the same `Authorization: Token`
header as the API tokens, so `tokenAuth` documents it and it adds no scheme of its own."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ImpersonationTokenScheme(OpenApiAuthenticationExtension):
    target_class = "impersonation.authentication.ImpersonationTokenAuthentication"
    name: list[str] = []

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        return []

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {}
