"""The roll-up trigger also adds each message's tokens to its tenant's month in `ai_token_usage`,
and the months of the messages already stored are counted once.

Replacing the function and counting happen in one transaction that holds off message inserts
(SHARE ROW EXCLUSIVE on ai_messages), so no message is counted twice or missed. Backwards, the
function is the one of migration 0002 again and the counts are emptied.
"""

from django.db import migrations

ROLL_UP = r"""
CREATE OR REPLACE FUNCTION ai_messages_roll_up() RETURNS trigger
    LANGUAGE plpgsql VOLATILE
    AS $function$
BEGIN
    UPDATE ai_conversations AS c
    SET updated_at = now(),
        last_message_at = GREATEST(c.last_message_at, added.last_at),
        message_count = c.message_count + added.messages,
        prompt_tokens = c.prompt_tokens + added.prompt_tokens,
        completion_tokens = c.completion_tokens + added.completion_tokens,
        total_cost = c.total_cost + added.cost,
        provider = COALESCE(added.provider, c.provider),
        model = COALESCE(added.model, c.model)
    FROM (
        SELECT conversation_id,
               max(created_at) AS last_at,
               count(*) AS messages,
               sum(prompt_tokens) AS prompt_tokens,
               sum(completion_tokens) AS completion_tokens,
               sum(cost) AS cost,
               (array_agg(provider ORDER BY id DESC) FILTER (WHERE model <> ''))[1] AS provider,
               (array_agg(model ORDER BY id DESC) FILTER (WHERE model <> ''))[1] AS model
        FROM added_messages
        GROUP BY conversation_id
    ) AS added
    WHERE c.id = added.conversation_id;
    %(usage)s
    RETURN NULL;
END
$function$;
"""

USAGE = r"""
    INSERT INTO ai_token_usage (tenant_id, month, tokens)
    SELECT tenant_id, date_trunc('month', created_at AT TIME ZONE 'UTC')::date, sum(prompt_tokens + completion_tokens)
    FROM added_messages
    WHERE prompt_tokens + completion_tokens > 0
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (tenant_id, month) DO UPDATE SET tokens = ai_token_usage.tokens + EXCLUDED.tokens;
"""

FORWARDS = f"""
LOCK TABLE ai_messages IN SHARE ROW EXCLUSIVE MODE;
{ROLL_UP % {"usage": USAGE}}
INSERT INTO ai_token_usage (tenant_id, month, tokens)
SELECT tenant_id, date_trunc('month', created_at AT TIME ZONE 'UTC')::date, sum(prompt_tokens + completion_tokens)
FROM ai_messages
WHERE prompt_tokens + completion_tokens > 0
GROUP BY 1, 2;
"""

BACKWARDS = f"""
LOCK TABLE ai_messages IN SHARE ROW EXCLUSIVE MODE;
{ROLL_UP % {"usage": ""}}
DELETE FROM ai_token_usage;
"""


class Migration(migrations.Migration):
    dependencies = [("ai_chat", "0003_token_usage")]

    operations = [migrations.RunSQL(FORWARDS, BACKWARDS)]
