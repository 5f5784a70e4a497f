"""Helpers shared by the tests that drive generations through the real services and the
pipeline in-process: small inputs, creating and running generations, fake item results
and the counter checks."""

import io
from decimal import Decimal
from typing import Any
from uuid import uuid4

from django.contrib.auth.models import User

from generations.media.probe import MediaInfo
from generations.models import Generation, Item, Variant
from generations.pipeline.lifecycle import ClaimedItem, ItemResult
from generations.pipeline.prepare import generation_prepare
from generations.pipeline.render import item_render
from generations.services import generation_create
from generations.states import ItemStatus

SMALL_VIDEO_DEFAULT_VARIANTS: dict[str, Any] = {
    "prompt": "A bright kitchen, a family cooking pasta together",
    "scene_seconds": 1,
    "width": 160,
    "height": 90,
    "fps": 12,
}
"""A video ad input that renders in a moment, leaving variants and item count to the
defaults (four variants of four items)."""

SMALL_VIDEO: dict[str, Any] = {
    **SMALL_VIDEO_DEFAULT_VARIANTS,
    "variants": ["soft", "bold"],
    "scenes_per_variant": 2,
}
"""The small video ad with two variants of two items: four items."""

SMALL_IMAGES: dict[str, Any] = {
    "prompt": "A red kite over the dunes",
    "variants": ["a", "b"],
    "width": 64,
    "height": 64,
}
"""An image input that renders in a moment: two variants of one 64x64 image."""

ITEM_COST = Decimal("0.0100")
"""The cost `item_result` reports for one item."""


def create_video(owner: User, *, title: str = "", **overrides: Any) -> Generation:
    """A pending video ad created by the real service from `SMALL_VIDEO` and `overrides`."""
    return generation_create(
        owner=owner, kind="video_ad", input={**SMALL_VIDEO, **overrides}, title=title
    )


def make_images(owner: User, *, run: bool = True, **overrides: Any) -> Generation:
    """An image generation created by the real service from `SMALL_IMAGES` and `overrides`,
    run in-process unless `run` is false (it then stays pending)."""
    generation = generation_create(owner=owner, kind="image", input={**SMALL_IMAGES, **overrides})
    return run_pipeline(generation) if run else generation


def create_uploaded_video(
    owner: User, content: bytes, filename: str = "source.mp4", **overrides: Any
) -> Generation:
    """A pending video ad made from an uploaded source file `content` instead of a prompt."""
    return generation_create(
        owner=owner,
        kind="video_ad",
        input={**SMALL_VIDEO, "prompt": "", **overrides},
        source_file=io.BytesIO(content),
        source_filename=filename,
    )


def prepare(generation: Generation) -> Generation:
    """Run the generation's stages as its first delivery would, and reload it."""
    generation_prepare(generation_id=generation.id)
    generation.refresh_from_db()
    return generation


def processing_video(owner: User, **overrides: Any) -> Generation:
    """A video ad (see `create_video`) whose stages have run, with every item queued."""
    return prepare(create_video(owner, **overrides))


def run_pipeline(generation: Generation) -> Generation:
    """What the worker does for one delivery of the generation and of each item it
    queues; the generation is reloaded."""
    for item_id in generation_prepare(generation_id=generation.id):
        item_render(item_id=item_id, claim_token=str(uuid4()))
    generation.refresh_from_db()
    return generation


def item_of(generation: Generation, label: str, number: int) -> Item:
    """Item `number` of the variant `label`, with its variant loaded."""
    return Item.objects.select_related("variant").get(
        generation=generation, variant__label=label, number=number
    )


def provider_result(*, asset_key: str, thumbnail_key: str, **fields: Any) -> ItemResult:
    """What a provider would report for a one-second 160x90 video stored at `asset_key`,
    without rendering anything; `fields` replace any of the other values."""
    media = MediaInfo(
        content_type="video/mp4",
        file_size=1000,
        checksum="a" * 64,
        duration_seconds=1.0,
        width=160,
        height=90,
        frame_rate=24.0,
        video_codec="h264",
        audio_codec="aac",
    )
    reported: dict[str, Any] = {
        "media": media,
        "cost": ITEM_COST,
        "provider_job_id": "job",
        "provider_status": "succeeded",
    }
    return ItemResult(asset_key=asset_key, thumbnail_key=thumbnail_key, **{**reported, **fields})


def item_result(item: Item | ClaimedItem) -> ItemResult:
    """What a provider would report for `item`, stored at its usual keys, without
    rendering anything."""
    label = item.variant_label if isinstance(item, ClaimedItem) else item.variant.label
    prefix = f"generations/{item.generation_id}/{label}/"
    return provider_result(
        asset_key=f"{prefix}scene_{item.number}.mp4",
        thumbnail_key=f"{prefix}scene_{item.number}_thumb.jpg",
        provider_job_id=f"job-{item.number}",
    )


def variant_statuses(generation: Generation) -> set[str]:
    """The distinct statuses of the generation's variants."""
    return set(Variant.objects.filter(generation=generation).values_list("status", flat=True))


def variant_status_by_label(generation: Generation) -> dict[str, str]:
    """Each variant's status, by its label."""
    return dict(Variant.objects.filter(generation=generation).values_list("label", "status"))


def item_statuses(generation: Generation) -> set[str]:
    """The distinct statuses of the generation's items."""
    return set(Item.objects.filter(generation=generation).values_list("status", flat=True))


def assert_counters_match_items(generation: Generation) -> None:
    """The generation's and each variant's counters, and the generation's cost, equal what
    its item rows say. Reloads `generation`."""
    generation.refresh_from_db()
    items = Item.objects.filter(generation=generation)
    assert generation.completed_items == items.filter(status=ItemStatus.COMPLETED).count()
    assert generation.failed_items == items.filter(status=ItemStatus.FAILED).count()
    assert generation.cancelled_items == items.filter(status=ItemStatus.CANCELLED).count()
    assert generation.actual_cost == sum(
        (item.cost for item in items.filter(status=ItemStatus.COMPLETED)), Decimal(0)
    )
    for variant in Variant.objects.filter(generation=generation):
        mine = items.filter(variant=variant)
        assert variant.completed_items == mine.filter(status=ItemStatus.COMPLETED).count()
        assert variant.failed_items == mine.filter(status=ItemStatus.FAILED).count()
        assert variant.cancelled_items == mine.filter(status=ItemStatus.CANCELLED).count()
