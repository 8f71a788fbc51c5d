"""The SMS channel: the console provider, Twilio's REST API (a fake Twilio on loopback), and the
inbound webhook (signature, STOP/START, replies)."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import pytest
from django.test import Client

from campaigns.models import CampaignEnrollment, CampaignStepExecution
from campaigns.services import campaign_enroll
from campaigns.sms import e164, twilio_signature
from crm.models import Role
from tests.api import assert_invalid, row
from tests.campaigns.conftest import SMS, TASK, build
from tests.campaigns.test_engine import drain
from tests.conftest import client_for, member
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

PUBLIC = "https://crm.summit.example"
FORM = "application/x-www-form-urlencoded"
SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "twilio-auth-token"


class FakeTwilio(ThreadingHTTPServer):
    """Twilio's Messages API on loopback: records each request, answers from `answers` (status, JSON)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TwilioHandler)
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _TwilioHandler(BaseHTTPRequestHandler):
    server: FakeTwilio

    def do_POST(self) -> None:  # noqa: N802 (the name http.server calls)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.requests.append(
            {"path": self.path, "authorization": self.headers["Authorization"], "form": parse_qs(body)}
        )
        status, payload = (
            self.server.answers.pop(0) if self.server.answers else (201, {"sid": f"SM{len(self.server.requests):032d}"})
        )
        encoded = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def twilio(settings):
    server = FakeTwilio()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.SMS_PROVIDER = "twilio"
    settings.TWILIO_API_URL = server.url
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = SID, TOKEN
    settings.TWILIO_FROM_NUMBER = "+15550000000"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.CAMPAIGN_PUBLIC_URL = PUBLIC
    settings.TWILIO_AUTH_TOKEN = TOKEN


def enroll_and_run(actor, tenant, django_capture_on_commit_callbacks, *, steps=None, **contact_fields):
    campaign = build(actor, steps=steps or [SMS])
    fields = {"first_name": "Ada", "sms_opt_in": True, "mobile_phone": "(555) 010-0199", **contact_fields}
    contact = ContactFactory(tenant=tenant, **fields)
    campaign_enroll(campaign=campaign, actor=actor, contacts=[contact])
    drain(django_capture_on_commit_callbacks)
    return contact, CampaignStepExecution.objects.filter(enrollment__contact=contact).order_by("step__step_order")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(555) 010-0199", "+15550100199"),
        ("1-555-010-0199", "+15550100199"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("12", ""),
        ("", ""),
    ],
)
def test_numbers_are_sent_in_e164(raw, expected):
    assert e164(raw) == expected


def test_the_console_provider_prints_the_sms_by_default(actor, tenant, capsys, django_capture_on_commit_callbacks):
    contact, [execution] = enroll_and_run(actor, tenant, django_capture_on_commit_callbacks)

    assert capsys.readouterr().out == "SMS from (default sender) to +15550100199:\nHi Ada\n"
    assert execution.status == "completed"
    assert execution.provider_message_id.startswith("console-")
    assert CampaignEnrollment.objects.get(contact=contact).sms_sent == 1


def test_twilio_gets_one_request_per_sms_from_the_tenants_number(
    actor, tenant, twilio, django_capture_on_commit_callbacks
):
    tenant.settings = {"sms_from": "+15557770000"}
    tenant.save()

    _contact, [execution] = enroll_and_run(actor, tenant, django_capture_on_commit_callbacks)

    assert twilio.requests == [
        {
            "path": f"/2010-04-01/Accounts/{SID}/Messages.json",
            "authorization": "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode(),
            "form": {
                "To": ["+15550100199"],
                "From": ["+15557770000"],
                "Body": ["Hi Ada"],
                "StatusCallback": [f"{PUBLIC}/api/v1/webhooks/twilio/{tenant.pk}/status/{execution.pk}/"],
            },
        }
    ]
    assert (execution.status, execution.provider_message_id) == ("completed", f"SM{1:032d}")


@pytest.mark.parametrize("public", ["http://localhost:8000", "http://127.0.0.1:8000", "http://crm.localhost"])
def test_no_status_callback_is_asked_for_while_the_public_url_is_local(
    actor, tenant, twilio, settings, django_capture_on_commit_callbacks, public
):
    """Twilio could not reach it: the callbacks would only fail at Twilio (error 11200)."""
    settings.CAMPAIGN_PUBLIC_URL = public

    enroll_and_run(actor, tenant, django_capture_on_commit_callbacks)

    assert [sorted(request["form"]) for request in twilio.requests] == [["Body", "From", "To"]]


@pytest.mark.parametrize(
    ("answer", "status", "error"),
    [
        (
            (400, {"code": 21211, "message": "The 'To' number is not a valid phone number."}),
            "failed",
            "Twilio refused the SMS (400): The 'To' number is not a valid phone number. (code 21211)",
        ),
        (
            (429, {"code": 20429, "message": "Too Many Requests"}),
            "pending",
            "Twilio answered 429: Too Many Requests (code 20429)",
        ),
        (
            (500, {"code": 20500, "message": "Internal Server Error"}),
            "unknown",
            "Twilio answered 500: Internal Server Error (code 20500)",
        ),
    ],
)
def test_twilios_refusals_fail_retry_or_wait_for_a_person(
    actor, tenant, twilio, django_capture_on_commit_callbacks, answer, status, error
):
    """Refused: final. Refused for now (429, 503): sent again later. A 5xx may have sent it:
    `unknown`, never sent again blindly."""
    twilio.answers.append(answer)

    _contact, [execution] = enroll_and_run(actor, tenant, django_capture_on_commit_callbacks)

    assert (execution.status, execution.error_message, len(twilio.requests)) == (status, error, 1)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("21610", "Twilio error 21610: the recipient unsubscribed from this sender (replied STOP at the carrier)."),
        ("21211", "Twilio error 21211: the number is not a valid phone number."),
    ],
)
def test_a_refusal_about_the_number_opts_the_contact_out_of_sms(
    actor, tenant, twilio, django_capture_on_commit_callbacks, code, reason
):
    twilio.answers.append((400, {"code": int(code), "message": "Refused."}))

    contact, [execution] = enroll_and_run(actor, tenant, django_capture_on_commit_callbacks)

    assert (execution.status, execution.error_message) == (
        "failed",
        f"Twilio refused the SMS (400): Refused. (code {code})",
    )
    contact.refresh_from_db()
    assert (contact.sms_opt_out, contact.sms_opt_out_reason, contact.sms_opt_in) == (True, reason, True)
    assert contact.sms_opt_out_date is not None


def test_a_refusal_about_the_message_keeps_the_contacts_consent(
    actor, tenant, twilio, django_capture_on_commit_callbacks
):
    twilio.answers.append((400, {"code": 21602, "message": "Message body is required."}))

    contact, [execution] = enroll_and_run(actor, tenant, django_capture_on_commit_callbacks)

    assert execution.status == "failed"
    assert row(contact)["sms_opt_out"] is False


def test_an_unreachable_twilio_is_tried_again_later(actor, tenant, twilio, django_capture_on_commit_callbacks):
    twilio.shutdown()
    twilio.server_close()

    _contact, [execution] = enroll_and_run(actor, tenant, django_capture_on_commit_callbacks)

    assert (execution.status, execution.attempts) == ("pending", 1)
    assert execution.error_message.startswith("Twilio could not be reached: ")


def test_no_sms_consent_at_send_time_sends_nothing(actor, tenant, twilio, django_capture_on_commit_callbacks):
    contact, [execution] = enroll_and_run(
        actor, tenant, django_capture_on_commit_callbacks, steps=[{**SMS, "delay_value": 1}]
    )
    ContactFactory._meta.model.objects.filter(pk=contact.pk).update(sms_opt_out=True)
    CampaignStepExecution.objects.filter(pk=execution.pk).update(scheduled_at=execution.enrollment.enrolled_at)

    drain(django_capture_on_commit_callbacks)

    execution.refresh_from_db()
    assert (execution.status, execution.skip_reason, twilio.requests) == ("skipped", "no_consent", [])


# Inbound -------------------------------------------------------------------------------------


def inbound(tenant_id, fields, *, signature=None, client=None):
    path = f"/api/v1/webhooks/twilio/{tenant_id}/sms/"
    params = {name: [value] for name, value in fields.items()}
    signature = signature or twilio_signature(url=PUBLIC + path, params=params, auth_token=TOKEN)
    return (client or Client()).post(path, urlencode(fields), content_type=FORM, HTTP_X_TWILIO_SIGNATURE=signature)


def message(body: str, sender: str = "+15550100199") -> dict:
    return {"From": sender, "To": "+15557770000", "Body": body, "MessageSid": "SM" + "1" * 32, "AccountSid": SID}


def test_the_signature_is_twilios_documented_example():
    """The example of Twilio's "Webhooks security" page, computed the same way."""
    params = {
        "CallSid": ["CA1234567890ABCDE"],
        "Caller": ["+12349013030"],
        "Digits": ["1234"],
        "From": ["+12349013030"],
        "To": ["+18005551212"],
    }

    signature = twilio_signature(url="https://mycompany.com/myapp.php?foo=1&bar=2", params=params, auth_token="12345")

    assert signature == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


@pytest.mark.parametrize("keyword", ["STOP", "stop", " Stop. ", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"])
def test_stop_opts_the_number_out_of_sms(tenant, keyword):
    contact = ContactFactory(tenant=tenant, sms_opt_in=True, mobile_phone="555-010-0199")

    response = inbound(tenant.pk, message(keyword))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/xml"
    assert response.content == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    contact.refresh_from_db()
    assert (contact.sms_opt_out, contact.sms_opt_out_reason) == (
        True,
        f"Replied {keyword.strip(' .').upper()} by SMS.",
    )
    assert contact.sms_opt_out_date is not None


def test_stop_reaches_every_contact_with_the_number_in_the_tenant_only(tenant, other_tenant):
    mobile = ContactFactory(tenant=tenant, sms_opt_in=True, mobile_phone="+1 555 010 0199")
    landline = ContactFactory(tenant=tenant, sms_opt_in=True, mobile_phone="", phone="15550100199")
    stranger = ContactFactory(tenant=tenant, sms_opt_in=True, mobile_phone="555-010-0100")
    theirs = ContactFactory(tenant=other_tenant, sms_opt_in=True, mobile_phone="555-010-0199")
    before = (row(stranger), row(theirs))

    inbound(tenant.pk, message("STOP"))

    assert [row(mobile)["sms_opt_out"], row(landline)["sms_opt_out"]] == [True, True]
    assert (row(stranger), row(theirs)) == before


def test_a_second_stop_keeps_the_first_date_and_start_opts_back_in(tenant):
    contact = ContactFactory(tenant=tenant, sms_opt_in=True, mobile_phone="555-010-0199")
    inbound(tenant.pk, message("STOP"))
    stopped = row(contact)

    inbound(tenant.pk, message("STOP"))
    assert row(contact) == stopped

    inbound(tenant.pk, message("UNSTOP"))
    contact.refresh_from_db()
    assert (contact.sms_opt_out, contact.sms_opt_in) == (False, True)


def test_start_opts_in_a_number_that_never_had_consent(tenant):
    contact = ContactFactory(tenant=tenant, sms_opt_in=False, mobile_phone="555-010-0199")

    inbound(tenant.pk, message("START"))

    contact.refresh_from_db()
    assert (contact.sms_opt_in, contact.sms_opt_out) == (True, False)
    assert contact.sms_opt_in_date is not None


def test_a_reply_marks_the_latest_sms_once(actor, tenant, django_capture_on_commit_callbacks):
    contact, executions = enroll_and_run(actor, tenant, django_capture_on_commit_callbacks, steps=[SMS, SMS, TASK])
    first, second, _task = executions

    for _ in range(2):  # Twilio retries; a second reply is no second "replied"
        assert inbound(tenant.pk, message("Yes, Tuesday works")).status_code == 200

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.replied_at, second.replied_at is not None) == (None, True)
    enrollment = CampaignEnrollment.objects.get(contact=contact)
    assert (enrollment.sms_sent, enrollment.sms_replied) == (2, 1)
    assert row(contact)["sms_opt_out"] is False


def test_a_reply_from_an_unknown_number_changes_nothing(actor, tenant, django_capture_on_commit_callbacks):
    contact, [execution] = enroll_and_run(actor, tenant, django_capture_on_commit_callbacks)

    assert inbound(tenant.pk, message("STOP", sender="+15559999999")).status_code == 200

    execution.refresh_from_db()
    assert (execution.replied_at, row(contact)["sms_opt_out"]) == (None, False)


def test_another_tenants_url_does_not_reach_this_tenants_contacts(actor, tenant, other_tenant):
    contact = ContactFactory(tenant=tenant, sms_opt_in=True, mobile_phone="555-010-0199")
    before = row(contact)

    assert inbound(other_tenant.pk, message("STOP")).status_code == 200

    assert row(contact) == before


@pytest.mark.parametrize(
    ("tenant_id", "signature", "fields", "status", "attr"),
    [
        ("ours", "bad-signature", None, 403, "X-Twilio-Signature"),
        ("ours", "", None, 403, "X-Twilio-Signature"),
        ("ours", None, {"Body": "STOP"}, 400, "From"),
        ("ours", None, {"From": "+15550100199"}, 400, "Body"),
        ("ours", None, {"From": "+1555" * 20, "Body": "STOP"}, 400, "From"),
        (10**15, None, None, 404, None),
        ("9" * 30, None, None, 404, None),
    ],
)
def test_bad_requests_are_refused_naming_the_problem_and_change_nothing(
    tenant, tenant_id, signature, fields, status, attr
):
    contact = ContactFactory(tenant=tenant, sms_opt_in=True, mobile_phone="555-010-0199")
    before = row(contact)
    target = tenant.pk if tenant_id == "ours" else tenant_id
    body = fields if fields is not None else message("STOP")
    if signature == "":
        response = Client().post(f"/api/v1/webhooks/twilio/{target}/sms/", urlencode(body), content_type=FORM)
    else:
        response = inbound(target, body, signature=signature)

    assert response.status_code == status, response.content
    if attr:
        assert [error["attr"] for error in response.json()["errors"]] == [attr]
    assert row(contact) == before


def test_a_json_body_is_unsupported_not_a_crash(tenant):
    response = Client().post(
        f"/api/v1/webhooks/twilio/{tenant.pk}/sms/", {"From": "+1", "Body": "x"}, content_type="application/json"
    )

    assert response.status_code == 415


@pytest.mark.parametrize("value", ["5550100", "+0555", "+1 555 010 0199", 15550100])
def test_a_tenant_sms_sender_must_be_e164(tenant, value):
    client = client_for(member(tenant, Role.ADMIN, "the-admin"), tenant)
    before = row(tenant)

    response = client.patch("/api/v1/tenant/", {"settings": {"sms_from": value}}, format="json")

    detail = (
        "settings.sms_from is text."
        if isinstance(value, int)
        else "settings.sms_from is a phone number in E.164 form, like +15550100."
    )
    assert_invalid(response, attr="settings", code="invalid_setting", detail=detail)
    assert row(tenant) == before


# Status callbacks ----------------------------------------------------------------------------


def status_callback(tenant_id, execution_id, fields, *, signature=None):
    path = f"/api/v1/webhooks/twilio/{tenant_id}/status/{execution_id}/"
    params = {name: [value] for name, value in fields.items()}
    signature = (
        signature if signature is not None else twilio_signature(url=PUBLIC + path, params=params, auth_token=TOKEN)
    )
    return Client().post(path, urlencode(fields), content_type=FORM, HTTP_X_TWILIO_SIGNATURE=signature)


def status(execution, message_status: str, error_code: str = "") -> dict:
    """A status callback's form as Twilio posts it."""
    fields = {
        "AccountSid": SID,
        "ApiVersion": "2010-04-01",
        "From": "+15550000000",
        "MessageSid": execution.provider_message_id,
        "MessageStatus": message_status,
        "SmsSid": execution.provider_message_id,
        "SmsStatus": message_status,
        "To": "+15550100199",
    }
    if error_code:
        fields["ErrorCode"] = error_code
    return fields


@pytest.fixture
def sent_sms(actor, tenant, twilio, django_capture_on_commit_callbacks):
    return enroll_and_run(actor, tenant, django_capture_on_commit_callbacks)


def test_delivered_is_recorded_once(tenant, sent_sms):
    contact, [execution] = sent_sms

    first = status_callback(tenant.pk, execution.pk, status(execution, "delivered"))
    recorded = row(execution)
    second = status_callback(tenant.pk, execution.pk, status(execution, "delivered"))

    assert (first.status_code, second.status_code) == (204, 204)
    assert recorded["result_data"]["delivery"]["status"] == "delivered"
    assert set(recorded["result_data"]["delivery"]) == {"status", "at"}
    assert (recorded["status"], recorded["error_message"]) == ("completed", "")
    assert row(execution) == recorded
    assert row(contact)["sms_opt_out"] is False


def test_statuses_on_the_way_change_nothing(tenant, sent_sms):
    _contact, [execution] = sent_sms
    before = row(execution)

    for message_status in ("queued", "sending", "sent"):
        assert status_callback(tenant.pk, execution.pk, status(execution, message_status)).status_code == 204

    assert row(execution) == before


@pytest.mark.parametrize(
    ("message_status", "code", "opted_out"),
    [
        ("undelivered", "30003", False),  # the handset is off or unreachable: maybe next time
        ("failed", "30007", False),  # filtered by the carrier
        ("undelivered", "21610", True),
        ("failed", "30006", True),
    ],
)
def test_undelivered_and_failed_keep_their_code_and_a_bad_number_opts_out(
    tenant, sent_sms, message_status, code, opted_out
):
    contact, [execution] = sent_sms

    response = status_callback(tenant.pk, execution.pk, status(execution, message_status, code))
    again = status_callback(tenant.pk, execution.pk, status(execution, "delivered"))

    assert (response.status_code, again.status_code) == (204, 204)
    execution.refresh_from_db()
    delivery = execution.result_data["delivery"]
    assert (execution.status, delivery["status"], delivery["error_code"]) == ("completed", message_status, code)
    contact.refresh_from_db()
    assert contact.sms_opt_out is opted_out
    if opted_out:
        assert contact.sms_opt_out_reason.startswith(f"Twilio error {code}: ")


def test_a_callback_about_an_older_message_of_the_execution_is_ignored(tenant, sent_sms):
    _contact, [execution] = sent_sms
    before = row(execution)
    fields = {**status(execution, "failed", "21610"), "MessageSid": "SM" + "9" * 32}

    assert status_callback(tenant.pk, execution.pk, fields).status_code == 204

    assert row(execution) == before


@pytest.mark.parametrize(
    ("case", "status_code", "attr"),
    [
        ("bad signature", 403, "X-Twilio-Signature"),
        ("no signature", 403, "X-Twilio-Signature"),
        ("other tenant", 404, None),
        ("no such execution", 404, None),
        ("not an sms", 404, None),
        ("no status", 400, "MessageStatus"),
        ("bad error code", 400, "ErrorCode"),
    ],
)
def test_bad_status_callbacks_are_refused_and_change_nothing(
    actor, tenant, other_tenant, sent_sms, django_capture_on_commit_callbacks, case, status_code, attr
):
    contact, [execution] = sent_sms
    _other_contact, [task] = enroll_and_run(actor, tenant, django_capture_on_commit_callbacks, steps=[TASK])
    before = (row(contact), row(execution))
    fields, target, execution_id, options = status(execution, "failed", "21610"), tenant.pk, execution.pk, {}
    if case == "bad signature":
        options["signature"] = "bad-signature"
    elif case == "no signature":
        options["signature"] = ""
    elif case == "other tenant":
        target = other_tenant.pk
    elif case == "no such execution":
        execution_id = 10**15
    elif case == "not an sms":
        execution_id = task.pk
    elif case == "no status":
        del fields["MessageStatus"]
    else:
        fields["ErrorCode"] = "30003; DROP TABLE"

    response = status_callback(target, execution_id, fields, **options)

    assert response.status_code == status_code, response.content
    if attr:
        assert [error["attr"] for error in response.json()["errors"]] == [attr]
    assert (row(contact), row(execution)) == before
