"""The filter language through `filter_queryset` / `filter_matches`: every operator of every type,
NULL semantics, relative dates in the tenant's time zone, "me", nesting, the old format, errors."""

import datetime as dt
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contacts.models import Contact
from crm.actor import Actor
from crm.errors import ApplicationError
from crm.models import Role
from filters.language import FilterError
from filters.models import FilterConfig
from filters.services import filter_compile, filter_config_update, filter_matches, filter_queryset
from tests.conftest import member
from tests.factories import ActivityFactory, ContactFactory, ProjectFactory

DENVER = zoneinfo.ZoneInfo("America/Denver")
UTC = dt.UTC


@pytest.fixture
def people(tenant, owner, extra_catalog):
    """Three contacts covering values, NULLs and empties; named by first name."""
    teammate = member(tenant, Role.MEMBER, "teammate")
    ann = ContactFactory(
        tenant=tenant,
        first_name="Ann",
        address_city="Denver",
        insurance_carrier="State Farm",
        lead_score=80,
        tags=["storm", "vip"],
        assigned_to=owner,
        roof_age=10,
        last_inspection_date=dt.date(2026, 11, 30),
        stage="qualified",
        custom_fields={"roof_color": "red", "square_feet": 2000, "storm_date": "2026-06-01", "gutters": True},
    )
    bob = ContactFactory(
        tenant=tenant,
        first_name="Bob",
        address_city="Boulder",
        insurance_carrier=None,
        lead_score=40,
        tags=["storm"],
        assigned_to=None,
        roof_age=None,
        last_inspection_date=None,
        stage="new",
        custom_fields={},
    )
    cal = ContactFactory(
        tenant=tenant,
        first_name="Cal",
        address_city=None,
        insurance_carrier="USAA",
        lead_score=0,
        tags=[],
        assigned_to=teammate,
        roof_age=25,
        last_inspection_date=dt.date(2026, 10, 1),
        stage="won",
        is_organization=True,
        company="Cal Holdings",
        custom_fields={"roof_color": "Blue", "gutters": False},
    )
    ContactFactory(tenant=tenant, first_name="Deleted", address_city="Denver", is_deleted=True)
    return {"Ann": ann, "Bob": bob, "Cal": cal, "teammate": teammate}


def names(queryset) -> list[str]:
    return sorted(queryset.values_list("first_name", flat=True))


CASES = [
    # text, case-insensitive; the negations include NULL
    ("address_city", "equals", "denver", ["Ann"]),
    ("address_city", "not_equals", "Denver", ["Bob", "Cal"]),
    ("address_city", "contains", "OUL", ["Bob"]),
    ("address_city", "not_contains", "den", ["Bob", "Cal"]),
    ("address_city", "starts_with", "bou", ["Bob"]),
    ("address_city", "ends_with", "ER", ["Ann", "Bob"]),
    ("address_city", "in", ["denver", "BOULDER"], ["Ann", "Bob"]),
    ("address_city", "not_in", ["Denver"], ["Bob", "Cal"]),
    ("address_city", "is_null", None, ["Cal"]),
    ("address_city", "is_not_null", None, ["Ann", "Bob"]),
    ("first_name", "is_null", None, []),
    # a value list (select / multi_select)
    ("stage", "equals", "won", ["Cal"]),
    ("stage", "not_equals", "won", ["Ann", "Bob"]),
    ("stage", "in", ["new", "won"], ["Bob", "Cal"]),
    ("stage", "not_in", ["new"], ["Ann", "Cal"]),
    ("stage", "is_not_null", None, ["Ann", "Bob", "Cal"]),
    # numbers
    ("lead_score", "equals", 80, ["Ann"]),
    ("lead_score", "not_equals", 80, ["Bob", "Cal"]),
    ("lead_score", "greater_than", 40, ["Ann"]),
    ("lead_score", "greater_than_or_equal", 40, ["Ann", "Bob"]),
    ("lead_score", "less_than", 40, ["Cal"]),
    ("lead_score", "less_than_or_equal", 40, ["Bob", "Cal"]),
    ("lead_score", "between", [0, 40], ["Bob", "Cal"]),
    ("lead_score", "in", [0, 80], ["Ann", "Cal"]),
    ("lead_score", "not_in", [0], ["Ann", "Bob"]),
    ("lead_score", "is_null", None, []),
    ("roof_age", "greater_than", 10, ["Cal"]),
    ("roof_age", "not_equals", 10, ["Bob", "Cal"]),
    ("roof_age", "not_in", [10, 25], ["Bob"]),
    ("roof_age", "is_null", None, ["Bob"]),
    # dates
    ("last_inspection_date", "equals", "2026-11-30", ["Ann"]),
    ("last_inspection_date", "not_equals", "2026-11-30", ["Bob", "Cal"]),
    ("last_inspection_date", "greater_than", "2026-10-01", ["Ann"]),
    ("last_inspection_date", "greater_than_or_equal", "2026-10-01", ["Ann", "Cal"]),
    ("last_inspection_date", "less_than", "2026-11-30", ["Cal"]),
    ("last_inspection_date", "less_than_or_equal", "2026-11-30", ["Ann", "Cal"]),
    ("last_inspection_date", "between", ["2026-10-01", "2026-10-31"], ["Cal"]),
    ("last_inspection_date", "is_null", None, ["Bob"]),
    ("last_inspection_date", "is_not_null", None, ["Ann", "Cal"]),
    # booleans
    ("is_organization", "equals", True, ["Cal"]),
    ("is_organization", "not_equals", True, ["Ann", "Bob"]),
    ("is_organization", "is_null", None, []),
    # users: "me" is the actor's user (the owner); negations include the unassigned
    ("assigned_to", "equals", "me", ["Ann"]),
    ("assigned_to", "not_equals", "me", ["Bob", "Cal"]),
    ("assigned_to", "in", ["me", "teammate"], ["Ann", "Cal"]),
    ("assigned_to", "not_in", ["me"], ["Bob", "Cal"]),
    ("assigned_to", "is_null", None, ["Bob"]),
    ("assigned_to", "is_not_null", None, ["Ann", "Cal"]),
    # tags (a text array): empty counts as null
    ("tags", "any_of", ["vip", "other"], ["Ann"]),
    ("tags", "any_of", ["storm"], ["Ann", "Bob"]),
    ("tags", "all_of", ["storm", "vip"], ["Ann"]),
    ("tags", "none_of", ["vip"], ["Bob", "Cal"]),
    ("tags", "is_null", None, ["Cal"]),
    ("tags", "is_not_null", None, ["Ann", "Bob"]),
    # custom fields (keys of the custom_fields JSON), read as their catalog entry's type says
    ("custom_fields.roof_color", "equals", "blue", ["Cal"]),
    ("custom_fields.roof_color", "not_equals", "red", ["Bob", "Cal"]),
    ("custom_fields.roof_color", "in", ["RED", "blue"], ["Ann", "Cal"]),
    ("custom_fields.roof_color", "is_null", None, ["Bob"]),
    ("custom_fields.square_feet", "greater_than", 1000, ["Ann"]),
    ("custom_fields.square_feet", "between", [2000, 2000], ["Ann"]),
    ("custom_fields.square_feet", "not_equals", 2000, ["Bob", "Cal"]),
    ("custom_fields.storm_date", "less_than", "2026-07-01", ["Ann"]),
    ("custom_fields.storm_date", "equals", "2026-06-01", ["Ann"]),
    ("custom_fields.gutters", "equals", False, ["Cal"]),
    ("custom_fields.gutters", "not_equals", True, ["Bob", "Cal"]),
]


@pytest.mark.parametrize(("field", "op", "value", "expected"), CASES, ids=lambda v: str(v))
def test_every_operator_of_every_type(field, op, value, expected, actor, people):
    if value == ["me", "teammate"]:
        value = ["me", people["teammate"].pk]
    condition = {"field": field, "op": op} | ({} if value is None else {"value": value})

    matched = names(filter_queryset(actor=actor, entity_type="contacts", tree=condition))

    assert matched == expected
    for name in ("Ann", "Bob", "Cal"):
        assert filter_matches(actor=actor, entity_type="contacts", tree=condition, record=people[name]) == (
            name in expected
        )


def test_a_user_id_names_that_member(actor, people):
    tree = {"field": "assigned_to", "op": "equals", "value": people["teammate"].pk}
    assert names(filter_queryset(actor=actor, entity_type="contacts", tree=tree)) == ["Cal"]


def test_me_is_the_effective_user(tenant, people):
    as_teammate = Actor(tenant=tenant, user=people["teammate"])
    tree = {"field": "assigned_to", "op": "equals", "value": "me"}
    assert names(filter_queryset(actor=as_teammate, entity_type="contacts", tree=tree)) == ["Cal"]


def test_nesting_and_not(actor, people):
    tree = {
        "and": [
            {"field": "tags", "op": "any_of", "value": ["storm"]},
            {
                "or": [
                    {"field": "lead_score", "op": "greater_than", "value": 50},
                    {"field": "address_city", "op": "is_null"},
                ]
            },
        ]
    }
    assert names(filter_queryset(actor=actor, entity_type="contacts", tree=tree)) == ["Ann"]
    negated = {"not": tree}
    assert names(filter_queryset(actor=actor, entity_type="contacts", tree=negated)) == ["Bob", "Cal"]
    # not of a condition on a nullable column is its complement: the NULL row included
    assert names(
        filter_queryset(
            actor=actor, entity_type="contacts", tree={"not": {"field": "roof_age", "op": "greater_than", "value": 20}}
        )
    ) == ["Ann", "Bob"]
    assert names(filter_queryset(actor=actor, entity_type="contacts", tree={"and": []})) == ["Ann", "Bob", "Cal"]


def test_the_old_flat_format_is_normalised(actor, people):
    flat = {
        "stage": {"operator": "in", "value": ["new", "qualified"]},
        "lead_score": {"operator": "greater_than", "value": 50},
    }

    compiled = filter_compile(actor=actor, entity_type="contacts", tree=flat)

    assert compiled.tree == {
        "and": [
            {"field": "stage", "op": "in", "value": ["new", "qualified"]},
            {"field": "lead_score", "op": "greater_than", "value": 50},
        ]
    }
    assert names(filter_queryset(actor=actor, entity_type="contacts", tree=flat)) == ["Ann"]


def test_related_paths(tenant, actor, people, extra_catalog):
    job = ProjectFactory(tenant=tenant, contact=people["Ann"], status="scheduled")
    ProjectFactory(tenant=tenant, contact=people["Bob"])
    call = ActivityFactory(tenant=tenant, contact=people["Cal"], project=job)
    ActivityFactory(tenant=tenant, contact=people["Bob"])

    projects = filter_queryset(
        actor=actor, entity_type="projects", tree={"field": "contact.city", "op": "equals", "value": "DENVER"}
    )
    mine = filter_queryset(
        actor=actor, entity_type="projects", tree={"field": "contact.assigned_to", "op": "equals", "value": "me"}
    )
    activities = filter_queryset(
        actor=actor,
        entity_type="activities",
        tree={
            "and": [
                {"field": "contact.stage", "op": "in", "value": ["won"]},
                {"field": "project.status", "op": "equals", "value": "scheduled"},
            ]
        },
    )

    assert list(projects) == [job]
    assert list(mine) == [job]
    assert list(activities) == [call]


# Relative dates: the tenant's day, not UTC's ---------------------------------------------------


@pytest.fixture
def denver(tenant):
    tenant.timezone = "America/Denver"
    tenant.save(update_fields=["timezone"])
    return tenant


def created(tenant, name: str, when: dt.datetime) -> None:
    ContactFactory(tenant=tenant, first_name=name, created_at=when)


def test_today_at_2330_in_denver_is_denvers_day(denver, actor):
    now = dt.datetime(2026, 12, 3, 23, 30, tzinfo=DENVER)  # 06:30 UTC on Dec 4
    created(denver, "early", dt.datetime(2026, 12, 3, 0, 10, tzinfo=DENVER))
    created(denver, "evening", dt.datetime(2026, 12, 3, 18, 0, tzinfo=DENVER))  # Dec 4 in UTC
    created(denver, "yesterday-late", dt.datetime(2026, 12, 2, 23, 59, tzinfo=DENVER))
    created(denver, "tomorrow", dt.datetime(2026, 12, 4, 0, 0, tzinfo=DENVER))

    def run(op, value=None):
        tree = {"field": "created_at", "op": op} | ({"value": value} if value is not None else {})
        return names(filter_queryset(actor=actor, entity_type="contacts", tree=tree, now=now))

    assert run("today") == ["early", "evening"]
    assert run("yesterday") == ["yesterday-late"]
    assert run("last_n_days", 2) == ["early", "evening", "yesterday-late"]
    assert run("next_n_days", 2) == ["early", "evening", "tomorrow"]
    assert run("equals", "2026-12-03") == ["early", "evening"]
    assert run("greater_than", "2026-12-03") == ["tomorrow"]
    assert run("less_than_or_equal", "2026-12-02") == ["yesterday-late"]


@pytest.mark.parametrize(
    ("now", "today", "yesterday"),
    [
        # autumn: Nov 1 2026 has 25 hours in Denver (MDT -> MST at 02:00)
        (dt.datetime(2026, 11, 1, 23, 30, tzinfo=DENVER), ["nov1-0030", "nov1-2345"], ["oct31-2330"]),
        # spring: Mar 8 2026 has 23 hours (MST -> MDT at 02:00)
        (dt.datetime(2026, 3, 8, 23, 30, tzinfo=DENVER), ["mar8-0030", "mar8-2345"], ["mar7-2330"]),
    ],
    ids=["autumn", "spring"],
)
def test_days_across_a_dst_change(denver, actor, now, today, yesterday):
    for name, when in {
        "oct31-2330": dt.datetime(2026, 10, 31, 23, 30, tzinfo=DENVER),
        "nov1-0030": dt.datetime(2026, 11, 1, 0, 30, tzinfo=DENVER),
        "nov1-2345": dt.datetime(2026, 11, 1, 23, 45, tzinfo=DENVER),
        "mar7-2330": dt.datetime(2026, 3, 7, 23, 30, tzinfo=DENVER),
        "mar8-0030": dt.datetime(2026, 3, 8, 0, 30, tzinfo=DENVER),
        "mar8-2345": dt.datetime(2026, 3, 8, 23, 45, tzinfo=DENVER),
    }.items():
        created(denver, name, when)

    def run(op):
        return names(
            filter_queryset(actor=actor, entity_type="contacts", tree={"field": "created_at", "op": op}, now=now)
        )

    assert run("today") == today
    assert run("yesterday") == yesterday


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("today", None, ["2026-12-03"]),
        ("yesterday", None, ["2026-12-02"]),
        ("last_n_days", 3, ["2026-12-01", "2026-12-02", "2026-12-03"]),
        ("next_n_days", 3, ["2026-12-03", "2026-12-04", "2026-12-05"]),
        (
            "this_week",
            None,
            ["2026-11-30", "2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04", "2026-12-05", "2026-12-06"],
        ),
        ("last_week", None, ["2026-11-23", "2026-11-29"]),
        (
            "this_month",
            None,
            [
                "2026-12-01",
                "2026-12-02",
                "2026-12-03",
                "2026-12-04",
                "2026-12-05",
                "2026-12-06",
                "2026-12-07",
                "2026-12-31",
            ],
        ),
        ("last_month", None, ["2026-11-01", "2026-11-22", "2026-11-23", "2026-11-29", "2026-11-30"]),
        (
            "this_quarter",
            None,
            [
                "2026-10-01",
                "2026-11-01",
                "2026-11-22",
                "2026-11-23",
                "2026-11-29",
                "2026-11-30",
                "2026-12-01",
                "2026-12-02",
                "2026-12-03",
                "2026-12-04",
                "2026-12-05",
                "2026-12-06",
                "2026-12-07",
                "2026-12-31",
            ],
        ),
    ],
)
def test_relative_periods_on_a_date_column(denver, actor, op, value, expected):
    days = [
        "2026-09-30",
        "2026-10-01",
        "2026-11-01",
        "2026-11-22",
        "2026-11-23",
        "2026-11-29",
        "2026-11-30",
        "2026-12-01",
        "2026-12-02",
        "2026-12-03",
        "2026-12-04",
        "2026-12-05",
        "2026-12-06",
        "2026-12-07",
        "2026-12-31",
        "2027-01-01",
    ]
    for day in days:
        ProjectFactory(tenant=denver, name=day, scheduled_start=dt.date.fromisoformat(day))
    now = dt.datetime(2026, 12, 3, 23, 30, tzinfo=DENVER)  # a Thursday
    tree = {"field": "scheduled_start", "op": op} | ({"value": value} if value is not None else {})

    matched = filter_queryset(actor=actor, entity_type="projects", tree=tree, now=now)

    assert sorted(matched.values_list("name", flat=True)) == expected


def test_this_year(denver, actor):
    for day in ("2025-12-31", "2026-01-01", "2026-12-31", "2027-01-01"):
        ProjectFactory(tenant=denver, name=day, scheduled_start=dt.date.fromisoformat(day))
    now = dt.datetime(2026, 12, 31, 23, 30, tzinfo=DENVER)  # already 2027 in UTC
    matched = filter_queryset(
        actor=actor, entity_type="projects", tree={"field": "scheduled_start", "op": "this_year"}, now=now
    )
    assert sorted(matched.values_list("name", flat=True)) == ["2026-01-01", "2026-12-31"]


# Validation: every problem, each with the path of its node ---------------------------------------


def errors_of(actor, tree, entity_type="contacts") -> list[str]:
    with pytest.raises(FilterError) as caught:
        filter_compile(actor=actor, entity_type=entity_type, tree=tree)
    assert caught.value.attr == "filter"
    return caught.value.messages


@pytest.mark.parametrize(
    ("tree", "messages"),
    [
        ([1], ["filter: expected an object (a condition, or and / or / not)"]),
        ({"field": "nope", "op": "equals", "value": 1}, ["field: unknown field 'nope' for contacts"]),
        ({"field": "email", "op": "equals", "value": "a"}, ["field: unknown field 'email' for contacts"]),
        (
            {"field": "stage", "op": "contains", "value": "n"},
            [
                "op: 'contains' is not an operator of multi_select fields; "
                "use one of: equals, not_equals, in, not_in, is_null, is_not_null"
            ],
        ),
        (
            {
                "and": [
                    {"field": "stage", "op": "in", "value": ["new"]},
                    {"or": [{"field": "created_at", "op": "equals", "value": "2026-13-01"}]},
                ]
            },
            ["and[1].or[0].value: expected a date (YYYY-MM-DD)"],
        ),
        ({"field": "lead_score", "op": "equals", "value": "80"}, ["value: expected a number"]),
        ({"field": "lead_score", "op": "less_than", "value": 10.5}, ["value: expected a whole number"]),
        (
            {"field": "lead_score", "op": "between", "value": [50, 10]},
            ["value: expected [low, high] with low not above high"],
        ),
        (
            {"field": "stage", "op": "in", "value": ["new", "maybe"]},
            ["value[1]: expected one of: new, contacted, qualified, proposal, negotiation, won, lost"],
        ),
        ({"field": "stage", "op": "in", "value": []}, ["value: expected a list of 1 to 500 values"]),
        ({"field": "tags", "op": "any_of", "value": ["x"] * 501}, ["value: expected a list of 1 to 500 values"]),
        (
            {"field": "address_city", "op": "equals", "value": "x" * 256},
            ["value: expected text of at most 255 characters"],
        ),
        ({"field": "is_organization", "op": "equals", "value": "yes"}, ["value: expected true or false"]),
        ({"field": "assigned_to", "op": "equals", "value": "you"}, ['value: expected a user id or "me"']),
        ({"field": "created_at", "op": "today", "value": "2026-01-01"}, ["value: today takes no value"]),
        (
            {"field": "created_at", "op": "last_n_days", "value": 0},
            ["value: expected a whole number of days from 1 to 3650"],
        ),
        ({"field": "stage", "op": "in", "value": ["new"], "extra": 1}, ["filter: unknown key(s) 'extra'"]),
        ({"and": [], "or": []}, ["filter: a group has exactly one key (and, or or not); got ['and', 'or']"]),
        ({"or": []}, ["or: an or needs at least one condition"]),
        ({"and": {"field": "stage"}}, ["and: expected a list of conditions"]),
        (
            {"not": {"not": {"not": {"not": {"not": {"not": {"field": "stage", "op": "is_null"}}}}}}},
            ["not.not.not.not.not.not: nested deeper than 5 levels"],
        ),
        ({"and": [{"field": "stage", "op": "is_null"}] * 51}, ["filter: 51 conditions; at most 50"]),
        (
            {"and": [{"field": "nope", "op": "equals"}, {"field": "lead_score", "op": "equals", "value": None}]},
            ["and[0].field: unknown field 'nope' for contacts", "and[1].value: expected a number"],
        ),
    ],
)
def test_each_validation_error_names_its_path(actor, tree, messages):
    assert errors_of(actor, tree) == messages


def test_an_inactive_field_is_refused(actor):
    config = FilterConfig.objects.get(tenant=actor.tenant, entity_type="contacts", field_name="source")
    filter_config_update(config=config, actor=actor, is_active=False)

    assert errors_of(actor, {"field": "source", "op": "equals", "value": "website"}) == [
        "field: the filter 'source' is inactive"
    ]


def test_a_member_of_another_tenant_is_refused(actor, other_user):
    assert errors_of(actor, {"and": [{"field": "assigned_to", "op": "in", "value": [other_user.pk]}]}) == [
        f"and[0].value[0]: user {other_user.pk} is not a member of this tenant"
    ]


def test_another_entitys_field_is_unknown(actor):
    assert errors_of(actor, {"field": "stage", "op": "in", "value": ["new"]}, entity_type="projects") == [
        "field: unknown field 'stage' for projects"
    ]


def test_an_unknown_entity_is_refused(actor):
    with pytest.raises(ApplicationError) as caught:
        filter_compile(actor=actor, entity_type="users", tree={"and": []})
    assert caught.value.attr == "entity_type"


# Injection attempts: refused, or plain parameters ---------------------------------------------


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ({"field": "stage; DROP TABLE contacts; --", "op": "equals", "value": "new"}, "field: unknown field"),
        ({"field": "tenant_id", "op": "equals", "value": 1}, "field: unknown field"),
        ({"field": "custom_fields.a__b", "op": "equals", "value": 1}, "field: unknown field"),
        ({"field": "address_city", "op": "equals') OR 1=1 --", "value": "x"}, "op: "),
        ({"field": "address_city", "op": "regex", "value": ".*"}, "op: 'regex' is not an operator"),
    ],
)
def test_injection_in_fields_and_operators_is_refused(actor, tree, message):
    assert errors_of(actor, tree)[0].startswith(message)


def test_injection_in_values_is_a_parameter(actor, people):
    attack = "x' OR '1'='1'; DROP TABLE contacts; --"
    tree = {
        "or": [
            {"field": "address_city", "op": "contains", "value": attack},
            {"field": "stage", "op": "equals", "value": "won"},
        ]
    }
    queryset = filter_queryset(actor=actor, entity_type="contacts", tree=tree)
    sql, params = queryset.query.sql_with_params()

    with CaptureQueriesContext(connection):
        matched = names(queryset)

    assert attack not in sql
    assert any(attack in str(param) for param in params)
    assert matched == ["Cal"]
    assert Contact.objects.filter(tenant=actor.tenant).count() == 4


def test_filter_matches_refuses_a_record_of_another_kind(actor, people):
    with pytest.raises(ValueError, match="not a record of projects"):
        filter_matches(actor=actor, entity_type="projects", tree={"and": []}, record=people["Ann"])


def test_another_tenants_record_never_matches(actor, other_tenant):
    foreign = ContactFactory(tenant=other_tenant)
    assert filter_matches(actor=actor, entity_type="contacts", tree={"and": []}, record=foreign) is False
