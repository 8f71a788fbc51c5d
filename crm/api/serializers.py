"""Serializer plumbing shared by every app's API."""

from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from rest_framework import serializers


class TenantModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer that only validates: views hand `validated_data` to a service.

    JSON columns must hold the kind of value their default has (an object for
    `custom_fields`, a list for `materials_list`), so clients cannot store a stray string.
    """

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        model = self.Meta.model
        for name, value in attrs.items():
            try:
                field = model._meta.get_field(name)
            except FieldDoesNotExist:  # a serializer-only input such as `reason`
                continue
            if isinstance(field, models.JSONField) and field.has_default() and value is not None:
                expected = type(field.get_default())
                if not isinstance(value, expected):
                    kind = "an object" if expected is dict else "a list"
                    raise serializers.ValidationError({name: [f"{name} must be {kind}."]})
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Any:
        raise NotImplementedError("Views call a service with serializer.validated_data.")

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        raise NotImplementedError("Views call a service with serializer.validated_data.")
