"""Tests for the trash: `generation_delete`, `generation_restore`, `trash_cutoff` and
`generations_purge_expired`."""

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from generations import purge
from generations.errors import ActionRefused
from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.pipeline.lifecycle import item_claim
from generations.pipeline.prepare import generation_prepare
from generations.purge import generations_purge_expired
from generations.selectors import trash_cutoff
from generations.services import (
    generation_create,
    generation_delete,
    generation_regenerate,
    generation_restore,
)
from generations.states import GenerationStatus, ItemStatus
from generations.tests.factories import GenerationFactory
from generations.tests.pipeline_helpers import item_statuses, run_pipeline
from storage.services import StorageUnavailable, object_keys, object_save

pytestmark = pytest.mark.django_db

SMALL_IMAGE = {"prompt": "A red bicycle", "variants": ["a", "b"], "width": 64, "height": 64}


def _create(owner, **overrides):
    return generation_create(owner=owner, kind="image", input={**SMALL_IMAGE, **overrides})


def _deleted_days_ago(generation, days):
    """Put `generation` in the trash as if it had been deleted `days` days ago."""
    Generation.objects.filter(id=generation.id).update(
        deleted_at=timezone.now() - timedelta(days=days)
    )
    generation.refresh_from_db()
    return generation


def _with_objects(generation):
    """Store a few objects under the generation's prefix, nested like real ones."""
    prefix = f"generations/{generation.id}/"
    keys = [f"{prefix}x/scene_1.png", f"{prefix}x/scene_1_thumb.jpg", f"{prefix}source/a/b.bin"]
    for key in keys:
        object_save(key=key, content=io.BytesIO(b"bytes"))
    return set(keys)


def _keys(generation):
    return set(object_keys(f"generations/{generation.id}/"))


def _rows_exist(generation_id):
    return {
        "generation": Generation.objects.filter(id=generation_id).exists(),
        "variants": Variant.objects.filter(generation_id=generation_id).exists(),
        "items": Item.objects.filter(generation_id=generation_id).exists(),
        "metadata": GenerationMetadata.objects.filter(generation_id=generation_id).exists(),
    }


# Delete ----------------------------------------------------------------------------------


def test_delete_moves_an_ended_generation_to_the_trash(owner):
    generation = GenerationFactory(owner=owner, status=GenerationStatus.COMPLETED)

    before = timezone.now()
    result = generation_delete(generation=generation)

    assert result.deleted_at is not None
    assert before <= result.deleted_at <= timezone.now()
    assert result.status == GenerationStatus.COMPLETED
    assert Generation.objects.filter(id=generation.id).exists()


def test_delete_cancels_a_pending_generation_first(owner):
    generation = _create(owner)

    result = generation_delete(generation=generation)

    assert result.deleted_at is not None
    assert result.status == GenerationStatus.CANCELLED
    assert result.cancelled_items == 2
    assert item_statuses(generation) == {ItemStatus.CANCELLED}


def test_delete_cancels_a_processing_generation_first(owner):
    generation = _create(owner)
    generation_prepare(generation_id=generation.id)
    running = Item.objects.filter(generation=generation).first()
    item_claim(item_id=running.id, claim_token="w1")
    generation.refresh_from_db()

    result = generation_delete(generation=generation)

    # Its running item settles in the trash.
    assert result.status == GenerationStatus.CANCELLING
    assert result.deleted_at is not None
    assert result.cancelled_items == 1
    running.refresh_from_db()
    assert running.status == ItemStatus.PROCESSING


def test_delete_twice_is_refused(owner):
    generation = generation_delete(generation=_create(owner))
    deleted_at = generation.deleted_at

    with pytest.raises(ActionRefused, match="already in the trash"):
        generation_delete(generation=generation)

    generation.refresh_from_db()
    assert generation.deleted_at == deleted_at


# Restore ---------------------------------------------------------------------------------


def test_restore_within_retention(owner, settings):
    settings.TRASH_RETENTION_DAYS = 30
    generation = _deleted_days_ago(generation_delete(generation=_create(owner)), 29)

    result = generation_restore(generation=generation)

    assert result.deleted_at is None
    assert Generation.objects.get(id=generation.id).deleted_at is None
    assert result.status == GenerationStatus.CANCELLED


def test_restore_right_after_delete(owner):
    generation = generation_delete(generation=_create(owner))

    assert generation_restore(generation=generation).deleted_at is None


def test_restore_past_retention_is_refused(owner, settings):
    settings.TRASH_RETENTION_DAYS = 30
    generation = _deleted_days_ago(generation_delete(generation=_create(owner)), 31)

    with pytest.raises(ActionRefused, match="retention"):
        generation_restore(generation=generation)

    assert Generation.objects.get(id=generation.id).deleted_at is not None


def test_restore_outside_the_trash_is_refused(owner):
    generation = _create(owner)

    with pytest.raises(ActionRefused, match="not in the trash"):
        generation_restore(generation=generation)


def test_trash_cutoff_follows_the_retention_setting(settings):
    settings.TRASH_RETENTION_DAYS = 7
    now = timezone.now()

    assert trash_cutoff(now) == now - timedelta(days=7)
    assert now - timedelta(days=7, seconds=5) <= trash_cutoff() <= timezone.now()


# Purge -----------------------------------------------------------------------------------


def test_purge_removes_rows_and_objects_past_retention_only(owner, settings):
    settings.TRASH_RETENTION_DAYS = 30
    expired = run_pipeline(_create(owner))
    assert len(_keys(expired)) == 4
    _deleted_days_ago(expired, 31)
    recent = _deleted_days_ago(_create(owner), 29)
    recent_keys = _with_objects(recent)
    kept = _create(owner)
    kept_keys = _with_objects(kept)

    assert generations_purge_expired() == 1

    assert _rows_exist(expired.id) == dict.fromkeys(
        ["generation", "variants", "items", "metadata"], False
    )
    assert _keys(expired) == set()
    assert _rows_exist(recent.id) == dict.fromkeys(
        ["generation", "variants", "items", "metadata"], True
    )
    assert _rows_exist(kept.id)["generation"]
    assert _keys(recent) == recent_keys
    assert _keys(kept) == kept_keys


def test_purge_deletes_what_the_rows_name_without_listing_finished_generations(owner, monkeypatch):
    generation = _deleted_days_ago(run_pipeline(_create(owner)), 400)
    listed = []
    monkeypatch.setattr(purge, "prefix_delete", listed.append)

    assert generations_purge_expired() == 1

    assert listed == []
    assert _keys(generation) == set()


def test_purge_lists_the_folder_of_a_generation_with_an_interrupted_item(owner):
    """A worker stored an item's asset, then died before recording it: no row names the
    object, so the purge lists the generation's folder to find it."""
    generation = _create(owner)
    generation_prepare(generation_id=generation.id)
    item = Item.objects.filter(generation=generation).first()
    claimed = item_claim(item_id=item.id, claim_token="w1")
    stray = f"generations/{generation.id}/{claimed.variant_label}/scene_{claimed.number}.png"
    object_save(key=stray, content=io.BytesIO(b"rendered, never recorded"))
    Item.objects.filter(id=item.id).update(status=ItemStatus.FAILED)
    _deleted_days_ago(generation, 400)

    assert generations_purge_expired() == 1

    assert _keys(generation) == set()


def test_purge_with_nothing_expired_does_nothing(owner):
    generation = generation_delete(generation=_create(owner))
    keys = _with_objects(generation)

    assert generations_purge_expired() == 0

    assert Generation.objects.filter(id=generation.id).exists()
    assert _keys(generation) == keys


def test_purge_measures_retention_from_now(owner, settings):
    settings.TRASH_RETENTION_DAYS = 30
    generation = _deleted_days_ago(_create(owner), 1)

    assert generations_purge_expired(now=timezone.now() + timedelta(days=28)) == 0
    assert generations_purge_expired(now=timezone.now() + timedelta(days=30)) == 1

    assert not Generation.objects.filter(id=generation.id).exists()


def test_children_of_a_purged_parent_keep_existing(owner):
    parent = _create(owner)
    child = generation_regenerate(generation=parent, owner=owner)
    _deleted_days_ago(parent, 400)

    assert generations_purge_expired() == 1

    child.refresh_from_db()
    assert child.parent is None
    assert _rows_exist(child.id) == dict.fromkeys(
        ["generation", "variants", "items", "metadata"], True
    )


def test_purge_runs_in_batches(owner, settings):
    settings.TRASH_RETENTION_DAYS = 30
    expired = [_deleted_days_ago(_create(owner), 40 + n) for n in range(5)]
    keys = {generation.id: _with_objects(generation) for generation in expired}

    assert generations_purge_expired(batch_size=2) == 5

    for generation in expired:
        assert not Generation.objects.filter(id=generation.id).exists()
        assert _keys(generation) == set()
        assert keys[generation.id]
    assert not Item.objects.exists()


def test_each_batch_commits_on_its_own_oldest_first(owner, settings, monkeypatch):
    """A failure in the third batch leaves the first two purged and the rest for the
    next purge, with their objects still in place."""
    settings.TRASH_RETENTION_DAYS = 30
    # n=0 is the most recently deleted, so it is purged last.
    expired = [_deleted_days_ago(_create(owner), 40 + n) for n in range(5)]
    for generation in expired:
        _with_objects(generation)
    real_prefix_delete = purge.prefix_delete
    calls = []

    def failing_prefix_delete(prefix):
        calls.append(prefix)
        if len(calls) == 5:
            raise StorageUnavailable("the bucket went away")
        return real_prefix_delete(prefix)

    monkeypatch.setattr(purge, "prefix_delete", failing_prefix_delete)

    with pytest.raises(StorageUnavailable):
        generations_purge_expired(batch_size=2)

    assert calls == [f"generations/{g.id}/" for g in reversed(expired)]
    survivor = expired[0]
    assert list(Generation.objects.values_list("id", flat=True)) == [survivor.id]
    assert len(_keys(survivor)) == 3

    monkeypatch.setattr(purge, "prefix_delete", real_prefix_delete)
    assert generations_purge_expired(batch_size=2) == 1
    assert not Generation.objects.exists()
    assert _keys(survivor) == set()
