"""Helpers for admin tests: staff clients, admin URLs, and posting a page as a browser does."""

from typing import Any

from django import forms
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.db import models
from django.test import Client
from django.urls import reverse

from crm.models import Tenant
from tests.factories import MembershipFactory, UserFactory


def staff_client(tenant: Tenant, role: str, username: str = "office") -> tuple[Client, Any]:
    user = UserFactory.create(username=username, is_staff=True)
    MembershipFactory(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client, user


def admin_url(name: str, model: type[models.Model], *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


def _posted(bound: forms.BoundField) -> dict[str, Any]:
    widget = bound.field.widget
    if isinstance(widget, RelatedFieldWidgetWrapper):
        widget = widget.widget
    value = bound.value()
    if isinstance(widget, forms.CheckboxInput):
        return {bound.html_name: "on"} if value else {}
    if isinstance(widget, forms.MultiWidget):
        # A page shown again after a refused save holds the posted parts already.
        parts = list(value) if isinstance(value, list | tuple) else widget.decompress(value) or []
        return {f"{bound.html_name}_{i}": "" if part is None else str(part) for i, part in enumerate(parts)}
    if isinstance(widget, forms.SelectMultiple):
        return {bound.html_name: [str(item) for item in value or []]}
    return {bound.html_name: "" if value is None else str(value)}


def page_data(response: Any) -> dict[str, Any]:
    """What a browser posts when the add or change page in `response` is saved as shown."""
    assert response.status_code == 200, response.status_code
    shown: list[forms.BaseForm] = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        shown.append(inline.formset.management_form)
        shown.extend(inline.formset.forms)
    data: dict[str, Any] = {}
    for form in shown:
        for bound in form:
            data.update(_posted(bound))
    return data


def post_page(client: Client, url: str, changes: dict[str, Any]) -> Any:
    """Open the page, change what `changes` says (None: untick or leave empty), and save it."""
    data = page_data(client.get(url))
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return client.post(url, data)


def _listed(errors: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [
        (None if name == "__all__" else name, str(message)) for name, messages in errors.items() for message in messages
    ]


def form_errors(response: Any) -> list[tuple[str | None, str]]:
    """Every error the page shows again: (field or None, message), the inline rows' included."""
    assert response.status_code == 200, response.status_code
    found = _listed(response.context["adminform"].form.errors)
    for inline in response.context["inline_admin_formsets"]:
        for row in inline.formset.errors:
            found.extend(_listed(row))
        found.extend((None, str(message)) for message in inline.formset.non_form_errors())
    return found
