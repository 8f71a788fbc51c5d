import pytest

from ai_chat.models import Conversation
from ai_chat.services import conversation_create
from crm.actor import Actor
from tests.ai_chat.fake_openai import FakeOpenAI, fake_openai_server


@pytest.fixture
def fake_openai(settings):
    """The tenant's assistant talks to a fake OpenAI-compatible server on loopback."""
    with fake_openai_server() as fake:
        settings.AI_BASE_URL = fake.url
        settings.AI_MODEL = "gpt-4o-mini"
        settings.AI_MAX_RETRIES = 1
        settings.AI_TIMEOUT_SECONDS = 5
        yield fake


def start_conversation(tenant, user, **fields) -> Conversation:
    return conversation_create(actor=Actor(tenant=tenant, user=user), **fields)


@pytest.fixture
def conversation(tenant, member_user, fake_openai: FakeOpenAI) -> Conversation:
    return start_conversation(tenant, member_user)
