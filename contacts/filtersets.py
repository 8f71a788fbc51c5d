import django_filters
from django.db.models import QuerySet

from contacts.models import Contact, ContactCategory, ContactPriority, ContactStage, ContactType
from crm.api.filtersets import BooleanFilter, CommaListFilter, CreatedRangeFilterSet, IdFilter, filter_tags_all
from crm.search import prefix_search_query


class ContactFilterSet(CreatedRangeFilterSet):
    type = django_filters.MultipleChoiceFilter(choices=ContactType.choices)
    stage = django_filters.MultipleChoiceFilter(choices=ContactStage.choices)
    priority = django_filters.MultipleChoiceFilter(choices=ContactPriority.choices)
    is_organization = BooleanFilter(help_text="true: companies only; false: people only.")
    contact_category = django_filters.MultipleChoiceFilter(choices=ContactCategory.choices)
    company_contact = IdFilter(field_name="company_contact_id", help_text="The people of this company contact.")
    assigned_to = IdFilter(field_name="assigned_to_id", help_text="User id.")
    unassigned = BooleanFilter(field_name="assigned_to", lookup_expr="isnull")
    substatus = IdFilter(field_name="substatus_id", help_text="Substatus id.")
    source = django_filters.CharFilter(lookup_expr="iexact")
    insurance_carrier = django_filters.CharFilter(lookup_expr="iexact")
    address_city = django_filters.CharFilter(lookup_expr="iexact")
    address_state = django_filters.CharFilter(lookup_expr="iexact")
    address_zip = django_filters.CharFilter()
    timezone = django_filters.CharFilter(help_text="IANA time zone, e.g. America/Denver.")
    quickbooks_customer_id = django_filters.CharFilter()
    proline_id = django_filters.CharFilter()
    sms_opt_in = BooleanFilter()
    sms_opt_out = BooleanFilter()
    email_opt_out = BooleanFilter()
    email_invalid = BooleanFilter()
    tags = CommaListFilter(method=filter_tags_all, help_text="Comma-separated; contacts having every tag.")
    search = django_filters.CharFilter(
        method="filter_search", help_text="Full-text prefix search over names, company, email, phones and website."
    )

    class Meta:
        model = Contact
        fields: list[str] = []

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        query = prefix_search_query(value)
        return queryset if query is None else queryset.filter(search=query)
