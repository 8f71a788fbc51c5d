from typing import Any

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from crm.models import Role


class HasTenantRole(BasePermission):
    """The user's role in the request's tenant reaches what the view asks for the action.

    Views say what they need with `required_role(request)`; by default viewers read
    and members write.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        membership = getattr(request, "membership", None)
        if membership is None:
            return False
        required = view.required_role(request)
        if membership.role_enum.at_least(required):
            return True
        self.message = (
            f"This needs the {required.value} role or above in {membership.tenant.name}; "
            f"your role is {membership.role}."
        )
        return False


def default_required_role(request: Request) -> Role:
    return Role.VIEWER if request.method in SAFE_METHODS else Role.MEMBER


class ApiDocsAccess(BasePermission):
    """The schema and its docs: anyone when `API_DOCS_PUBLIC`, else signed-in users."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return settings.API_DOCS_PUBLIC or bool(request.user and request.user.is_authenticated)
