"""Many workers finishing items of one generation at once, on PostgreSQL: each item is
claimed once, every counter equals the truth and the final status is decided once."""

import threading

import pytest
from django.db import connection

from generations.models import GenerationMetadata, Item, Variant
from generations.pipeline.lifecycle import item_claim, item_complete, item_fail
from generations.states import GenerationStatus
from generations.tests.pipeline.claims import REJECTED, items_in_order
from generations.tests.pipeline_helpers import (
    ITEM_COST,
    assert_counters_match_items,
    item_result,
    processing_video,
)

THREADS = 8


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_count_every_item_exactly_once(owner, evaluations, counting):
    """8 workers race over every item of one generation: each item is claimed once,
    every counter equals the truth and the final status is decided once."""
    labels = [f"v{n}" for n in range(8)]
    generation = processing_video(owner, variants=labels, scenes_per_variant=12)
    items = items_in_order(generation)
    assert len(items) == 96
    # Item 5 of every variant fails; the rest complete.
    failing = {item.id for item in items if item.number == 5}
    barrier = threading.Barrier(THREADS)
    claimed_by: dict[int, list] = {n: [] for n in range(THREADS)}
    errors = []

    def worker(n):
        try:
            barrier.wait(timeout=10)
            # Each worker walks every item, starting at a different place.
            order = items[n * 12 :] + items[: n * 12]
            for item in order:
                token = f"worker-{n}-{item.id}"
                claimed = item_claim(item_id=item.id, claim_token=token)
                if claimed is None:
                    continue
                claimed_by[n].append(item.id)
                if item.id in failing:
                    item_fail(item=claimed, claim_token=token, error=REJECTED)
                else:
                    assert item_complete(
                        item=claimed, claim_token=token, result=item_result(claimed)
                    )
        except Exception as exc:  # noqa: BLE001 (reported to the main thread)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    all_claims = [item_id for claims in claimed_by.values() for item_id in claims]
    assert sorted(all_claims) == sorted(item.id for item in items)
    assert sum(1 for claims in claimed_by.values() if claims) > 1

    generation.refresh_from_db()
    assert generation.completed_items == 88
    assert generation.failed_items == 8
    assert generation.cancelled_items == 0
    assert generation.actual_cost == ITEM_COST * 88
    assert generation.status == GenerationStatus.PARTIAL_SUCCESS
    assert generation.completed_at is not None
    assert evaluations == [generation.id]
    for variant in Variant.objects.filter(generation=generation):
        assert (variant.completed_items, variant.failed_items) == (11, 1)
        assert variant.status == GenerationStatus.PARTIAL_SUCCESS
    assert Item.objects.filter(generation=generation, attempts=1).count() == 96
    assert_counters_match_items(generation)
    evaluation = GenerationMetadata.objects.get(generation=generation).evaluation
    assert evaluation["success_rate"] == round(88 / 96, 4)
