"""Keep each conversation's `updated_at`, `last_message_at`, count and totals on every message insert.

A statement-level trigger reading the transition table: one UPDATE per INSERT statement,
however many messages it adds, and whatever the write path (services, admin, raw SQL).
"""

from django.db import migrations

INSTALL = r"""
CREATE FUNCTION ai_messages_roll_up() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    UPDATE ai_conversations AS c
    SET updated_at = now(),
        last_message_at = GREATEST(c.last_message_at, added.last_at),
        message_count = c.message_count + added.messages,
        prompt_tokens = c.prompt_tokens + added.prompt_tokens,
        completion_tokens = c.completion_tokens + added.completion_tokens,
        total_cost = c.total_cost + added.cost
    FROM (
        SELECT conversation_id,
               max(created_at) AS last_at,
               count(*) AS messages,
               sum(prompt_tokens) AS prompt_tokens,
               sum(completion_tokens) AS completion_tokens,
               sum(cost) AS cost
        FROM added_messages
        GROUP BY conversation_id
    ) AS added
    WHERE c.id = added.conversation_id;
    RETURN NULL;
END
$function$;

CREATE TRIGGER ai_messages_roll_up
    AFTER INSERT ON ai_messages
    REFERENCING NEW TABLE AS added_messages
    FOR EACH STATEMENT EXECUTE FUNCTION ai_messages_roll_up();
"""

UNINSTALL = r"""
DROP TRIGGER IF EXISTS ai_messages_roll_up ON ai_messages;
DROP FUNCTION IF EXISTS ai_messages_roll_up();
"""


class Migration(migrations.Migration):
    dependencies = [("ai_chat", "0001_initial")]

    operations = [migrations.RunSQL(INSTALL, UNINSTALL)]
