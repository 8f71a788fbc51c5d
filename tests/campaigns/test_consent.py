"""Consent is part of entering: the first message's channel decides what the contact must allow."""

import pytest

from campaigns.services import campaign_enroll
from tests.campaigns.conftest import EMAIL, SMS, TASK, build
from tests.factories import ContactFactory

EMAIL_CASES = [
    ({}, None),
    ({"email": None}, "no_consent"),
    ({"email_opt_out": True}, "no_consent"),
    ({"email_invalid": True}, "no_consent"),
    ({"sms_opt_out": True}, None),  # another channel's refusal does not matter
]
SMS_CASES = [
    ({"sms_opt_in": True, "mobile_phone": "(303) 555-0101"}, None),
    ({"sms_opt_in": True, "phone": "(303) 555-0101", "mobile_phone": None}, None),
    ({"sms_opt_in": False}, "no_consent"),
    ({"sms_opt_in": True, "sms_opt_out": True}, "no_consent"),
    ({"sms_opt_in": True, "phone": None, "mobile_phone": None}, "no_consent"),
]


@pytest.mark.parametrize(("fields", "refusal"), EMAIL_CASES, ids=str)
def test_an_email_first_campaign_needs_a_deliverable_email(actor, tenant, fields, refusal):
    campaign = build(actor, steps=[TASK, EMAIL, SMS])
    contact = ContactFactory(tenant=tenant, **fields)

    result = campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])

    assert result.refused == ({contact.pk: refusal} if refusal else {})
    assert result.count == (0 if refusal else 1)


@pytest.mark.parametrize(("fields", "refusal"), SMS_CASES, ids=str)
def test_an_sms_first_campaign_needs_sms_consent(actor, tenant, fields, refusal):
    campaign = build(actor, steps=[SMS, EMAIL])
    contact = ContactFactory(tenant=tenant, **{"email_opt_out": True, **fields})

    result = campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])

    assert result.refused == ({contact.pk: refusal} if refusal else {})


def test_a_campaign_without_messages_needs_no_consent(actor, tenant):
    campaign = build(actor, steps=[TASK])
    contact = ContactFactory(tenant=tenant, email=None, sms_opt_out=True)

    assert campaign_enroll(campaign=campaign, actor=actor, contacts=[contact]).count == 1
