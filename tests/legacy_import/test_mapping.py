"""The import's decisions, without a database."""

import pytest

from legacy_import.mapping import CHOICES, CatalogRow, Mapped, Report, catalog_defaults, map_value, run_key


@pytest.mark.parametrize(
    ("field", "raw", "mapped"),
    [
        (("contacts", "stage"), "won", Mapped("won", parked=False)),
        (("contacts", "stage"), " Won ", Mapped("won", parked=False)),
        (("contacts", "stage"), "Closed Won", Mapped("won", parked=False)),
        (("contacts", "stage"), "Lead", Mapped("new", parked=True)),
        (("contacts", "stage"), None, Mapped("new", parked=False)),
        (("contacts", "priority"), "URGENT", Mapped("urgent", parked=False)),
        (("tenant_users", "role"), "Admin", Mapped("admin", parked=False)),
        (("tenant_users", "role"), "boss", Mapped("member", parked=True)),
        (("projects", "status"), "In-Progress", Mapped("in_progress", parked=False)),
        (("projects", "status"), "Canceled", Mapped("cancelled", parked=False)),
        (("projects", "type"), "roof", Mapped(None, parked=True)),
        (("activities", "type"), "Door Knock", Mapped("door_knock", parked=False)),
    ],
)
def test_a_value_is_kept_mapped_when_certain_or_parked(field, raw, mapped):
    assert map_value(CHOICES[field], raw) == mapped


def row(old_id: str, status: str, order: int, *, default: bool = False, active: bool = True) -> CatalogRow:
    return CatalogRow(old_id, "t1", "contact", status, f"key-{old_id}", order, default, active)


def test_each_status_gets_exactly_one_default():
    decisions = catalog_defaults(
        [
            row("a", "new", 2),
            row("b", "new", 1),  # none marked: the first by display order
            row("c", "won", 1, default=True, active=False),
            row("d", "won", 3, default=True),  # an active marked one wins over an inactive one
            row("e", "won", 2, default=True),
            row("f", "lost", 5, default=True),
        ]
    )
    assert [(d.status, d.default_old_id, d.marked) for d in decisions] == [
        ("lost", "f", 1),
        ("new", "b", 0),
        ("won", "e", 3),
    ]
    assert decisions[1].describe() == "contact new: default b (none was marked: the first by display order)"


def test_a_run_is_named_by_its_source_and_tenants_in_any_order():
    assert run_key("postgres://u@h/db", ["b", "a"]) == run_key("postgres://u@h/db", ["a", "b"])
    assert run_key("postgres://u@h/db", ["a"]) != run_key("postgres://u@h/other", ["a"])


def test_the_report_lists_every_parked_value_and_refused_row():
    report = Report()
    report.value("contacts", "stage", "Lead", Mapped("new", parked=True), 2)
    report.value("contacts", "stage", "Lead", Mapped("new", parked=True), 3)
    report.refuse("projects", "p-1", "contact_id c-9 belongs to another tenant")
    report.table("contacts").source_rows = 5
    assert report.as_json()["values"] == [
        {"table": "contacts", "column": "stage", "old": "Lead", "new": "new", "rows": 5, "parked": True}
    ]
    text = report.as_text()
    assert "contacts.stage 'Lead': parked, stage set to 'new' (5 rows)" in text
    assert "projects p-1: contact_id c-9 belongs to another tenant" in text
