"""Serializer plumbing shared by every app's API."""

from collections.abc import Callable
from typing import Any

from django.db import models
from rest_framework import serializers


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def json_field_validator(name: str, kind: type | None) -> Callable[[Any], None]:
    """The value is of `kind` (dict or list, if given) and storable: PostgreSQL's jsonb refuses \\u0000."""

    def validate(value: Any) -> None:
        if value is None:
            return
        if kind is not None and not isinstance(value, kind):
            raise serializers.ValidationError(f"{name} must be {'an object' if kind is dict else 'a list'}.")
        if _has_nul(value):
            raise serializers.ValidationError("Null characters are not allowed.", code="null_characters_not_allowed")

    return validate


class TenantModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer that only validates: views hand `validated_data` to a service.

    JSON columns must hold the kind of value their default has (an object for
    `custom_fields`, a list for `materials_list`), so clients cannot store a stray string,
    and nothing PostgreSQL would refuse. The check is a field validator, so it is reported
    with every other invalid field.
    """

    def build_standard_field(self, field_name: str, model_field: models.Field) -> tuple[type, dict[str, Any]]:
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        if isinstance(model_field, models.JSONField):
            kind = type(model_field.get_default()) if model_field.has_default() else None
            field_kwargs["validators"] = [*field_kwargs.get("validators", []), json_field_validator(field_name, kind)]
        return field_class, field_kwargs

    def create(self, validated_data: dict[str, Any]) -> Any:
        raise NotImplementedError("Views call a service with serializer.validated_data.")

    def update(self, instance: Any, validated_data: dict[str, Any]) -> Any:
        raise NotImplementedError("Views call a service with serializer.validated_data.")
