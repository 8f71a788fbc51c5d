"""The users bench/load.py sends at gunicorn (locust), configured by the environment it sets.

Each user is a member of the big tenant with its own API token, and works like one at a desk:
mostly lists, some edits, a note now and then, a question to the (offline) AI assistant; it
waits LOAD_THINK_MIN..LOAD_THINK_MAX seconds between requests.
"""

import json
import os
import random
from itertools import count

from locust import HttpUser, between, task

FILTER = json.dumps({"and": [{"field": "stage", "op": "in", "value": ["qualified", "proposal"]}]})
TURNS_PER_CONVERSATION = 10  # a new conversation after this many messages, as people start new topics
_numbers = count()


def contact_ids() -> list[int]:
    with open(os.environ["LOAD_CONTACT_IDS"]) as ids_file:
        return [int(line) for line in ids_file]


class Staff(HttpUser):
    wait_time = between(float(os.environ.get("LOAD_THINK_MIN", "0.5")), float(os.environ.get("LOAD_THINK_MAX", "1.5")))
    contact_ids: list[int] = []

    def on_start(self) -> None:
        tokens = os.environ["LOAD_TOKENS"].split(",")
        token = tokens[next(_numbers) % len(tokens)]
        self.client.headers.update({"Authorization": f"Token {token}", "X-Tenant": os.environ["LOAD_TENANT"]})
        if not Staff.contact_ids:
            Staff.contact_ids = contact_ids()
        self.conversation: int | None = None
        self.turns = 0

    @task(4)
    def contacts_list(self) -> None:
        self.client.get("/api/v1/contacts/?page_size=50", name="contacts list")

    @task(2)
    def contacts_filtered(self) -> None:
        self.client.get("/api/v1/contacts/", params={"filter": FILTER, "page_size": 50}, name="contacts filtered")

    @task(2)
    def contact_update(self) -> None:
        contact = random.choice(self.contact_ids)  # noqa: S311 (load, not security)
        priority = random.choice(["low", "normal", "high", "urgent"])  # noqa: S311
        self.client.patch(f"/api/v1/contacts/{contact}/", json={"priority": priority}, name="contact update")

    @task(2)
    def activity_create(self) -> None:
        contact = random.choice(self.contact_ids)  # noqa: S311
        body = {"type": "note", "contact": contact, "content": "Called about the hail inspection."}
        self.client.post("/api/v1/activities/", json=body, name="activity create")

    @task(1)
    def ai_message(self) -> None:
        if self.conversation is None or self.turns >= TURNS_PER_CONVERSATION:
            response = self.client.post("/api/v1/ai/conversations/", json={}, name="ai conversation create")
            if response.status_code != 201:
                return
            self.conversation, self.turns = response.json()["id"], 0
        self.turns += 1
        self.client.post(
            f"/api/v1/ai/conversations/{self.conversation}/messages/",
            json={"content": "find contacts named smith"},
            name="ai chat message",
        )


if __name__ == "__main__":
    print("The locustfile of bench/load.py: run that instead.")
