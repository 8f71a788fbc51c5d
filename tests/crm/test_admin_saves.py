"""The admin saves through the service once, and each model has one admin, its own app's, that
other apps extend through crm.admin_base's contributions instead of replacing it."""

import pytest
from django import forms
from django.contrib import admin
from django.db import connection

from contacts.models import Contact
from crm import admin_base
from crm.admin_base import AdminContribution
from crm.models import Activity, Project, Role
from substatus.models import SubstatusHistory
from tests.admin import admin_url, form_errors, page_data, post_page, staff_client
from tests.api import tables
from tests.factories import ActivityFactory, ContactFactory, ProjectFactory
from tests.substatus.kinds import PROJECT, state

pytestmark = pytest.mark.django_db


def sequence(table: str) -> int:
    """The last id `table`'s sequence handed out (rolled-back inserts spend theirs too)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT last_value FROM {table}_id_seq")  # noqa: S608 (a table name of ours)
        return cursor.fetchone()[0]


def history_sequence() -> int:
    return sequence("substatus_history")


def test_a_status_change_in_the_admin_writes_one_history_row_and_steps_the_sequence_once(tenant):
    client, user = staff_client(tenant, Role.MEMBER)
    project = ProjectFactory(tenant=tenant, name="Tear-off")
    rows_before, sequence_before = SubstatusHistory.objects.count(), history_sequence()

    response = post_page(client, admin_url("change", Project, project.pk), {"status": "approved", "reason": "Signed"})

    assert response.status_code == 302
    assert state(PROJECT, project.pk) == ("approved", "contract_signed")
    assert SubstatusHistory.objects.count() == rows_before + 1
    assert history_sequence() == sequence_before + 1
    row = SubstatusHistory.objects.latest("id")
    assert (row.id, row.record_id, row.to_status, row.reason, row.changed_by_id) == (
        sequence_before + 1,
        project.pk,
        "approved",
        "Signed",
        user.pk,
    )


def test_a_refused_save_shows_the_page_again_as_posted_and_writes_nothing(tenant):
    client, _ = staff_client(tenant, Role.MEMBER)
    ContactFactory(tenant=tenant, email="dana@example.com")
    sequence_before = sequence("contacts")
    before = tables()

    response = post_page(
        client, admin_url("add", Contact), {"tenant": tenant.pk, "first_name": "Dana", "email": "DANA@example.com"}
    )

    assert form_errors(response) == [("email", "Another person of this tenant has this email.")]
    assert page_data(response)["first_name"] == "Dana"
    assert tables() == before
    # The service ran once: one INSERT was tried (and rolled back), not one more to validate.
    assert sequence("contacts") == sequence_before + 1


def test_each_models_admin_is_the_one_its_own_app_defines():
    for model, model_admin in admin.site._registry.items():
        assert type(model_admin).__module__ == f"{model._meta.app_config.name}.admin", model


def test_contact_and_project_pages_carry_the_substatus_apps_contribution(tenant):
    client, _ = staff_client(tenant, Role.VIEWER)
    contact, project = ContactFactory(tenant=tenant), ProjectFactory(tenant=tenant)

    for record, status in ((contact, "stage"), (project, "status")):
        response = client.get(admin_url("change", type(record), record.pk))
        sections = {name: options["fields"] for name, options in response.context["adminform"].fieldsets}
        fields = [name for names in sections.values() for name in names if isinstance(name, str)]
        assert fields[fields.index(status) : fields.index(status) + 4] == [
            status,
            "substatus",
            "reason",
            "substatus_since",
        ]
        assert [field.__name__ for field in sections["Substatus history"]] == ["substatus_history"]
        listed = client.get(admin_url("changelist", type(record))).context["cl"].list_display
        assert listed[listed.index(status) + 1] == "substatus"


class NoteInline(admin.TabularInline):
    model = Activity
    fields = ["type", "subject"]
    readonly_fields = ["type", "subject"]
    extra = 0

    def has_view_permission(self, request, obj=None) -> bool:
        return True


def test_an_app_adds_fields_sections_filters_and_inlines_without_replacing_the_admin(tenant, monkeypatch):
    client, _ = staff_client(tenant, Role.MEMBER)
    project = ProjectFactory(tenant=tenant)
    ActivityFactory(tenant=tenant, project=project, subject="Measured the roof")
    monkeypatch.setitem(
        admin_base._CONTRIBUTIONS,
        Project,
        [
            *admin_base.admin_contributions(Project),
            AdminContribution(
                fields_after={"name": ["priority"]},
                fieldsets=[("Campaigns", {"fields": ["enrolled"]})],
                readonly_fields=["enrolled"],
                form_fields={"priority": forms.IntegerField(required=False)},
                list_filter=["insurance_approved"],
                inlines=[NoteInline],
            ),
        ],
    )
    monkeypatch.setattr(Project, "enrolled", lambda self: "no", raising=False)
    model_admin = admin.site._registry[Project]

    page = client.get(admin_url("change", Project, project.pk))

    sections = dict(page.context["adminform"].fieldsets)
    assert sections[None]["fields"][:4] == ["tenant", "name", "priority", "project_number"]
    assert sections["Campaigns"]["fields"] == ["enrolled"]
    assert "priority" in page.context["adminform"].form.fields
    assert [formset.opts.model for formset in page.context["inline_admin_formsets"]] == [
        Project.parties.rel.related_model,
        Activity,
    ]
    listing = client.get(admin_url("changelist", Project))
    paths = [getattr(spec, "field_path", None) for spec in listing.context["cl"].filter_specs]
    assert paths.count("insurance_approved") == 2  # ProjectAdmin's own, and the contributed one
    assert type(model_admin).__module__ == "crm.admin"
