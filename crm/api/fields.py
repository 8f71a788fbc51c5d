"""Serializer fields that only accept rows of the request's tenant."""

from typing import Any, cast

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from rest_framework import serializers

from crm.models import Membership


class TenantPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A foreign key to a tenant-owned model; another tenant's id is "does not exist" (400)."""

    def __init__(self, model: Any = None, **kwargs: Any) -> None:
        self.model = model
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", model._default_manager.all())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        # Only a writable field is asked for its rows, and __init__ gave every writable one a queryset.
        queryset = cast(QuerySet, super().get_queryset())
        request = self.context.get("request")
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return queryset.none()
        return queryset.filter(tenant=tenant)


class TenantMemberField(serializers.PrimaryKeyRelatedField):
    """A user who is an active member of the request's tenant (or, with `active_only=False`,
    who has been one: a deactivated or suspended member still owns rows someone must take over)."""

    default_error_messages = {
        "does_not_exist": 'User "{pk_value}" is not an active member of this tenant.',
    }

    def __init__(self, *, active_only: bool = True, **kwargs: Any) -> None:
        self.active_only = active_only
        if not active_only:
            kwargs.setdefault("error_messages", {"does_not_exist": 'User "{pk_value}" is not a member of this tenant.'})
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", get_user_model()._default_manager.all())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        request = self.context.get("request")
        tenant = getattr(request, "tenant", None)
        queryset = cast(QuerySet, super().get_queryset())  # as in TenantPrimaryKeyRelatedField
        if tenant is None:
            return queryset.none()
        memberships = Membership.objects.active() if self.active_only else Membership.objects.all()
        return queryset.filter(pk__in=memberships.filter(tenant=tenant).values("user_id"))
