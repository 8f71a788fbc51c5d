import django_filters
from django.db.models import Q, QuerySet

from crm.api.filtersets import BooleanFilter, CreatedRangeFilterSet, DateTimeFilter, IdFilter
from crm.models import Activity, ActivityDirection, ActivityType, Membership, Project, ProjectStatus, ProjectType, Role


class ProjectFilterSet(CreatedRangeFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=ProjectStatus.choices)
    type = django_filters.MultipleChoiceFilter(choices=ProjectType.choices)
    contact = IdFilter(field_name="contact_id")
    parent_project = IdFilter(field_name="parent_project_id")
    substatus = IdFilter(field_name="substatus_id", help_text="Substatus id.")
    insurance_approved = BooleanFilter()
    quickbooks_id = django_filters.CharFilter()
    quickbooks_sync_status = django_filters.CharFilter(lookup_expr="iexact")
    scheduled_after = django_filters.DateFilter(field_name="scheduled_start", lookup_expr="gte")
    scheduled_before = django_filters.DateFilter(field_name="scheduled_start", lookup_expr="lte")
    search = django_filters.CharFilter(method="filter_search", help_text="Name or project number contains.")

    class Meta:
        model = Project
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(project_number__icontains=value))


class ActivityFilterSet(CreatedRangeFilterSet):
    type = django_filters.MultipleChoiceFilter(choices=ActivityType.choices)
    direction = django_filters.ChoiceFilter(choices=ActivityDirection.choices)
    contact = IdFilter(field_name="contact_id")
    project = IdFilter(field_name="project_id")
    performed_by = IdFilter(field_name="performed_by_id")
    is_impersonated_action = BooleanFilter(help_text="true: done by an admin while impersonating.")
    scheduled_after = DateTimeFilter(field_name="scheduled_at", lookup_expr="gte")
    scheduled_before = DateTimeFilter(field_name="scheduled_at", lookup_expr="lt")
    open = BooleanFilter(field_name="completed_at", lookup_expr="isnull", help_text="true: not completed yet.")
    search = django_filters.CharFilter(method="filter_search", help_text="Subject or content contains.")

    class Meta:
        model = Activity
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(subject__icontains=value) | Q(content__icontains=value))


class MembershipFilterSet(django_filters.FilterSet):
    role = django_filters.MultipleChoiceFilter(choices=Role.choices)
    status = django_filters.MultipleChoiceFilter(choices=Membership.Status.choices)

    class Meta:
        model = Membership
        fields: list[str] = []
