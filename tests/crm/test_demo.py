"""The demo's registry (crm/demo/__init__.py): every app's `demo` module found, steps ordered by
what they declare they run after (the runner itself: tests/crm/test_seed_demo.py)."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from crm.demo import DemoRegistry, DemoStep, demo_order, demo_steps


def step(name: str, *after: str) -> DemoStep:
    return DemoStep(name=name, build=lambda actor: "", present=lambda tenant: False, after=after)


def names(steps: list[DemoStep]) -> list[str]:
    return [s.name for s in steps]


def test_every_installed_apps_demo_module_registers_its_steps():
    assert [(s.name, s.after) for s in demo_steps()] == [
        ("contacts.parties", ()),
        ("campaigns.live", ("contacts.parties",)),
        ("impersonation.viewed", ()),
        ("ai_chat.offline", ("contacts.parties",)),
        ("filters.saved", ()),
        ("substatus.own", ()),
    ]


def test_a_step_runs_after_those_it_names_otherwise_in_the_given_order():
    steps = [step("campaigns.sequences", "contacts.parties", "filters.saved"), step("contacts.parties")]
    steps += [step("filters.saved"), step("substatus.own")]

    assert names(demo_order(steps)) == ["contacts.parties", "filters.saved", "campaigns.sequences", "substatus.own"]


def test_a_step_after_an_unknown_step_is_refused():
    with pytest.raises(ImproperlyConfigured) as refused:
        demo_order([step("campaigns.sequences", "filters.saved", "contacts.parties"), step("contacts.parties")])

    assert str(refused.value) == "The demo step campaigns.sequences runs after filters.saved: no such step."


def test_steps_waiting_for_each_other_are_refused():
    with pytest.raises(ImproperlyConfigured) as refused:
        demo_order([step("contacts.parties"), step("a.first", "b.second"), step("b.second", "a.first")])

    assert str(refused.value) == "The demo steps a.first, b.second wait for each other."


def test_a_step_name_is_registered_once():
    registry = DemoRegistry()
    registry.register(step("contacts.parties"))

    with pytest.raises(ImproperlyConfigured) as refused:
        registry.register(step("contacts.parties"))

    assert str(refused.value) == "The demo step contacts.parties is registered twice."
    assert names(registry.steps()) == ["contacts.parties"]
