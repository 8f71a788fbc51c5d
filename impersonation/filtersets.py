import django_filters

from crm.api.filtersets import IdFilter
from impersonation.models import ImpersonationLog, ImpersonationStatus


class ImpersonationLogFilterSet(django_filters.FilterSet):
    admin = IdFilter(field_name="admin_user_id", help_text="The admin's user id.")
    target = IdFilter(field_name="impersonated_user_id", help_text="The impersonated user's id.")
    status = django_filters.MultipleChoiceFilter(choices=ImpersonationStatus.choices)
    started_after = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="gte")
    started_before = django_filters.IsoDateTimeFilter(field_name="started_at", lookup_expr="lt")

    class Meta:
        model = ImpersonationLog
        fields: list[str] = []
