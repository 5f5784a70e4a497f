"""Tests for `generations.pipeline.recovery`: items held past their lease, generations and
items whose message was lost, and generations whose last worker died before deciding."""

from datetime import timedelta

import pytest
from django.utils import timezone

from generations import dispatch
from generations.errors import ErrorCode, GenerationError
from generations.models import Generation, Item, Variant
from generations.pipeline import lifecycle
from generations.pipeline.lifecycle import item_claim, item_complete, item_stop_cancelled
from generations.pipeline.prepare import generation_prepare
from generations.pipeline.recovery import recover_stuck_work
from generations.services import generation_cancel
from generations.states import GenerationStatus, ItemStatus
from generations.tests.pipeline_helpers import create_video, item_of, item_result, prepare

pytestmark = pytest.mark.django_db

VARIANTS = ["soft", "ultra"]
"""Two of the known variants: the stage tests read what is planned for "ultra"."""


def _video(owner, **overrides):
    return create_video(owner, **{"variants": VARIANTS, **overrides})


@pytest.fixture
def recover(django_capture_on_commit_callbacks):
    """Runs recovery as its beat task would; what it enqueues is sent once it commits."""

    def run():
        with django_capture_on_commit_callbacks(execute=True):
            return recover_stuck_work()

    return run


def _past_the_lease(settings):
    return timezone.now() - timedelta(seconds=settings.ITEM_LEASE_SECONDS + 60)


def _age_item(item, **fields):
    """Set these times of the item; a start is also the last sign of life of its worker."""
    if "started_at" in fields:
        fields.setdefault("heartbeat_at", fields["started_at"])
    Item.objects.filter(id=item.id).update(**fields)


def test_recover_requeues_stale_processing_items(owner, settings, sent, recover):
    settings.ITEM_MAX_ATTEMPTS = 3
    generation = prepare(_video(owner))
    stale = item_of(generation, "soft", 1)
    fresh = item_of(generation, "soft", 2)
    item_claim(item_id=stale.id, claim_token="lost")
    item_claim(item_id=fresh.id, claim_token="alive")
    long_ago = _past_the_lease(settings)
    _age_item(stale, started_at=long_ago)

    counts = recover()

    assert counts["requeued_items"] == 1
    assert counts["lost_items"] == 0
    stale.refresh_from_db()
    assert stale.status == ItemStatus.QUEUED
    assert stale.claim_token == ""
    fresh.refresh_from_db()
    assert fresh.status == ItemStatus.PROCESSING
    assert fresh.claim_token == "alive"
    assert (dispatch.RENDER_ITEM, stale.id, None) in sent
    assert not any(item_id == fresh.id for _, item_id, _ in sent)


def test_recover_fails_an_item_whose_attempts_ran_out(owner, settings, sent, recover):
    settings.ITEM_MAX_ATTEMPTS = 1
    generation = prepare(_video(owner))
    stale = item_of(generation, "soft", 1)
    item_claim(item_id=stale.id, claim_token="lost")
    _age_item(stale, started_at=_past_the_lease(settings))

    counts = recover()

    assert counts["requeued_items"] == 0
    assert counts["lost_items"] == 1
    stale.refresh_from_db()
    assert stale.status == ItemStatus.FAILED
    assert stale.error_code == ErrorCode.WORKER_LOST
    generation.refresh_from_db()
    assert generation.failed_items == 1
    assert not any(item_id == stale.id for _, item_id, _ in sent)


def test_recover_redispatches_old_pending_generations(owner, settings, sent, recover):
    old = _video(owner)
    recent = _video(owner)
    Generation.objects.filter(id=old.id).update(
        created_at=timezone.now() - timedelta(seconds=settings.PENDING_REDISPATCH_SECONDS + 5)
    )

    counts = recover()

    assert counts["redispatched_generations"] == 1
    assert counts["redispatched_items"] == 0
    assert sent == [(dispatch.RUN_GENERATION, old.id, None)]
    assert recent.id not in {object_id for _, object_id, _ in sent}


def test_recover_redispatches_forgotten_queued_items(owner, settings, sent, recover):
    generation = prepare(_video(owner))
    forgotten = [item_of(generation, "soft", 1), item_of(generation, "ultra", 2)]
    for item in forgotten:
        _age_item(item, queued_at=_past_the_lease(settings))

    counts = recover()

    assert counts["redispatched_items"] == 2
    assert counts["redispatched_generations"] == 0
    assert sorted(sent, key=str) == sorted(
        [(dispatch.RENDER_ITEM, item.id, None) for item in forgotten], key=str
    )


def test_recover_redispatches_a_generation_whose_stages_never_finished(
    owner, settings, sent, analysis_unavailable, recover
):
    generation = _video(owner)
    with pytest.raises(GenerationError):
        generation_prepare(generation_id=generation.id)
    # Its retry message was lost long ago (longer than its stages may take): neither the
    # generation nor its items moved.
    long_ago = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    Generation.objects.filter(id=generation.id).update(updated_at=long_ago)
    Item.objects.filter(generation=generation).update(queued_at=long_ago)

    counts = recover()

    assert counts["redispatched_generations"] == 1
    assert (dispatch.RUN_GENERATION, generation.id, None) in sent
    # Its items have no prompts yet: they are queued by the prepare, not rendered now.
    assert counts["redispatched_items"] == 0
    assert [name for name, _, _ in sent] == [dispatch.RUN_GENERATION]


def test_recover_decides_a_generation_whose_last_worker_died_before_deciding(
    owner, monkeypatch, recover
):
    generation = prepare(_video(owner))
    items = [item_claim(item_id=item.id, claim_token="w1") for item in generation.items.all()]
    for item in items[:-1]:
        item_complete(item=item, claim_token="w1", result=item_result(item))
    with monkeypatch.context() as dying:
        # The last item's worker dies between counting it and deciding the final status.
        dying.setattr(lifecycle, "finalise_if_ended", lambda **kwargs: None)
        item_complete(item=items[-1], claim_token="w1", result=item_result(items[-1]))
    Generation.objects.filter(id=generation.id).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.PROCESSING
    assert generation.completed_items == generation.total_items

    counts = recover()

    assert counts["finalised_generations"] == 1
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.COMPLETED
    assert generation.metadata.evaluation["success_rate"] == 1.0
    assert set(generation.variants.values_list("status", flat=True)) == {"completed"}
    assert recover_stuck_work()["finalised_generations"] == 0


def test_recover_ends_the_variants_of_a_cancelled_generation_left_running(
    owner, monkeypatch, recover
):
    generation = prepare(_video(owner, variants=["soft"], scenes_per_variant=1))
    running = item_claim(item_id=item_of(generation, "soft", 1).id, claim_token="w1")
    generation_cancel(generation=generation)

    with monkeypatch.context() as dying:
        dying.setattr(lifecycle, "finalise_if_ended", lambda **kwargs: None)
        item_stop_cancelled(item=running, claim_token="w1")
    Generation.objects.filter(id=generation.id).update(
        updated_at=timezone.now() - timedelta(hours=1)
    )
    assert Variant.objects.get(generation=generation).status == GenerationStatus.PROCESSING

    counts = recover()

    assert counts["finalised_generations"] == 1
    assert Variant.objects.get(generation=generation).status == GenerationStatus.CANCELLED
    generation.refresh_from_db()
    assert generation.status == GenerationStatus.CANCELLED


def test_recover_with_nothing_stuck_dispatches_nothing(owner, sent, recover):
    prepare(_video(owner))
    _video(owner)

    counts = recover()

    assert counts == {
        "requeued_items": 0,
        "lost_items": 0,
        "redispatched_generations": 0,
        "redispatched_items": 0,
        "finalised_generations": 0,
    }
    assert sent == []
