"""Claiming and ending items as a worker would, for the tests of the item lifecycle and of
finalisation."""

from generations.errors import ErrorCode, GenerationError
from generations.models import Generation, Item
from generations.pipeline.lifecycle import item_claim, item_complete, item_fail
from generations.tests.pipeline_helpers import item_result

REJECTED = GenerationError(ErrorCode.PROVIDER_REJECTED, "The provider refused it.")
TIMEOUT = GenerationError(ErrorCode.PROVIDER_TIMEOUT, "The provider did not answer.")


def items_in_order(generation: Generation) -> list[Item]:
    """The generation's items with their variants, in variant and number order."""
    return list(
        Item.objects.filter(generation=generation)
        .select_related("variant")
        .order_by("variant__position", "number")
    )


def complete(item: Item, delivery: str = "w1") -> Item:
    """Claim and complete `item`; returns it reloaded."""
    claimed = item_claim(item_id=item.id, claim_token=delivery)
    assert claimed is not None
    assert item_complete(item=claimed, claim_token=delivery, result=item_result(claimed))
    return Item.objects.select_related("variant").get(id=claimed.id)


def fail(item: Item, delivery: str = "w1", error: GenerationError = REJECTED) -> float | None:
    """Claim `item` and record `error`; returns what `item_fail` returned."""
    claimed = item_claim(item_id=item.id, claim_token=delivery)
    assert claimed is not None
    return item_fail(item=claimed, claim_token=delivery, error=error)
