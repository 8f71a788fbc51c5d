"""The SPA's impersonation token in DRF (listed in `REST_FRAMEWORK`, before the API tokens).

Kept apart from `impersonation.requests`: DRF imports its authentication classes while
`rest_framework.views` is still loading, so this module imports no view code.
"""

from typing import Any

from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from impersonation.services import TOKEN_PREFIX


def request_impersonation_token(request: HttpRequest) -> str | None:
    """The impersonation token the request carries (`Authorization: Token rdgimp_...`), if any."""
    scheme, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme == "Token" and key.startswith(TOKEN_PREFIX):
        return key.strip()
    return None


class ImpersonationTokenAuthentication(BaseAuthentication):
    """Accepts the session the actor middleware found for an impersonation token.

    A token with the impersonation prefix and no active session behind it (stopped,
    expired, its admin signed out) is refused here rather than handed to the API tokens.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        if request_impersonation_token(request._request) is None:
            return None
        impersonation = getattr(request._request, "impersonation", None)
        if impersonation is None or not impersonation.via_token:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return impersonation.user, impersonation.log

    def authenticate_header(self, request: Request) -> str:
        return "Token"
