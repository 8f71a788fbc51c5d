import django_filters

from crm.api.filtersets import BooleanFilter
from substatus.models import Entity, SubstatusConfig, status_choices


class SubstatusFilterSet(django_filters.FilterSet):
    entity = django_filters.ChoiceFilter(choices=Entity.choices)
    status = django_filters.MultipleChoiceFilter(choices=status_choices())
    is_active = BooleanFilter()

    class Meta:
        model = SubstatusConfig
        fields: list[str] = []
