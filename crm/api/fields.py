"""Serializer fields that only accept rows of the request's tenant."""

from typing import Any

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
        queryset = super().get_queryset()
        request = self.context.get("request")
        tenant = getattr(request, "tenant", None)
        if tenant is None:
            return queryset.none()
        return queryset.filter(tenant=tenant)


class TenantMemberField(serializers.PrimaryKeyRelatedField):
    """A user who is an active member of the request's tenant."""

    default_error_messages = {
        "does_not_exist": 'User "{pk_value}" is not an active member of this tenant.',
    }

    def __init__(self, **kwargs: Any) -> None:
        if not kwargs.get("read_only"):
            kwargs.setdefault("queryset", get_user_model()._default_manager.all())
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        request = self.context.get("request")
        tenant = getattr(request, "tenant", None)
        queryset = super().get_queryset()
        if tenant is None:
            return queryset.none()
        return queryset.filter(pk__in=Membership.objects.active().filter(tenant=tenant).values("user_id"))
