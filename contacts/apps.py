from django.apps import AppConfig


class ContactsConfig(AppConfig):
    name = "contacts"

    def ready(self) -> None:
        from crm.constraints import constraint_register

        # Raised by the triggers of contacts migration 0008.
        constraint_register(
            "contacts_person_reachable",
            attr="first_name",
            message="Give the contact a name, an email or a phone number.",
        )
