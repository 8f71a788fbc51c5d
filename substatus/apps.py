from django.apps import AppConfig


class SubstatusConfig(AppConfig):
    name = "substatus"
    verbose_name = "Substatuses"

    def ready(self) -> None:
        from crm.constraints import constraint_register

        # The errors raised by the triggers of substatus/triggers.py, as field errors.
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
            message="This substatus appears in the history of records: deactivate it instead.",
        )
        constraint_register(
            "substatus_history_append_only", attr=None, message="The substatus history cannot be changed."
        )
