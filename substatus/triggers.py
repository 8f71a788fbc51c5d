"""The substatus rules as PostgreSQL functions and triggers, so every write path obeys them.

ORM saves, `bulk_create`, `queryset.update()`, the admin, the API, Celery tasks, other
migrations and raw SQL all go through these:

1. INSERT without a substatus gets the tenant's default for the record's status; a named
   substatus is checked and kept.
2. UPDATE changing the status without naming a substatus (the column unchanged or NULL)
   gets the new status's default; a named one is checked and kept.
3. UPDATE touching neither status nor substatus never fires the rules (`UPDATE OF` plus a
   `WHEN` on the values), so the substatus is untouched and no history row is written.
4. A substatus of another status, entity or tenant, an inactive or a missing one: the write
   fails with SQLSTATE 23514 naming a constraint (registered in `substatus.apps`), so the
   API and admin answer with a field error on `substatus`.
5. A status that has substatuses has exactly one default: at most one by a unique index, at
   least one by a constraint trigger checked at commit (a switch clears the old default and
   sets the new one in two statements). A status with no substatus at all is the one state
   where records get no substatus (NULL); the default catalog gives every status some.

Each record table has separate INSERT and UPDATE functions: the old system's single
function read `OLD` on INSERT (and `status` on a table whose column is `stage`). History
rows are written once per statement from transition tables, set-based, with the actor,
reason and source that `crm.actor.publish_actor()` published (`sql` when none was).

Migrations 0002 and 0004 hold a frozen copy of this SQL (migrations never import app code);
`tests/substatus/test_database_objects.py` proves the database runs exactly what is declared here.
"""

from dataclasses import dataclass

from substatus.catalog import DEFAULT_CATALOG, STATUS_COLORS


@dataclass(frozen=True)
class Function:
    name: str
    body: str  # PL/pgSQL between the dollar quotes
    returns: str = "trigger"
    arguments: str = ""
    language: str = "plpgsql"
    volatility: str = "VOLATILE"

    @property
    def install(self) -> str:
        return (
            f"CREATE OR REPLACE FUNCTION {self.name}({self.arguments}) RETURNS {self.returns}\n"
            f"    LANGUAGE {self.language} {self.volatility}\n"
            f"    AS $function${self.body}$function$;"
        )

    @property
    def uninstall(self) -> str:
        arguments = ", ".join(argument.split()[1] for argument in self.arguments.split(", ") if argument)
        return f"DROP FUNCTION IF EXISTS {self.name}({arguments});"


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    definition: str  # everything between `CREATE [CONSTRAINT] TRIGGER name` and `EXECUTE FUNCTION`
    function: str
    constraint: bool = False  # a constraint trigger, which may be deferred to the commit

    @property
    def install(self) -> str:
        kind = "CONSTRAINT TRIGGER" if self.constraint else "TRIGGER"
        return f"CREATE {kind} {self.name}\n    {self.definition}\n    EXECUTE FUNCTION {self.function}();"

    @property
    def uninstall(self) -> str:
        return f"DROP TRIGGER IF EXISTS {self.name} ON {self.table};"


def _sql_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _catalog_values() -> str:
    positions: dict[tuple[str, str], int] = {}
    rows = []
    for entry in DEFAULT_CATALOG:
        group = (entry.entity, entry.status)
        position = positions.get(group, 0)
        positions[group] = position + 1
        values = [
            entry.entity,
            entry.status,
            entry.key,
            entry.label,
            STATUS_COLORS[group],
            position,
            entry.is_default,
            entry.is_terminal,
        ]
        rows.append("        (" + ", ".join(_sql_literal(value) for value in values) + ")")
    return ",\n".join(rows)


DEFAULT_CATALOG_FUNCTION = Function(
    name="substatus_default_catalog",
    returns=(
        "TABLE (entity varchar, status varchar, key varchar, label varchar, color varchar, "
        '"position" smallint, is_default boolean, is_terminal boolean)'
    ),
    language="sql",
    volatility="IMMUTABLE",
    body=f"""
    SELECT entity::varchar, status::varchar, key::varchar, label::varchar, color::varchar,
           "position"::smallint, is_default, is_terminal
    FROM (VALUES
{_catalog_values()}
    ) AS catalog (entity, status, key, label, color, "position", is_default, is_terminal)
""",  # noqa: S608 (constants only)
)

INSTALL_CATALOG_FUNCTION = Function(
    name="substatus_install_default_catalog",
    body="""
BEGIN
    INSERT INTO status_substatus_configs (
        tenant_id, entity, status, key, label, color, "position", is_default, is_terminal
    )
    SELECT tenant.id, catalog.entity, catalog.status, catalog.key, catalog.label, catalog.color,
           catalog."position", catalog.is_default, catalog.is_terminal
    FROM new_tenants AS tenant CROSS JOIN substatus_default_catalog() AS catalog;
    RETURN NULL;
END
""",
)

# Who changed it, why and through what: read once per statement from what
# crm.actor.publish_actor() set in the transaction (nothing published: raw SQL).
CHANGE_CONTEXT_FUNCTION = Function(
    name="substatus_change_context",
    returns="TABLE (changed_by_id bigint, impersonated_by_id bigint, reason text, source varchar)",
    language="sql",
    volatility="STABLE",
    body="""
    SELECT app_effective_user_id(),
           CASE WHEN app_is_impersonating() THEN app_real_user_id() END,
           COALESCE(current_setting('app.change_reason', true), ''),
           COALESCE(NULLIF(current_setting('app.change_source', true), ''), 'sql')::varchar
""",
)

CHECK_FUNCTION = Function(
    name="substatus_check",
    arguments="substatus bigint, record_tenant bigint, record_entity text, record_status text, record_table text",
    returns="void",
    volatility="STABLE",
    body="""
DECLARE
    config status_substatus_configs%ROWTYPE;
    status_word text := CASE record_entity WHEN 'contact' THEN 'stage' ELSE 'status' END;
BEGIN
    SELECT * INTO config FROM status_substatus_configs WHERE id = substatus;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'substatus % does not exist', substatus
            USING ERRCODE = 'check_violation', CONSTRAINT = record_table || '_substatus_unknown';
    END IF;
    IF config.tenant_id <> record_tenant THEN
        RAISE EXCEPTION 'substatus % belongs to another tenant', substatus
            USING ERRCODE = 'check_violation', CONSTRAINT = record_table || '_substatus_other_tenant';
    END IF;
    IF config.entity <> record_entity THEN
        RAISE EXCEPTION 'substatus % is a % substatus, not a % one', substatus, config.entity, record_entity
            USING ERRCODE = 'check_violation', CONSTRAINT = record_table || '_substatus_other_entity';
    END IF;
    IF config.status IS DISTINCT FROM record_status THEN
        RAISE EXCEPTION 'substatus % belongs to % "%", not "%"', substatus, status_word, config.status, record_status
            USING ERRCODE = 'check_violation', CONSTRAINT = record_table || '_substatus_other_' || status_word;
    END IF;
    IF NOT config.is_active THEN
        RAISE EXCEPTION 'substatus % is inactive', substatus
            USING ERRCODE = 'check_violation', CONSTRAINT = record_table || '_substatus_inactive';
    END IF;
END
""",
)


def _record_objects(table: str, entity: str, status: str) -> tuple[list[Function], list[Trigger]]:
    """The functions and triggers of one record table (`status` is its status column)."""
    default_lookup = f"""(
            SELECT id FROM status_substatus_configs
            WHERE tenant_id = NEW.tenant_id AND entity = '{entity}' AND status = NEW.{status} AND is_default
        )"""  # noqa: S608 (constants only)
    check = f"PERFORM substatus_check(NEW.substatus_id, NEW.tenant_id, '{entity}', NEW.{status}, '{table}');"
    before_insert = Function(
        name=f"substatus_{table}_before_insert",
        body=f"""
BEGIN
    IF NEW.substatus_id IS NULL THEN
        NEW.substatus_id := {default_lookup};
    ELSE
        {check}
    END IF;
    NEW.substatus_since := CASE WHEN NEW.substatus_id IS NOT NULL THEN statement_timestamp() END;
    RETURN NEW;
END
""",
    )
    before_update = Function(
        name=f"substatus_{table}_before_update",
        body=f"""
BEGIN
    IF NEW.substatus_id IS NULL OR NEW.substatus_id = OLD.substatus_id THEN
        -- No substatus named: it stays while the {status} stays, else the new {status}'s default.
        IF NEW.{status} IS DISTINCT FROM OLD.{status} OR NEW.substatus_id IS NULL THEN
            NEW.substatus_id := {default_lookup};
        END IF;
    ELSE
        {check}
    END IF;
    IF NEW.substatus_id IS DISTINCT FROM OLD.substatus_id THEN
        NEW.substatus_since := CASE WHEN NEW.substatus_id IS NOT NULL THEN statement_timestamp() END;
    END IF;
    RETURN NEW;
END
""",
    )
    columns = """tenant_id, entity, record_id, from_status, to_status, from_substatus_id, to_substatus_id,
        before, after, changed_by_id, impersonated_by_id, reason, source, changed_at"""
    history_insert = Function(
        name=f"substatus_{table}_history_insert",
        body=f"""
BEGIN
    INSERT INTO substatus_history (
        {columns}
    )
    SELECT new_row.tenant_id, '{entity}', new_row.id, NULL, new_row.{status}, NULL, new_row.substatus_id,
           NULL, jsonb_build_object('{status}', new_row.{status}, 'substatus', new_row.substatus_id),
           context.changed_by_id, context.impersonated_by_id, context.reason, context.source,
           statement_timestamp()
    FROM new_rows AS new_row CROSS JOIN substatus_change_context() AS context;
    RETURN NULL;
END
""",  # noqa: S608 (constants only)
    )
    history_update = Function(
        name=f"substatus_{table}_history_update",
        body=f"""
BEGIN
    INSERT INTO substatus_history (
        {columns}
    )
    SELECT new_row.tenant_id, '{entity}', new_row.id, old_row.{status}, new_row.{status},
           old_row.substatus_id, new_row.substatus_id,
           jsonb_build_object('{status}', old_row.{status}, 'substatus', old_row.substatus_id),
           jsonb_build_object('{status}', new_row.{status}, 'substatus', new_row.substatus_id),
           context.changed_by_id, context.impersonated_by_id, context.reason, context.source,
           statement_timestamp()
    FROM new_rows AS new_row
    JOIN old_rows AS old_row ON old_row.id = new_row.id
    CROSS JOIN substatus_change_context() AS context
    WHERE new_row.{status} IS DISTINCT FROM old_row.{status}
       OR new_row.substatus_id IS DISTINCT FROM old_row.substatus_id;
    RETURN NULL;
END
""",  # noqa: S608 (constants only)
    )
    triggers = [
        Trigger(
            name="substatus_before_insert",
            table=table,
            definition=f"BEFORE INSERT ON {table}\n    FOR EACH ROW",
            function=before_insert.name,
        ),
        Trigger(
            name="substatus_before_update",
            table=table,
            definition=(
                f"BEFORE UPDATE OF {status}, substatus_id ON {table}\n    FOR EACH ROW\n"
                f"    WHEN (OLD.{status} IS DISTINCT FROM NEW.{status} "
                "OR OLD.substatus_id IS DISTINCT FROM NEW.substatus_id)"
            ),
            function=before_update.name,
        ),
        Trigger(
            name="substatus_history_insert",
            table=table,
            definition=f"AFTER INSERT ON {table}\n    REFERENCING NEW TABLE AS new_rows\n    FOR EACH STATEMENT",
            function=history_insert.name,
        ),
        # Transition tables cannot go with `UPDATE OF` columns: the function's WHERE does the filtering.
        Trigger(
            name="substatus_history_update",
            table=table,
            definition=(
                f"AFTER UPDATE ON {table}\n    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows\n"
                "    FOR EACH STATEMENT"
            ),
            function=history_update.name,
        ),
    ]
    return [before_insert, before_update, history_insert, history_update], triggers


CONTACT_FUNCTIONS, CONTACT_TRIGGERS = _record_objects("contacts", "contact", "stage")
PROJECT_FUNCTIONS, PROJECT_TRIGGERS = _record_objects("projects", "project", "status")

CONFIG_TARGET_FUNCTION = Function(
    name="substatus_configs_check_target",
    body="""
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM status_substatus_configs AS target
        WHERE target.id = NEW.auto_transition_to_id
          AND target.tenant_id = NEW.tenant_id AND target.entity = NEW.entity AND target.status = NEW.status
    ) THEN
        RAISE EXCEPTION 'substatus % cannot transition to substatus %: not one of the same status',
            NEW.id, NEW.auto_transition_to_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'substatus_configs_transition_target';
    END IF;
    RETURN NEW;
END
""",
)

CONFIG_PARENT_FUNCTION = Function(
    name="substatus_configs_parent_fixed",
    body="""
BEGIN
    RAISE EXCEPTION 'substatus % cannot move to another tenant, entity or status', OLD.id
        USING ERRCODE = 'check_violation', CONSTRAINT = 'substatus_configs_parent_fixed';
END
""",
)

CONFIG_IN_HISTORY_FUNCTION = Function(
    name="substatus_configs_protect_history",
    body="""
BEGIN
    IF EXISTS (
        SELECT 1 FROM substatus_history AS history
        WHERE history.tenant_id = OLD.tenant_id AND history.entity = OLD.entity
          AND (history.to_substatus_id = OLD.id OR history.from_substatus_id = OLD.id)
    ) THEN
        RAISE EXCEPTION 'substatus % appears in the substatus history: deactivate it instead', OLD.id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'substatus_configs_in_history';
    END IF;
    RETURN OLD;
END
""",
)

CONFIG_DEFAULT_REQUIRED_FUNCTION = Function(
    name="substatus_configs_default_required",
    body="""
DECLARE
    config status_substatus_configs%ROWTYPE;
BEGIN
    IF TG_OP = 'DELETE' THEN
        config := OLD;
    ELSE
        config := NEW;
    END IF;
    IF EXISTS (
        SELECT 1 FROM status_substatus_configs AS other
        WHERE other.tenant_id = config.tenant_id AND other.entity = config.entity AND other.status = config.status
    ) AND NOT EXISTS (
        SELECT 1 FROM status_substatus_configs AS other
        WHERE other.tenant_id = config.tenant_id AND other.entity = config.entity AND other.status = config.status
          AND other.is_default
    ) THEN
        RAISE EXCEPTION 'status "%" of % substatuses of tenant % has no default', config.status, config.entity,
            config.tenant_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'substatus_configs_default_required';
    END IF;
    RETURN NULL;
END
""",
)

HISTORY_APPEND_ONLY_FUNCTION = Function(
    name="substatus_history_append_only",
    body="""
BEGIN
    RAISE EXCEPTION 'substatus history is append-only (% refused)', TG_OP
        USING ERRCODE = 'check_violation', CONSTRAINT = 'substatus_history_append_only';
END
""",
)

CONFIG_TRIGGERS = [
    Trigger(
        name="substatus_check_target",
        table="status_substatus_configs",
        definition=(
            "BEFORE INSERT OR UPDATE OF auto_transition_to_id ON status_substatus_configs\n    FOR EACH ROW\n"
            "    WHEN (NEW.auto_transition_to_id IS NOT NULL)"
        ),
        function=CONFIG_TARGET_FUNCTION.name,
    ),
    Trigger(
        name="substatus_parent_fixed",
        table="status_substatus_configs",
        definition=(
            "BEFORE UPDATE ON status_substatus_configs\n    FOR EACH ROW\n"
            "    WHEN (OLD.tenant_id IS DISTINCT FROM NEW.tenant_id OR OLD.entity IS DISTINCT FROM NEW.entity "
            "OR OLD.status IS DISTINCT FROM NEW.status)"
        ),
        function=CONFIG_PARENT_FUNCTION.name,
    ),
    Trigger(
        name="substatus_protect_history",
        table="status_substatus_configs",
        definition="BEFORE DELETE ON status_substatus_configs\n    FOR EACH ROW",
        function=CONFIG_IN_HISTORY_FUNCTION.name,
    ),
    # Checked at commit, once per changed row: the service's switch of default runs two statements.
    Trigger(
        name="substatus_default_required",
        table="status_substatus_configs",
        definition=(
            "AFTER INSERT OR DELETE OR UPDATE OF is_default ON status_substatus_configs\n"
            "    DEFERRABLE INITIALLY DEFERRED\n    FOR EACH ROW"
        ),
        function=CONFIG_DEFAULT_REQUIRED_FUNCTION.name,
        constraint=True,
    ),
    Trigger(
        name="substatus_append_only",
        table="substatus_history",
        definition="BEFORE UPDATE OR DELETE ON substatus_history\n    FOR EACH STATEMENT",
        function=HISTORY_APPEND_ONLY_FUNCTION.name,
    ),
]

TENANT_TRIGGERS = [
    Trigger(
        name="substatus_install_default_catalog",
        table="tenants",
        definition="AFTER INSERT ON tenants\n    REFERENCING NEW TABLE AS new_tenants\n    FOR EACH STATEMENT",
        function=INSTALL_CATALOG_FUNCTION.name,
    ),
]

# The analytics' duration buckets (substatus.models.SubstatusStayBucket): 0 below one second,
# then sixteen per doubling (NULL for NULL). Non-decreasing in `seconds`, which the percentiles
# rely on. Not STRICT, so that PostgreSQL inlines it into the queries.
STAY_BUCKET_FUNCTION = Function(
    name="substatus_stay_bucket",
    arguments="seconds float8",
    returns="integer",
    language="sql",
    volatility="IMMUTABLE PARALLEL SAFE",
    body=" SELECT CASE WHEN seconds < 1 THEN 0 ELSE 1 + floor(ln(seconds) * 23.083120654223414)::integer END ",
)

# A contact or project deleted for good: its stays still running count without a time in the
# analytics (substatus.models.SubstatusPurgedRecord).
RECORD_PURGED_FUNCTION = Function(
    name="substatus_record_purged",
    body="""
BEGIN
    INSERT INTO substatus_purged_records (tenant_id, entity, record_id)
    SELECT purged.tenant_id, CASE TG_TABLE_NAME WHEN 'contacts' THEN 'contact' ELSE 'project' END, purged.id
    FROM purged;
    RETURN NULL;
END
""",
)

PURGE_TRIGGERS = [
    Trigger(
        name=f"substatus_{table}_purged",
        table=table,
        definition=f"AFTER DELETE ON {table}\n    REFERENCING OLD TABLE AS purged\n    FOR EACH STATEMENT",
        function=RECORD_PURGED_FUNCTION.name,
    )
    for table in ("contacts", "projects")
]

FUNCTIONS: list[Function] = [
    DEFAULT_CATALOG_FUNCTION,
    INSTALL_CATALOG_FUNCTION,
    CHANGE_CONTEXT_FUNCTION,
    CHECK_FUNCTION,
    *CONTACT_FUNCTIONS,
    *PROJECT_FUNCTIONS,
    CONFIG_TARGET_FUNCTION,
    CONFIG_PARENT_FUNCTION,
    CONFIG_IN_HISTORY_FUNCTION,
    CONFIG_DEFAULT_REQUIRED_FUNCTION,
    HISTORY_APPEND_ONLY_FUNCTION,
    STAY_BUCKET_FUNCTION,
    RECORD_PURGED_FUNCTION,
]
TRIGGERS: list[Trigger] = [
    *CONTACT_TRIGGERS,
    *PROJECT_TRIGGERS,
    *CONFIG_TRIGGERS,
    *TENANT_TRIGGERS,
    *PURGE_TRIGGERS,
]


def install_sql() -> str:
    return "\n\n".join([*(function.install for function in FUNCTIONS), *(trigger.install for trigger in TRIGGERS)])


def uninstall_sql() -> str:
    return "\n".join(
        [*(trigger.uninstall for trigger in reversed(TRIGGERS)), *(f.uninstall for f in reversed(FUNCTIONS))]
    )
