"""Rendering one item: the provider produces it, the asset and its thumbnail are stored at
their stable keys, and only then is the row that points to them recorded."""

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from generations.dispatch import dispatch_items
from generations.errors import Cancelled, ErrorCode, GenerationError
from generations.kinds import kind_spec
from generations.media.probe import MediaError, probe
from generations.models import Generation
from generations.pipeline.lifecycle import (
    ClaimedItem,
    ItemResult,
    item_claim,
    item_complete,
    item_fail,
    item_heartbeat,
    item_stop_cancelled,
)
from generations.providers import ItemRequest, ProducedItem, get_provider
from generations.states import CANCEL_REQUESTED_STATUSES
from storage.keys import asset_key, preview_key
from storage.services import StorageUnavailable, object_save

logger = logging.getLogger(__name__)

CANCEL_CHECK_INTERVAL_SECONDS = 0.5


def item_render(*, item_id: UUID, claim_token: str) -> None:
    """Produce, store and record one item. The asset and thumbnail are stored at their
    stable keys before the row that points to them is committed."""
    item = item_claim(item_id=item_id, claim_token=claim_token)
    if item is None:
        return
    if item.generation_status in CANCEL_REQUESTED_STATUSES:
        # Claimed in the moment between a cancel and its generation's status change.
        item_stop_cancelled(item=item, claim_token=claim_token)
        return
    try:
        result = item_produce_and_store(item, checkpoint=_checkpoint(item, claim_token))
    except TakenAway:
        logger.info("Item %s was taken away while rendering; it is left as it is", item_id)
        return
    except Cancelled:
        item_stop_cancelled(item=item, claim_token=claim_token)
        return
    except GenerationError as exc:
        _record_failure(item, claim_token, exc)
        return
    except SoftTimeLimitExceeded:
        _record_failure(
            item,
            claim_token,
            GenerationError(ErrorCode.PROVIDER_TIMEOUT, "The item took longer than allowed."),
        )
        return
    except Exception as exc:
        logger.exception("Item %s failed unexpectedly", item_id)
        _record_failure(
            item,
            claim_token,
            GenerationError(ErrorCode.INTERNAL, f"Unexpected error: {type(exc).__name__}."),
        )
        return
    if not item_complete(item=item, claim_token=claim_token, result=result):
        logger.info("Item %s was taken over while rendering; its result is not counted", item_id)


def item_produce_and_store(item: ClaimedItem, *, checkpoint: Callable[[], None]) -> ItemResult:
    """Have the provider produce the item in a temporary folder, then store the asset and
    its thumbnail at their stable keys. Writes no row."""
    with tempfile.TemporaryDirectory(prefix="genvault-item-") as workdir:
        request = ItemRequest(
            kind=item.kind,
            model=item.provider_model,
            variant_label=item.variant_label,
            number=item.number,
            prompt=item.prompt,
            attempt=item.attempts,
            parameters=item.parameters,
            workdir=Path(workdir),
            checkpoint=checkpoint,
        )
        produced = get_provider(item.provider).produce(request)
        return _store(item, produced, Path(workdir))


def _record_failure(item: ClaimedItem, claim_token: str, error: GenerationError) -> None:
    delay = item_fail(item=item, claim_token=claim_token, error=error)
    if delay is not None:
        dispatch_items([item.id], countdown=delay)


class TakenAway(Exception):
    """The item is no longer this delivery's: recovery took it back from a worker it
    believed dead, or a cancel ended it."""


def _checkpoint(item: ClaimedItem, claim_token: str) -> Callable[[], None]:
    """The provider's checkpoint: raises Cancelled once the generation's cancel was asked
    for (asking at most every CANCEL_CHECK_INTERVAL_SECONDS), renews the item's lease
    every ITEM_HEARTBEAT_SECONDS, and raises TakenAway if the item was taken back
    meanwhile. The first interval needs no question: the claim has just read the
    generation's status."""
    started = time.monotonic()
    next_check = started + CANCEL_CHECK_INTERVAL_SECONDS
    next_beat = started + settings.ITEM_HEARTBEAT_SECONDS

    def checkpoint() -> None:
        nonlocal next_check, next_beat
        now = time.monotonic()
        if now < next_check:
            return
        next_check = now + CANCEL_CHECK_INTERVAL_SECONDS
        if now >= next_beat:
            next_beat = now + settings.ITEM_HEARTBEAT_SECONDS
            status = item_heartbeat(item_id=item.id, claim_token=claim_token)
            if status is None:
                raise TakenAway()
        else:
            status = (
                Generation.objects.filter(id=item.generation_id)
                .values_list("status", flat=True)
                .first()
            )
        if status in CANCEL_REQUESTED_STATUSES:
            raise Cancelled()

    return checkpoint


def _store(item: ClaimedItem, produced: ProducedItem, workdir: Path) -> ItemResult:
    spec = kind_spec(item.kind)
    key = asset_key(
        generation_id=item.generation_id,
        variant_label=item.variant_label,
        number=item.number,
        stem=spec.key_stem,
        extension=produced.extension,
    )
    thumb_key = preview_key(
        generation_id=item.generation_id,
        variant_label=item.variant_label,
        number=item.number,
        stem=spec.key_stem,
        suffix=spec.preview_suffix,
    )
    thumb_path = workdir / Path(thumb_key).name
    try:
        info = probe(produced.path)
        spec.draw_preview(produced.path, thumb_path)
    except MediaError as exc:
        raise GenerationError(
            ErrorCode.PROVIDER_ERROR, f"The provider returned unreadable media: {exc}"
        ) from exc
    try:
        object_save(key=key, content=produced.path)
        object_save(key=thumb_key, content=thumb_path)
    except StorageUnavailable as exc:
        raise GenerationError(ErrorCode.STORAGE_UNAVAILABLE, str(exc)) from exc
    return ItemResult(
        asset_key=key,
        thumbnail_key=thumb_key,
        media=info,
        cost=produced.cost,
        provider_job_id=produced.provider_job_id,
        provider_status=produced.provider_status,
    )
