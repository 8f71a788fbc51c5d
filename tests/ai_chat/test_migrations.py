"""The ai_chat migrations forwards, backwards (nothing left) and forwards again, with the trigger working."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return MigrationExecutor(connection)


def rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def ai_objects() -> list[tuple]:
    return rows(
        "SELECT 'table', tablename::text FROM pg_tables WHERE tablename LIKE 'ai\\_%%' "
        "UNION ALL SELECT 'function', proname::text FROM pg_proc WHERE proname LIKE 'ai\\_%%' "
        "UNION ALL SELECT 'trigger', tgname::text FROM pg_trigger WHERE tgname LIKE 'ai\\_%%' ORDER BY 1, 2"
    )


@pytest.mark.django_db(transaction=True)
def test_forwards_backwards_and_forwards_again():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    installed = ai_objects()
    assert installed == [
        ("function", "ai_messages_roll_up"),
        ("table", "ai_conversation_audit_logs"),
        ("table", "ai_conversations"),
        ("table", "ai_messages"),
        ("table", "ai_token_usage"),
        ("trigger", "ai_messages_roll_up"),
    ]

    migrate([("ai_chat", None)])
    assert ai_objects() == []

    executor = migrate(latest)
    assert ai_objects() == installed
    apps = executor.loader.project_state(latest).apps
    tenant = apps.get_model("crm", "Tenant").objects.create(name="Roofers", subdomain="roofers")
    user = apps.get_model("crm", "User").objects.create(username="ann")
    conversation = apps.get_model("ai_chat", "Conversation").objects.create(tenant=tenant, user=user)
    apps.get_model("ai_chat", "Message").objects.bulk_create(
        [
            apps.get_model("ai_chat", "Message")(
                tenant=tenant, conversation=conversation, role="user", content="hi", prompt_tokens=2
            )
            for _ in range(3)
        ]
    )
    assert rows("SELECT message_count, prompt_tokens FROM ai_conversations WHERE id = %s", [conversation.pk]) == [
        (3, 6)
    ]


def usage() -> list[tuple]:
    return rows("SELECT tenant_id, month::text, tokens FROM ai_token_usage ORDER BY 1, 2")


@pytest.mark.django_db(transaction=True)
def test_the_token_usage_counts_the_messages_stored_before_it_once():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    apps = migrate([("ai_chat", "0003_token_usage")]).loader.project_state([("ai_chat", "0003_token_usage")]).apps
    tenant = apps.get_model("crm", "Tenant").objects.create(name="Roofers", subdomain="roofers")
    user = apps.get_model("crm", "User").objects.create(username="ann")
    conversation = apps.get_model("ai_chat", "Conversation").objects.create(tenant=tenant, user=user)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ai_messages (tenant_id, conversation_id, role, prompt_tokens, completion_tokens, created_at) "
            "VALUES (%(t)s, %(c)s, 'assistant', 3, 4, '2026-03-31 23:00:00+00'), "
            "(%(t)s, %(c)s, 'assistant', 10, 20, '2026-04-01 00:00:00+00'), "
            "(%(t)s, %(c)s, 'user', 0, 0, '2026-05-01 00:00:00+00')",
            {"t": tenant.pk, "c": conversation.pk},
        )
    assert usage() == []  # migration 0002's trigger does not count them

    migrate(latest)
    assert usage() == [(tenant.pk, "2026-03-01", 7), (tenant.pk, "2026-04-01", 30)]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ai_messages (tenant_id, conversation_id, role, prompt_tokens, created_at) "
            "VALUES (%s, %s, 'assistant', 5, '2026-04-30 00:00:00+00')",
            [tenant.pk, conversation.pk],
        )
    assert usage() == [(tenant.pk, "2026-03-01", 7), (tenant.pk, "2026-04-01", 35)]

    migrate([("ai_chat", "0003_token_usage")])
    assert usage() == []
    migrate(latest)
    assert usage() == [(tenant.pk, "2026-03-01", 7), (tenant.pk, "2026-04-01", 35)]
