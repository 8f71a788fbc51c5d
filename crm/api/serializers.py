"""Serializer plumbing shared by every app's API."""

from collections.abc import Callable
from typing import Any

from django.db import models
from rest_framework import serializers


def json_kind_validator(name: str, kind: type) -> Callable[[Any], None]:
    def validate(value: Any) -> None:
        if value is not None and not isinstance(value, kind):
            raise serializers.ValidationError(f"{name} must be {'an object' if kind is dict else 'a list'}.")

    return validate


class TenantModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer that only validates: views hand `validated_data` to a service.

    JSON columns must hold the kind of value their default has (an object for
    `custom_fields`, a list for `materials_list`), so clients cannot store a stray string.
    The check is a field validator, so it is reported with every other invalid field.
    """

    def build_standard_field(self, field_name: str, model_field: models.Field) -> tuple[type, dict[str, Any]]:
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if isinstance(model_field, models.JSONField) and model_field.has_default():
            kind = type(model_field.get_default())
            field_kwargs["validators"] = [*field_kwargs.get("validators", []), json_kind_validator(field_name, kind)]
        return field_class, field_kwargs

    def create(self, validated_data: dict[str, Any]) -> Any:
        raise NotImplementedError("Views call a service with serializer.validated_data.")

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        raise NotImplementedError("Views call a service with serializer.validated_data.")
