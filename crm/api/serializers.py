"""Serializer plumbing shared by every app's API."""

from collections.abc import Callable
from typing import Any, ClassVar

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from rest_framework import relations, serializers


def json_field_validator(name: str, kind: type | None) -> Callable[[Any], None]:
    """The value is of `kind` (dict or list, if given). What PostgreSQL could not store is the
    model field's own validator (crm.fields.validate_json_document), which DRF copies here."""

    def validate(value: Any) -> None:
        if value is None:
            return
        if kind is not None and not isinstance(value, kind):
            raise serializers.ValidationError(f"{name} must be {'an object' if kind is dict else 'a list'}.")

    return validate


# Fields whose to_representation() gives back a model attribute's value unchanged.
_AS_IS = (
    serializers.CharField,
    serializers.IntegerField,
    serializers.BooleanField,
    serializers.ChoiceField,
    serializers.JSONField,
    serializers.ListField,
    serializers.ReadOnlyField,
)
# Fields that convert a value with settings of their own only (never the request or context).
_CONVERTED = (serializers.DecimalField, serializers.DateTimeField, serializers.DateField, serializers.FloatField)

# name, attribute to read, conversion (None: as is); attribute None: DRF's own way.
ReadStep = tuple[str, str | None, Callable[[Any], Any] | None]


class TenantModelSerializer(serializers.ModelSerializer):
    """A ModelSerializer that only validates: views hand `validated_data` to a service.

    JSON columns must hold the kind of value their default has (an object for
    `custom_fields`, a list for `materials_list`), so clients cannot store a stray string.
    The check is a field validator, so it is reported with every other invalid field.

    Output follows a plan computed once per serializer class (which attribute to read and
    how to convert it), the same result as DRF's field-by-field walk at a third of its cost
    on list pages; fields the plan does not know (method fields, nested serializers) go the
    DRF way.
    """

    _read_plans: ClassVar[dict[type, list[ReadStep]]] = {}

    def to_representation(self, instance: Any) -> dict[str, Any]:
        plan = self._read_plans.get(type(self))
        if plan is None:
            plan = self._read_plans[type(self)] = self._read_plan()
        data: dict[str, Any] = {}
        for name, attribute, convert in plan:
            if attribute is None:
                field = self.fields[name]
                value = field.get_attribute(instance)
                empty = value.pk if isinstance(value, relations.PKOnlyObject) else value
                data[name] = None if empty is None else field.to_representation(value)
                continue
            value = getattr(instance, attribute)
            data[name] = value if value is None or convert is None else convert(value)
        return data

    def _read_plan(self) -> list[ReadStep]:
        plan: list[ReadStep] = []
        for name, field in self.fields.items():
            if field.write_only:
                continue
            step: ReadStep = (name, None, None)
            if len(field.source_attrs) == 1 and not isinstance(field, serializers.SerializerMethodField):
                source = field.source_attrs[0]
                model: type[models.Model] = self.Meta.model
                try:
                    model_field = model._meta.get_field(source)
                except FieldDoesNotExist:
                    model_field = None
                    if not isinstance(getattr(model, source, None), property):
                        plan.append(step)  # a method or something DRF resolves its own way
                        continue
                if isinstance(field, relations.PrimaryKeyRelatedField) and isinstance(model_field, models.Field):
                    step = (name, model_field.attname, None)
                elif isinstance(field, _CONVERTED):
                    step = (name, source, field.to_representation)
                elif isinstance(field, _AS_IS) and not getattr(field, "binary", False):
                    step = (name, source, None)
            plan.append(step)
        return plan

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
