"""The staff dashboard in the admin: access, generations in flight, stuck items, failure
codes of the last 24 hours, queue depth on each broker, htmx refresh and its bounded
queries."""

import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from generations.admin.dashboard import QueueDepth, queue_depth
from generations.errors import ErrorCode
from generations.models import Generation, Item
from generations.states import AttemptOutcome, GenerationStatus, ItemStatus
from generations.tests.factories import (
    AttemptFactory,
    GenerationFactory,
    ItemFactory,
    UserFactory,
)
from generations.tests.pipeline_helpers import create_video, processing_video
from tests.tiers import TIER, services_required

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("admin:generations_generation_dashboard")


@pytest.fixture
def staff_client(client, staff_user):
    staff_user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_generation", "view_item"])
    )
    client.force_login(staff_user)
    return client


@pytest.fixture
def file_broker(settings, tmp_path):
    folder = tmp_path / "broker"
    folder.mkdir()
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
    }
    return folder


def put_message(folder, queue):
    (folder / f"1700000000000_{uuid.uuid4()}.{queue}.msg").write_bytes(b"{}")


def stuck_item(generation, *, minutes_over):
    item = Item.objects.filter(generation=generation).order_by("variant__position", "number")[0]
    started = timezone.now() - timedelta(seconds=settings.ITEM_LEASE_SECONDS, minutes=minutes_over)
    Item.objects.filter(pk=item.pk).update(
        status=ItemStatus.PROCESSING, started_at=started, heartbeat_at=started, attempts=1
    )
    return item


def failed_item(*, code, ago, outcome=AttemptOutcome.FAILED):
    """An item whose attempt failed `ago` with `code`."""
    when = timezone.now() - ago
    item = ItemFactory(status=ItemStatus.FAILED, error_code=code, completed_at=when)
    AttemptFactory(item=item, outcome=outcome, error_code=code, started_at=when, ended_at=when)
    Generation.objects.filter(pk=item.generation_id).update(
        status=GenerationStatus.FAILED, updated_at=when
    )
    return item


# Access


def test_staff_with_view_permission_see_the_dashboard(staff_client, file_broker):
    response = staff_client.get(DASHBOARD)

    assert response.status_code == 200
    page = response.content.decode()
    assert "Generations dashboard" in page
    assert 'hx-trigger="every 5s"' in page
    assert "htmx" in page
    assert '<meta http-equiv="refresh" content="5">' in page


def test_staff_without_permission_get_403(client):
    client.force_login(UserFactory(username="intern", is_staff=True))

    assert client.get(DASHBOARD).status_code == 403


def test_non_staff_are_sent_to_the_login(client, owner):
    client.force_login(owner)

    response = client.get(DASHBOARD)

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_changelist_and_app_page_link_the_dashboard(admin_client):
    for url in (
        reverse("admin:generations_generation_changelist"),
        reverse("admin:app_list", args=["generations"]),
    ):
        assert f'href="{DASHBOARD}"' in admin_client.get(url).content.decode()


# What it shows


def test_generations_in_flight_with_live_counters(staff_client, owner, file_broker):
    pending = create_video(owner, title="Waiting one")
    running = processing_video(owner, title="Running one")
    GenerationFactory(status=GenerationStatus.COMPLETED, title="Done one")

    response = staff_client.get(DASHBOARD)

    rows = [row["generation"].pk for row in response.context["in_flight"]]
    assert rows == [pending.pk, running.pk]
    assert response.context["totals"] == {
        "generations": 2,
        "pending": 1,
        "processing": 1,
        "items": 8,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "waiting": 8,
    }
    page = response.content.decode()
    assert "Waiting one" in page
    assert "Running one" in page
    assert "Done one" not in page
    assert "0/4" in page


def test_stuck_items_are_counted_and_listed(staff_client, owner, file_broker):
    generation = processing_video(owner)
    lost = stuck_item(generation, minutes_over=5)
    Item.objects.filter(generation=generation).exclude(pk=lost.pk).filter(
        variant__label="bold", number=1
    ).update(
        status=ItemStatus.PROCESSING, started_at=timezone.now(), heartbeat_at=timezone.now()
    )  # within its lease
    stale = create_video(owner, title="Never picked up")
    Generation.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=10))
    create_video(owner, title="Just submitted")

    response = staff_client.get(DASHBOARD)

    assert response.context["stuck_item_count"] == 1
    assert [item.pk for item in response.context["stuck_items"]] == [lost.pk]
    assert response.context["stuck_pending_count"] == 1
    assert [g.pk for g in response.context["stuck_pending"]] == [stale.pk]
    page = response.content.decode()
    assert reverse("admin:generations_item_change", args=[lost.pk]) in page
    assert "Never picked up" in page
    # The item list shows the same stuck items.
    assert "?stuck=yes" in page
    items = staff_client.get(reverse("admin:generations_item_changelist"), {"stuck": "yes"})
    assert [item.pk for item in items.context["cl"].result_list] == [lost.pk]


def test_stuck_counts_past_the_list_are_counted(staff_client, owner, file_broker, monkeypatch):
    monkeypatch.setattr("generations.admin.dashboard.STUCK_LIMIT", 2)
    generation = processing_video(owner)
    Item.objects.filter(generation=generation).update(
        status=ItemStatus.PROCESSING,
        started_at=timezone.now() - timedelta(hours=2),
        heartbeat_at=timezone.now() - timedelta(hours=2),
    )

    response = staff_client.get(DASHBOARD)

    assert len(response.context["stuck_items"]) == 2
    assert response.context["stuck_item_count"] == 4


def test_failure_codes_of_the_last_24_hours(staff_client, file_broker):
    for _ in range(3):
        failed_item(code=ErrorCode.PROVIDER_TIMEOUT, ago=timedelta(hours=2))
    failed_item(code=ErrorCode.INVALID_INPUT, ago=timedelta(hours=23))
    failed_item(code=ErrorCode.INTERNAL, ago=timedelta(hours=30))
    ItemFactory(status=ItemStatus.COMPLETED, completed_at=timezone.now())
    # A failure that a retry made good still counts.
    retried = failed_item(
        code=ErrorCode.WORKER_LOST, ago=timedelta(hours=1), outcome=AttemptOutcome.LOST
    )
    AttemptFactory(item=retried, number=2)

    response = staff_client.get(DASHBOARD)

    assert response.context["failure_codes"] == [
        {"code": "provider_timeout", "count": 3},
        {"code": "invalid_input", "count": 1},
        {"code": "worker_lost", "count": 1},
    ]
    page = response.content.decode()
    assert "provider_timeout" in page
    assert "internal" not in page.split("Failure codes")[1].split("Stuck items")[0]


def test_htmx_refresh_gets_the_panels_alone(staff_client, file_broker):
    response = staff_client.get(DASHBOARD, headers={"HX-Request": "true"})

    assert response.status_code == 200
    page = response.content.decode()
    assert page.lstrip().startswith('<div id="gv-dashboard"')
    assert "<html" not in page


def test_dashboard_queries_are_bounded(
    admin_client, owner, file_broker, django_assert_max_num_queries, monkeypatch
):
    monkeypatch.setattr("generations.admin.dashboard.STUCK_LIMIT", 2)
    for _ in range(3):
        generation = processing_video(owner)
        stuck_item(generation, minutes_over=1)
        stale = create_video(UserFactory())
        Generation.objects.filter(pk=stale.pk).update(
            created_at=timezone.now() - timedelta(hours=1)
        )
        failed_item(code=ErrorCode.PROVIDER_ERROR, ago=timedelta(hours=1))

    # session, user, totals, stuck items and their count, stuck pending and their
    # count, in flight, failure codes
    with django_assert_max_num_queries(9):
        response = admin_client.get(DASHBOARD)

    assert response.context["stuck_item_count"] == 3
    assert response.context["stuck_pending_count"] == 3


# Queue depth


def test_queue_depth_on_the_filesystem_broker(staff_client, file_broker, settings):
    for _ in range(3):
        put_message(file_broker, settings.CELERY_TASK_DEFAULT_QUEUE)
    put_message(file_broker, "another-queue")

    assert queue_depth() == QueueDepth("filesystem", 3)
    page = staff_client.get(DASHBOARD).content.decode()
    assert "messages waiting in “genvault” (filesystem)" in page


def test_queue_depth_unknown_without_the_broker_folder(file_broker, settings, tmp_path):
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path / "missing")}

    depth = queue_depth()

    assert depth.messages is None
    assert "does not exist yet" in depth.problem


@pytest.fixture
def redis_broker(settings):
    if TIER.broker != "redis":
        if services_required():
            pytest.fail("Redis is required but not reachable")
        pytest.skip("Redis not reachable: filesystem broker only in this tier")
    queue = f"admin-test-{uuid.uuid4().hex}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    yield client, queue
    client.delete(queue, *(f"{queue}\x06\x16{step}" for step in (3, 6, 9)))
    client.close()


def test_queue_depth_on_redis_counts_every_priority_list(staff_client, redis_broker):
    client, queue = redis_broker
    client.rpush(queue, "a", "b")
    client.rpush(f"{queue}\x06\x169", "c")

    assert queue_depth() == QueueDepth("redis", 3)
    page = staff_client.get(DASHBOARD).content.decode()
    assert "(redis)" in page


def test_queue_depth_unknown_when_redis_does_not_answer(staff_client, settings):
    settings.CELERY_BROKER_URL = "redis://:secret@127.0.0.1:1/0"

    depth = queue_depth()

    assert depth.messages is None
    assert depth.problem.startswith("Redis did not answer")
    assert "secret" not in depth.problem
    page = staff_client.get(DASHBOARD).content.decode()
    assert "unknown" in page
    assert "Redis did not answer" in page


def test_queue_depth_unknown_on_other_brokers(settings):
    settings.CELERY_BROKER_URL = "amqp://guest@localhost//"

    assert queue_depth() == QueueDepth(
        "amqp", None, "Queue depth is not available for the amqp broker."
    )
