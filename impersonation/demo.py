"""The demo tenant notifies the members whose accounts are viewed, and its admin has viewed the
member's once, for support: the session in the log and the notice on the member's feed (a
`crm.demo` step)."""

from crm.actor import Actor
from crm.demo import DemoStep, demo_register, staff_username
from crm.models import Role, Tenant, User
from crm.services import auth_token_create, auth_token_revoke, tenant_update
from impersonation.models import ImpersonationLog
from impersonation.services import Credential, impersonation_start, impersonation_stop

REASON = "Jake cannot find the Hendricks job on his list"
TICKET = "SUP-1042"


def viewed_present(tenant: Tenant) -> bool:
    return ImpersonationLog.objects.filter(tenant=tenant, ticket=TICKET).exists()


def viewed_build(actor: Actor) -> str:
    tenant = actor.require_tenant()
    admin = actor.user
    if admin is None:
        raise ValueError("the demo's steps write as the tenant's admin")
    tenant_update(tenant=tenant, actor=actor, settings={**tenant.settings, "notify_impersonated_users": True})
    member = User.objects.get(username=staff_username(Role.MEMBER))
    # The admin's session is bound to a credential of theirs, here an API token used only for it.
    token, _ = auth_token_create(user=admin)
    impersonation_start(
        impersonator=admin,
        target=member,
        tenant=tenant,
        reason=REASON,
        ticket=TICKET,
        credential=Credential(token_digest=token.digest),
        issue_token=False,
    )
    impersonation_stop(admin=admin)
    auth_token_revoke(token=token)
    return (
        f"notify_impersonated_users on; {admin.get_full_name()} viewed {member.get_full_name()}'s account "
        f"({TICKET}), who has the notice on their feed"
    )


demo_register(DemoStep(name="impersonation.viewed", build=viewed_build, present=viewed_present))
