"""The serializers' read plan gives exactly what DRF's field-by-field walk gives."""

import datetime
from decimal import Decimal

import pytest
from rest_framework import serializers

from contacts.serializers import ContactSerializer
from crm.models import Activity
from crm.serializers import ActivitySerializer, ProjectSerializer
from tests.factories import ActivityFactory, ContactFactory, ProjectFactory

pytestmark = pytest.mark.django_db

WHEN = datetime.datetime(2026, 3, 14, 15, 9, 26, 535897, tzinfo=datetime.UTC)


def full_rows(tenant, user):
    """Rows with every column filled, plus one with every optional column empty."""
    contact = ContactFactory(
        tenant=tenant,
        email="dana@example.com",
        phone="(303) 555-0142",
        mobile_phone="720-555-0199",
        address_street="1200 Larimer St",
        address_city="Denver",
        address_state="CO",
        address_zip="80204",
        latitude=Decimal("39.747200"),
        longitude=Decimal("-104.998100"),
        source="storm canvass",
        source_details={"storm": "2024-06-12 hail", "crew": ["A", "B"]},
        assigned_to=user,
        property_type="single_family",
        roof_age=17,
        last_inspection_date=datetime.date(2025, 5, 2),
        property_value=Decimal("612500.00"),
        square_footage=2450,
        stories=2,
        insurance_carrier="State Farm",
        policy_number="SF-88-1234",
        claim_number="CLM-2024-0099",
        deductible=Decimal("1500.50"),
        lead_score=87,
        priority="urgent",
        custom_fields={"gate_code": "4421", "dog": True},
        tags=["hail-2024", "insurance-claim"],
        created_by=user,
        updated_by=user,
    )
    project = ProjectFactory(
        tenant=tenant,
        contact=contact,
        project_number="J-1001",
        type="replacement",
        estimated_value=Decimal("18450.00"),
        approved_value=Decimal("17900.00"),
        profit_margin=Decimal("-3.25"),
        scheduled_start=datetime.date(2026, 4, 1),
        description="Full tear-off",
        materials_list=[{"sku": "GAF-HDZ", "bundles": 72}],
        supplements=[],
        insurance_approved=True,
        quality_score=95,
        created_by=user,
    )
    activity = ActivityFactory(
        tenant=tenant,
        contact=contact,
        project=project,
        type=Activity.Type.CALL,
        direction="outbound",
        duration_seconds=312,
        scheduled_at=WHEN,
        completed_at=WHEN,
        outcome_details={"next": "send estimate"},
        created_by=user,
        performed_by=user,
    )
    return contact, project, activity, ContactFactory(tenant=tenant, email=None, phone=None, address_city=None)


def drf_walk(serializer, instance):
    return serializers.ModelSerializer.to_representation(serializer, instance)


def test_the_plan_matches_drf_on_full_and_empty_rows(tenant, member_user):
    contact, project, activity, sparse = full_rows(tenant, member_user)
    cases = [
        (ContactSerializer, contact),
        (ContactSerializer, sparse),
        (ProjectSerializer, project),
        (ActivitySerializer, activity),
    ]

    for serializer_class, instance in cases:
        type(instance).objects.filter(pk=instance.pk).update(created_at=WHEN)
        instance.refresh_from_db()
        serializer = serializer_class()

        assert serializer.to_representation(instance) == drf_walk(serializer, instance)
        assert list(serializer.to_representation(instance)) == list(drf_walk(serializer, instance))
