"""The demo's conversations with the offline assistant: one for each plain request it understands,
produced by running the turn with its tools as a user would (a `crm.demo` step).

They run with the offline provider whatever AI_BASE_URL says, so the demo is the same on every
machine and a new user sees the tools' results over Summit's own data.
"""

from ai_chat.models import Conversation, MessageRole
from ai_chat.providers import OfflineProvider
from ai_chat.services import conversation_create, message_send, title_from
from crm.actor import Actor
from crm.demo import DemoStep, demo_register
from crm.models import Tenant

# The plain requests of the offline assistant (ai_chat/providers.py), over the demo's data.
REQUESTS = (
    "Find contacts named Smith",
    "What are my open estimates?",
    "Add a note to Monica Smith: asked for a quote on seamless gutters before the fall.",
)
TITLES = [title_from(request) for request in REQUESTS]


def offline_present(tenant: Tenant) -> bool:
    return Conversation.objects.filter(tenant=tenant, title__in=TITLES).exists()


def offline_build(actor: Actor) -> str:
    answered = []
    for request in REQUESTS:
        conversation = conversation_create(actor=actor)
        messages = message_send(conversation=conversation, actor=actor, content=request, provider=OfflineProvider())
        tools = [message.tool_name for message in messages if message.role == MessageRole.FUNCTION]
        answered.append(f"{request!r} ({', '.join(tools)})")
    return f"{len(answered)} conversations with the offline assistant: {'; '.join(answered)}"


demo_register(
    DemoStep(name="ai_chat.offline", build=offline_build, present=offline_present, after=("contacts.parties",))
)
