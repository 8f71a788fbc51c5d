import django_filters

from crm.api.filtersets import DateTimeFilter, IdFilter
from impersonation.models import ImpersonationLog, ImpersonationStatus


class ImpersonationLogFilterSet(django_filters.FilterSet):
    admin = IdFilter(field_name="admin_user_id", help_text="The admin's user id.")
    target = IdFilter(field_name="impersonated_user_id", help_text="The impersonated user's id.")
    status = django_filters.MultipleChoiceFilter(choices=ImpersonationStatus.choices)
    started_after = DateTimeFilter(
        field_name="started_at", lookup_expr="gte", help_text="Started at or after this ISO 8601 time."
    )
    started_before = DateTimeFilter(
        field_name="started_at", lookup_expr="lt", help_text="Started before this ISO 8601 time."
    )

    class Meta:
        model = ImpersonationLog
        fields: list[str] = []
