from django.apps import AppConfig


class SubstatusAppConfig(AppConfig):
    name = "substatus"
    verbose_name = "Substatuses"

    def ready(self) -> None:
        from crm.constraints import constraint_register
        from crm.errors import Conflict

        # The substatus rules live in the database (substatus/triggers.py and the models'
        # constraints); these are their messages and the fields they are shown on.
        for table, record, other in (("contacts", "contact", "project"), ("projects", "project", "contact")):
            status = "stage" if record == "contact" else "status"
            for name, message in {
                "unknown": "This substatus does not exist.",
                "other_tenant": "This substatus belongs to another tenant.",
                "other_entity": f"This substatus is for {other}s, not {record}s.",
                f"other_{status}": f"This substatus belongs to another {status} than the {record}'s {status}.",
                "inactive": "This substatus is inactive: choose an active one.",
            }.items():
                constraint_register(f"{table}_substatus_{name}", attr="substatus", message=message)
        constraint_register(
            "substatus_configs_transition_target",
            attr="auto_transition_to",
            message="The automatic transition must go to another substatus of the same status.",
        )
        constraint_register(
            "substatus_configs_parent_fixed",
            attr="status",
            message="A substatus stays under its status: create a new one for another status.",
        )
        constraint_register(
            "substatus_configs_in_history",
            attr=None,
            message="Records have been in this substatus: deactivate it instead, so their history stays readable.",
            error=Conflict,
        )
        constraint_register(
            "substatus_configs_default_required",
            attr="is_default",
            message="A status keeps one default: make another substatus the default instead.",
        )
        constraint_register(
            "substatus_history_append_only", attr=None, message="The substatus history cannot be changed."
        )
        # Declared constraints keep their own messages; these name the field a person changes.
        constraint_register("substatus_configs_status_valid", attr="status")
        constraint_register("substatus_configs_one_default", attr="is_default")
        constraint_register("substatus_configs_default_active", attr="is_active")
        constraint_register("substatus_configs_auto_transition_delay", attr="auto_transition_delay_hours")
        constraint_register("substatus_configs_terminal_stays", attr="auto_transition_to")
