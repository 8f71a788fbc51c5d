"""Carry the tokens of DRF's `authtoken` app (no longer installed) over to `auth_tokens`.

`authtoken_token` held each token in clear and without an end. Each becomes an
`auth_tokens` row holding the digest of the same key, so a client keeps sending the same
`Authorization: Token <key>` until the cut-over: 14 days after this migration runs
(`expiry` = `max_expiry`; use does not extend it). Then the client logs in again and
gets a new token. A password change or deactivation ends it earlier, as for any token.
Migration 0010 then drops the old table.

A database created after the app's removal has no `authtoken_token`: nothing to carry.

Reversing leaves the carried tokens in place (they end at the cut-over anyway); the old
keys themselves cannot come back from their digests.
"""

from django.db import migrations

CARRY_OVER = """
DO $$
BEGIN
    IF to_regclass('authtoken_token') IS NOT NULL THEN
        INSERT INTO auth_tokens (digest, token_key, user_id, created, expiry, max_expiry)
        SELECT encode(sha512(convert_to(key, 'UTF8')), 'hex'), left(key, 15), user_id, created,
               now() + interval '14 days', now() + interval '14 days'
        FROM authtoken_token;
    END IF;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("crm", "0008_auth_tokens")]

    operations = [migrations.RunSQL(CARRY_OVER, reverse_sql=migrations.RunSQL.noop)]
