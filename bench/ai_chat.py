"""POST /api/v1/ai/conversations/{id}/messages/ with one tool call, against its floor; and the conversation list.

Starts the tests' fake OpenAI-compatible server on loopback (zero think time: it answers a user
message with one `search_contacts` call, and the tool's result with a short reply), builds a
tenant of 2,000 contacts, then sends 200 conversations x 20 messages (5 turns of user message,
tool call, tool result, reply) through the endpoint (`--small`: 20 conversations).

Figure: the endpoint's p50 for a turn with one tool call. Floor, in the same run: the same two
`openai` client calls to the same server, and the tool's query by hand through psycopg.
Goal (issue 14): at most 2 times the floor.

Second figure: GET /api/v1/ai/conversations/ (the user's first page of 50, with 10,000
conversations in the tenant) against the same page and count by psycopg; goal: the foundation's
API ratio (bench/api_list.py, 8). For comparison, the same run also times the foundation's own
contacts list (first page of 50 of the tenant's 2,000, with its count) against its raw page and count.
"""

import os
import sys

from _common import REPO, django_setup, p50, p95, parse_args, progress, result_line, step, time_pair_ms

DATABASE = "ridgeline_bench_ai_chat"
GOAL = 2
LIST_GOAL = 8
WARMUP = 10
SEARCH = "smith"

args = parse_args(__doc__.splitlines()[0], iterations=200, small_iterations=40)
database_url = django_setup(DATABASE)

import _data  # noqa: E402
import openai  # noqa: E402
import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from ai_chat.models import Conversation  # noqa: E402
from ai_chat.services import conversation_create  # noqa: E402
from contacts.models import Contact  # noqa: E402
from contacts.serializers import ContactSerializer  # noqa: E402
from crm.actor import Actor  # noqa: E402
from crm.models import AuthToken, Membership, Role, Tenant  # noqa: E402

sys.path.insert(0, str(REPO))
from tests.ai_chat.fake_openai import completion_body, fake_openai_server  # noqa: E402


def responder(body: dict) -> dict:
    """Zero think time: a user message gets one tool call, a tool result gets the answer."""
    last = body["messages"][-1]
    if last["role"] == "user":
        return completion_body(None, [("call_1", "search_contacts", {"query": SEARCH, "limit": 10})])
    return completion_body("Here they are.")


def build() -> tuple[Tenant, object, str]:
    _data.seed(0.14)
    with step("a tenant of 2,000 contacts"):
        (seeded,) = _data.tenants_create([2_000])
        _data.contacts_create(seeded)
        _data.vacuum_analyze("contacts")
    tenant = Tenant.objects.get(pk=seeded.id)
    user = Membership.objects.get(tenant=tenant, role=Role.OWNER).user
    return tenant, user, AuthToken.objects.create(user=user)[1]


def turns(client: APIClient, tenant: Tenant, user: object, conversations: int) -> None:
    """Every conversation gets 5 turns: 20 messages besides its system prompt."""
    actor = Actor(tenant=tenant, user=user)
    for number in range(conversations):
        conversation = conversation_create(actor=actor)
        for _ in range(5):
            response = client.post(
                f"/api/v1/ai/conversations/{conversation.pk}/messages/", {"content": f"find contacts named {SEARCH}"}
            )
            assert response.status_code == 200, response.content[:300]
        if (number + 1) % 20 == 0:
            progress(f"  conversations {number + 1}/{conversations}")


def main() -> None:
    tenant, user, token = build()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}", HTTP_X_TENANT=tenant.subdomain)
    with fake_openai_server() as fake:
        fake.responder = responder
        settings.AI_BASE_URL = fake.url
        conversations = 20 if args.small else 200
        with step(f"{conversations} conversations x 20 messages through the endpoint"):
            turns(client, tenant, user, conversations)
        assert Conversation.objects.filter(tenant=tenant).count() == conversations

        # Timed turns go to fresh conversations, five each, as in the data set (at most 20 messages),
        # and the floor sends exactly the two requests the endpoint's latest turn sent.
        timed = [conversation_create(actor=Actor(tenant=tenant, user=user)) for _ in range(args.iterations // 5 + 8)]
        turn_count = [0]
        latest: list[dict] = []
        raw_client = openai.OpenAI(base_url=fake.url, api_key="unused", max_retries=0)
        search_sql = (
            "SELECT id, first_name, last_name, company, email, phone, type, stage FROM contacts "
            "WHERE tenant_id = %s AND NOT is_deleted AND search @@ to_tsquery('simple', %s) "
            "ORDER BY last_name, first_name, id LIMIT 10"
        )

        with psycopg.connect(database_url, autocommit=True) as raw:

            def endpoint() -> None:
                conversation = timed[turn_count[0] // 5 % len(timed)]
                turn_count[0] += 1
                url = f"/api/v1/ai/conversations/{conversation.pk}/messages/"
                response = client.post(url, {"content": f"find contacts named {SEARCH}"})
                assert response.status_code == 200
                latest[:] = fake.requests[-2:]

            def floor() -> None:
                first, second = latest
                raw_client.chat.completions.create(**first)
                raw.execute(search_sql, (tenant.pk, f"{SEARCH}:*")).fetchall()
                raw.execute(
                    "SELECT count(*) FROM contacts WHERE tenant_id = %s AND NOT is_deleted "
                    "AND search @@ to_tsquery('simple', %s)",
                    (tenant.pk, f"{SEARCH}:*"),
                ).fetchone()
                raw_client.chat.completions.create(**second)

            endpoint()
            with step(f"timing a turn with one tool call ({args.iterations} each side)"):
                turn_ms, floor_ms = time_pair_ms(endpoint, floor, iterations=args.iterations, warmup=WARMUP)

            with step("10,000 conversations in the tenant (set-based)"):
                others = list(Membership.objects.filter(tenant=tenant).values_list("user_id", flat=True))
                raw.execute(
                    "INSERT INTO ai_conversations (tenant_id, user_id, title, is_active, metadata, pinned, legal_hold, "
                    "provider, model, message_count, prompt_tokens, completion_tokens, total_cost, created_at, "
                    "updated_at) SELECT %s, (%s::bigint[])[1 + n %% cardinality(%s::bigint[])], 'Chat ' || n, true, "
                    "'{}', false, false, 'offline', 'offline', 0, 0, 0, 0, now() - n * interval '1 minute', "
                    "now() - n * interval '1 minute' FROM generate_series(1, %s) AS n",
                    (tenant.pk, others, others, 10_000 - Conversation.objects.filter(tenant=tenant).count()),
                )
                raw.execute("VACUUM ANALYZE ai_conversations")
            mine = Conversation.objects.filter(tenant=tenant, user=user).count()
            columns = (
                "id, title, pinned, metadata, user_id, is_active, legal_hold, provider, model, last_message_at, "
                "message_count, prompt_tokens, completion_tokens, total_cost, created_at, updated_at"
            )
            where = "tenant_id = %s AND user_id = %s AND deleted_at IS NULL"

            def listing() -> None:
                response = client.get("/api/v1/ai/conversations/")
                assert response.status_code == 200

            def raw_listing() -> None:
                raw.execute(
                    f"SELECT {columns} FROM ai_conversations WHERE {where} "  # noqa: S608 (constants)
                    "ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT 50",
                    (tenant.pk, user.pk),
                ).fetchall()
                raw.execute(f"SELECT count(*) FROM ai_conversations WHERE {where}", (tenant.pk, user.pk)).fetchone()  # noqa: S608

            assert client.get("/api/v1/ai/conversations/").json()["count"] == mine
            with step(f"timing the list ({args.iterations} each side)"):
                list_ms, raw_list_ms = time_pair_ms(listing, raw_listing, iterations=args.iterations, warmup=WARMUP)

            # The same request shape on the foundation's contacts list, in the same run: what the
            # full request path costs against a page and count that PostgreSQL answers as fast.
            contact_columns = ", ".join(
                Contact._meta.get_field(name).column
                for name, field in ContactSerializer().fields.items()
                if name != "display_name" and not field.write_only
            )
            contact_where = "tenant_id = %s AND NOT is_deleted"

            def contacts_listing() -> None:
                response = client.get("/api/v1/contacts/?page_size=50")
                assert response.status_code == 200

            def raw_contacts_listing() -> None:
                raw.execute(
                    f"SELECT {contact_columns} FROM contacts WHERE {contact_where} "  # noqa: S608 (constants)
                    "ORDER BY created_at DESC, id DESC LIMIT 50",
                    (tenant.pk,),
                ).fetchall()
                raw.execute(f"SELECT count(*) FROM contacts WHERE {contact_where}", (tenant.pk,)).fetchone()  # noqa: S608

            with step(f"timing the contacts list, the foundation's, for comparison ({args.iterations} each side)"):
                contacts_ms, raw_contacts_ms = time_pair_ms(
                    contacts_listing, raw_contacts_listing, iterations=args.iterations, warmup=WARMUP
                )

    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (other work on the machine skews both sides)"
    )
    print(f"turn with one tool call: endpoint p50 {p50(turn_ms):.2f} ms (p95 {p95(turn_ms):.2f})")
    print(f"  floor (2 raw openai calls + the query by psycopg): p50 {p50(floor_ms):.2f} ms (p95 {p95(floor_ms):.2f})")
    print(f"  ratio {p50(turn_ms) / p50(floor_ms):.2f} (goal <= {GOAL})")
    print(f"conversation list ({mine:,} of the user's, 10,000 in the tenant): p50 {p50(list_ms):.2f} ms")
    print(f"  raw page + count: p50 {p50(raw_list_ms):.3f} ms; ratio {p50(list_ms) / p50(raw_list_ms):.2f}")
    print(f"contacts list (the foundation's, 2,000 in the tenant, same run): p50 {p50(contacts_ms):.2f} ms")
    print(f"  raw page + count: p50 {p50(raw_contacts_ms):.3f} ms; ratio {p50(contacts_ms) / p50(raw_contacts_ms):.2f}")
    result_line(
        bench="ai_chat",
        figure=p50(turn_ms),
        baseline=p50(floor_ms),
        goal=GOAL,
        p95_ms=p95(turn_ms),
        conversations=conversations,
        list_figure=p50(list_ms),
        list_baseline=p50(raw_list_ms),
        list_ratio=round(p50(list_ms) / p50(raw_list_ms), 2),
        list_goal=LIST_GOAL,
        contacts_list_figure=p50(contacts_ms),
        contacts_list_baseline=p50(raw_contacts_ms),
        contacts_list_ratio=round(p50(contacts_ms) / p50(raw_contacts_ms), 2),
        iterations=args.iterations,
    )


main()
