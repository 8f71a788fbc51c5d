"""Make `impersonation_logs` append-only in the database, whatever path writes to it.

An UPDATE may change only the ending columns (`status`, `ended_at`, `end_reason`), the
counters (`request_count`, `write_count`, which never go down) and `updated_at`, and only
while the session is active (an ended session is final, except its counters: a request
that began before the end still counts). Every DELETE is refused. TRUNCATE (test teardown,
an operator's deliberate act) is not a row operation and is not stopped.
"""

from django.db import migrations

INSTALL = r"""
CREATE OR REPLACE FUNCTION impersonation_logs_append_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $function$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'impersonation_logs is append-only: rows are never deleted'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.id, NEW.tenant_id, NEW.admin_user_id, NEW.impersonated_user_id, NEW.started_at, NEW.reason,
        NEW.ticket, NEW.ip_address, NEW.user_agent, NEW.allow_writes, NEW.expires_at, NEW.token_digest,
        NEW.admin_token_digest, NEW.admin_session_key, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.tenant_id, OLD.admin_user_id, OLD.impersonated_user_id, OLD.started_at, OLD.reason,
        OLD.ticket, OLD.ip_address, OLD.user_agent, OLD.allow_writes, OLD.expires_at, OLD.token_digest,
        OLD.admin_token_digest, OLD.admin_session_key, OLD.created_at) THEN
        RAISE EXCEPTION 'impersonation_logs is append-only: only a session''s end and counters change'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status <> 'active' AND (NEW.status, NEW.ended_at, NEW.end_reason)
            IS DISTINCT FROM (OLD.status, OLD.ended_at, OLD.end_reason) THEN
        RAISE EXCEPTION 'impersonation_logs: session % has already ended', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF NEW.request_count < OLD.request_count OR NEW.write_count < OLD.write_count THEN
        RAISE EXCEPTION 'impersonation_logs: counters never go down'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$function$;

CREATE TRIGGER impersonation_logs_append_only
    BEFORE UPDATE OR DELETE ON impersonation_logs
    FOR EACH ROW EXECUTE FUNCTION impersonation_logs_append_only();
"""

UNINSTALL = """
DROP TRIGGER IF EXISTS impersonation_logs_append_only ON impersonation_logs;
DROP FUNCTION IF EXISTS impersonation_logs_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("impersonation", "0001_initial")]

    operations = [migrations.RunSQL(INSTALL, reverse_sql=UNINSTALL)]
