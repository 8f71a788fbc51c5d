"""Usage logging (queued after the response, flushed in bulk by a real worker), analytics, retention."""

import datetime as dt
import json
import time
import uuid
from urllib.parse import quote

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.utils import timezone

from crm.celery import app
from crm.models import Role
from filters.models import FilterConfig, FilterUsageLog, SavedFilter
from filters.tasks import filter_usage_flush_task, filter_usage_prune_task
from filters.usage import usage_flush, usage_prune
from tests.conftest import client_for, member
from tests.factories import ContactFactory

UTC = dt.UTC


@pytest.fixture
def queue():
    client = redis.Redis.from_url(settings.FILTER_USAGE_REDIS_URL)
    client.delete(settings.FILTER_USAGE_QUEUE)
    return client


def queued(queue) -> list[dict]:
    return [json.loads(item) for item in queue.lrange(settings.FILTER_USAGE_QUEUE, 0, -1)]


def filtered(tree) -> str:
    return f"/api/v1/contacts/?filter={quote(json.dumps(tree))}"


TREE = {
    "and": [
        {"field": "stage", "op": "in", "value": ["new"]},
        {"field": "lead_score", "op": "greater_than", "value": 50},
    ]
}


def test_beat_flushes_every_ten_seconds_and_prunes_daily():
    assert settings.CELERY_BEAT_SCHEDULE["filter-usage-flush"] == {"task": filter_usage_flush_task.name, "schedule": 10}
    assert settings.CELERY_BEAT_SCHEDULE["filter-usage-prune"] == {
        "task": filter_usage_prune_task.name,
        "schedule": 86400,
    }
    assert settings.FILTER_USAGE_RETENTION_DAYS == 180


def test_a_filtered_list_queues_one_entry_and_the_flush_writes_a_row_per_condition(tenant, owner, queue):
    ContactFactory(tenant=tenant, stage="new", lead_score=80)
    ContactFactory(tenant=tenant, stage="new", lead_score=20)
    saved = SavedFilter.objects.create(
        tenant=tenant,
        created_by=owner,
        entity_type="contacts",
        name="Scored",
        filter_criteria={"field": "lead_score", "op": "greater_than_or_equal", "value": 10},
    )
    client = client_for(owner)

    assert client.get(filtered(TREE)).json()["count"] == 1
    assert client.get(filtered(TREE) + f"&saved_filter={saved.pk}").json()["count"] == 1
    entries = queued(queue)

    assert [len(entry["conditions"]) for entry in entries] == [2, 3]
    assert usage_flush() == 5
    assert queued(queue) == []
    rows = list(
        FilterUsageLog.objects.order_by("id").values_list(
            "tenant", "user", "entity_type", "filter_field", "operator", "filter_value", "results_count", "saved_filter"
        )
    )
    assert rows == [
        (tenant.pk, owner.pk, "contacts", "stage", "in", ["new"], 1, None),
        (tenant.pk, owner.pk, "contacts", "lead_score", "greater_than", 50, 1, None),
        (tenant.pk, owner.pk, "contacts", "lead_score", "greater_than_or_equal", 10, 1, saved.pk),
        (tenant.pk, owner.pk, "contacts", "stage", "in", ["new"], 1, saved.pk),
        (tenant.pk, owner.pk, "contacts", "lead_score", "greater_than", 50, 1, saved.pk),
    ]
    stage = FilterConfig.objects.get(tenant=tenant, entity_type="contacts", field_name="stage")
    assert FilterUsageLog.objects.filter(filter_field="stage").values_list(
        "filter_config", flat=True
    ).distinct().get() == (stage.pk)
    assert len(set(FilterUsageLog.objects.values_list("request_id", flat=True))) == 2
    assert all(duration > 0 for duration in FilterUsageLog.objects.values_list("duration_ms", flat=True))
    saved.refresh_from_db()
    assert saved.usage_count == 1
    assert saved.last_used_at == dt.datetime.fromisoformat(entries[1]["used_at"])


@pytest.mark.parametrize(
    "path",
    ["/api/v1/contacts/", "/api/v1/contacts/?stage=new", filtered({"field": "nope", "op": "is_null"})],
    ids=["unfiltered", "django-filter-only", "refused"],
)
def test_nothing_is_queued_without_a_valid_filter(owner_client, queue, path):
    owner_client.get(path)
    assert queued(queue) == []


def test_logging_can_be_turned_off(owner_client, queue, settings):
    settings.FILTER_USAGE_LOGGING = False
    assert owner_client.get(filtered(TREE)).status_code == 200
    assert queued(queue) == []


def test_a_vanished_catalog_entry_or_saved_filter_becomes_null(tenant, owner, queue):
    client_for(owner).get(filtered(TREE))
    FilterConfig.objects.filter(tenant=tenant, field_name="stage", entity_type="contacts").delete()

    assert usage_flush() == 2
    assert list(FilterUsageLog.objects.order_by("id").values_list("filter_field", "filter_config__field_name")) == [
        ("stage", None),
        ("lead_score", "lead_score"),
    ]


@pytest.mark.django_db(transaction=True)
def test_a_worker_flushes_the_queue(tenant, owner, queue):
    client_for(owner).get(filtered(TREE))
    results: list[int] = []

    def finished(sender=None, retval=None, **kwargs) -> None:
        if getattr(sender, "name", None) == filter_usage_flush_task.name:
            results.append(retval)

    task_postrun.connect(finished, weak=False)
    try:
        with start_worker(app, perform_ping_check=False, shutdown_timeout=30):
            filter_usage_flush_task.delay()
            deadline = time.monotonic() + 30
            while not results and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        task_postrun.disconnect(finished)

    assert results == [2]
    assert FilterUsageLog.objects.count() == 2


def test_prune_keeps_the_retention_window(tenant):
    now = dt.datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    old = log(tenant, None, "stage", used_at=now - dt.timedelta(days=180, seconds=1))
    kept = log(tenant, None, "stage", used_at=now - dt.timedelta(days=179))

    assert usage_prune(now=now) == 1
    assert list(FilterUsageLog.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not FilterUsageLog.objects.filter(pk=old.pk).exists()


# Analytics -----------------------------------------------------------------------------------


def log(tenant, user, field, *, used_at, duration=10.0, request=None, saved=None, entity="contacts", config=None):
    return FilterUsageLog.objects.create(
        request_id=request or uuid.uuid4(),
        tenant=tenant,
        user=user,
        entity_type=entity,
        filter_field=field,
        operator="equals",
        filter_value="x",
        results_count=3,
        duration_ms=duration,
        used_at=used_at,
        filter_config=config,
        saved_filter=saved,
    )


@pytest.fixture
def history(tenant, other_tenant, owner, member_user):
    """Usage in December (Denver days) by the owner and a member; noise outside the window and tenant."""
    tenant.timezone = "America/Denver"
    tenant.save(update_fields=["timezone"])
    config = {c.field_name: c for c in FilterConfig.objects.filter(tenant=tenant, entity_type="contacts")}
    hot = SavedFilter.objects.get(tenant=tenant, name="Hot Leads (Score > 70)")
    day = dt.datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    first, second = uuid.uuid4(), uuid.uuid4()
    log(tenant, owner, "stage", used_at=day, duration=10, request=first, saved=hot, config=config["stage"])
    log(tenant, owner, "lead_score", used_at=day, duration=10, request=first, saved=hot, config=config["lead_score"])
    log(tenant, owner, "stage", used_at=day, duration=30, request=second, config=config["stage"])
    log(tenant, member_user, "stage", used_at=day, duration=50, config=config["stage"])
    log(tenant, member_user, "tags", used_at=day, duration=200, config=config["tags"])
    # Dec 1 06:30 UTC is Nov 30 in Denver: outside a window starting Dec 1
    log(tenant, owner, "source", used_at=dt.datetime(2026, 12, 1, 6, 30, tzinfo=UTC), config=config["source"])
    log(other_tenant, None, "stage", used_at=day)
    log(tenant, owner, "type", used_at=day, entity="activities")
    return config, hot


def test_usage_analytics_for_a_manager(tenant, manager, history):
    config, hot = history

    response = client_for(manager).get("/api/v1/filters/usage/?from=2026-12-01&to=2026-12-03&entity_type=contacts")

    assert response.status_code == 200, response.content
    body = response.json()
    assert {k: body[k] for k in ("from", "to", "timezone", "entity_type", "requests")} == {
        "from": "2026-12-01",
        "to": "2026-12-03",
        "timezone": "America/Denver",
        "entity_type": "contacts",
        "requests": 4,
    }
    assert body["fields"] == [
        {"entity_type": "contacts", "field": "stage", "uses": 3, "requests": 3, "users": 2},
        {"entity_type": "contacts", "field": "lead_score", "uses": 1, "requests": 1, "users": 1},
        {"entity_type": "contacts", "field": "tags", "uses": 1, "requests": 1, "users": 1},
    ]
    assert body["saved_filters"] == [
        {"id": hot.pk, "name": "Hot Leads (Score > 70)", "entity_type": "contacts", "uses": 1}
    ]
    used = {"stage", "lead_score", "tags"}
    assert [entry["field"] for entry in body["unused_fields"]] == [name for name in config if name not in used]
    # p95 (continuous) of stage's 10, 30, 50 = 48.0; of tags' single 200 = 200.0
    assert body["slowest"] == [
        {"entity_type": "contacts", "field": "tags", "p95_ms": 200.0, "uses": 1},
        {"entity_type": "contacts", "field": "stage", "p95_ms": 48.0, "uses": 3},
        {"entity_type": "contacts", "field": "lead_score", "p95_ms": 10.0, "uses": 1},
    ]
    assert [(u["username"], u["requests"], u["conditions"]) for u in body["users"]] == [
        ("member", 2, 2),
        ("owner", 2, 3),
    ]


def test_members_see_their_own_usage(tenant, member_user, history):
    response = client_for(member_user).get("/api/v1/filters/usage/?from=2026-12-01&to=2026-12-03")

    body = response.json()
    assert body["requests"] == 2
    assert [(u["username"], u["requests"]) for u in body["users"]] == [("member", 2)]
    assert [f["field"] for f in body["fields"]] == ["stage", "tags"]


def test_a_window_the_wrong_way_round_is_a_400(owner_client):
    response = owner_client.get("/api/v1/filters/usage/?from=2026-12-05&to=2026-12-01")
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "from"


def test_the_default_window_is_the_last_30_local_days(tenant, owner):
    response = client_for(owner).get("/api/v1/filters/usage/")
    today = timezone.now().astimezone(UTC).date()
    body = response.json()
    assert dt.date.fromisoformat(body["to"]) - dt.date.fromisoformat(body["from"]) == dt.timedelta(days=29)
    assert abs((dt.date.fromisoformat(body["to"]) - today).days) <= 1


def test_roles_see_their_own_or_everyones(tenant, history):
    viewer = member(tenant, Role.VIEWER, "looker")
    response = client_for(viewer).get("/api/v1/filters/usage/?from=2026-12-01&to=2026-12-03")
    assert response.json()["requests"] == 0
