"""Membership invitations: the signed, expiring link and the email that carries it.

The token signs the membership's id and the time its invitation was last sent
(`invited_at`): resending moves that time, so only the newest link works, and revoking
deletes the row, so no link does. The services in crm.services create, resend, revoke
and accept invitations; this module holds no writes.
"""

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail

from crm.errors import ApplicationError
from crm.models import Membership, MembershipStatus

_SALT = "crm.invitations"


def invitation_token(membership: Membership) -> str:
    if membership.invited_at is None:
        raise ValueError("an invitation token needs the time the invitation was sent")
    return signing.dumps({"id": membership.pk, "sent": membership.invited_at.isoformat()}, salt=_SALT)


def invitation_from_token(token: str) -> Membership:
    """The pending membership `token` invites to (ApplicationError on `token` when it cannot)."""
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.INVITATION_MAX_AGE)
    except signing.SignatureExpired as exc:
        raise ApplicationError(
            "This invitation link has expired: ask an admin of the company to send it again.",
            code="expired",
            attr="token",
        ) from exc
    except signing.BadSignature as exc:
        raise ApplicationError("This invitation link is not valid.", code="invalid", attr="token") from exc
    membership = (
        Membership.objects.select_related("tenant", "user")
        .filter(pk=data["id"], status=MembershipStatus.PENDING)
        .first()
    )
    if membership is None or membership.invited_at is None or membership.invited_at.isoformat() != data["sent"]:
        raise ApplicationError(
            "This invitation was revoked, accepted already or replaced by a newer link.",
            code="invitation_gone",
            attr="token",
        )
    return membership


def invitation_email_send(membership: Membership) -> None:
    """Email the invitation's link to its address (after the commit that made it)."""
    link = settings.INVITATION_ACCEPT_URL.replace("{token}", invitation_token(membership))
    tenant = membership.tenant
    days = settings.INVITATION_MAX_AGE.days
    send_mail(
        subject=f"You are invited to {tenant.name} on Ridgeline",
        message=(
            f"You have been invited to join {tenant.name} on Ridgeline as {membership.role}.\n\n"
            f"Accept the invitation within {days} days: {link}\n\n"
            "Log in with the account of this email address to accept, or create an account there. "
            "If you did not expect this invitation, ignore this message."
        ),
        from_email=None,
        recipient_list=[membership.email],
    )
