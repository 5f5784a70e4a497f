"""Worker-side services: preparing a generation (the stages before rendering), rendering
one item, and recovering work whose worker or message was lost. Tasks call these."""

import logging
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generations import stages
from generations.dispatch import dispatch_generation, dispatch_items
from generations.errors import Cancelled, ErrorCode, GenerationError
from generations.kinds import kind_spec
from generations.media.probe import MediaError, probe
from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.progress import (
    ClaimedItem,
    ItemResult,
    finalise_if_ended,
    item_claim,
    item_complete,
    item_fail,
    item_recover_lost,
    item_stop_cancelled,
)
from generations.providers import ItemRequest, ProducedItem, get_provider
from generations.states import (
    ACTIVE_GENERATION_STATUSES,
    GenerationStatus,
    ItemStatus,
    VariantStatus,
)
from storage.keys import asset_key, preview_key
from storage.services import StorageUnavailable, object_save

logger = logging.getLogger(__name__)

CANCEL_CHECK_INTERVAL_SECONDS = 0.5
RECOVERY_BATCH_SIZE = 500


def generation_prepare(*, generation_id: UUID) -> list[UUID]:
    """Start a pending generation and run the stages before rendering (analysis,
    transformation, prompts), saving each to the metadata as it ends. Returns the queued
    items to render. Safe to repeat: stages are deterministic and skipped once done.

    A permanent stage error fails the generation; a transient one is raised for a retry.
    """
    now = timezone.now()
    Generation.objects.filter(id=generation_id, status=GenerationStatus.PENDING).update(
        status=GenerationStatus.PROCESSING, started_at=now, updated_at=now
    )
    generation = Generation.objects.select_related("metadata").get(id=generation_id)
    if generation.status != GenerationStatus.PROCESSING:
        return []
    if not generation.metadata.prompts:
        try:
            _run_stages(generation)
        except GenerationError as exc:
            if exc.retryable:
                raise
            generation_fail_unrendered(generation_id=generation_id, error=exc)
            return []
    Variant.objects.filter(generation_id=generation_id, status=VariantStatus.PENDING).update(
        status=VariantStatus.PROCESSING, started_at=now, updated_at=now
    )
    return list(
        Item.objects.filter(generation_id=generation_id, status=ItemStatus.QUEUED).values_list(
            "id", flat=True
        )
    )


def _run_stages(generation: Generation) -> None:
    metadata = GenerationMetadata.objects.filter(generation_id=generation.id)
    with tempfile.TemporaryDirectory(prefix="genvault-analysis-") as workdir:
        analysis = stages.analysis_of(generation, Path(workdir))
    metadata.update(analysis=analysis, updated_at=timezone.now())
    transformation = stages.transformation_of(generation)
    metadata.update(transformation=transformation, updated_at=timezone.now())
    prompts = stages.prompts_of(generation, analysis, transformation)
    items = list(Item.objects.filter(generation=generation).select_related("variant"))
    for item in items:
        item.prompt = prompts[item.variant.label][item.number - 1]
    with transaction.atomic():
        Item.objects.bulk_update(items, ["prompt"])
        metadata.update(prompts=prompts, updated_at=timezone.now())


def generation_fail_unrendered(*, generation_id: UUID, error: GenerationError) -> None:
    """Fail every queued item of a generation that cannot be rendered at all (its input
    was refused, or its stages kept failing)."""
    now = timezone.now()
    with transaction.atomic():
        variant_ids = list(
            Variant.objects.filter(generation_id=generation_id).values_list("id", flat=True)
        )
        failed_total = 0
        for variant_id in variant_ids:
            failed = Item.objects.filter(variant_id=variant_id, status=ItemStatus.QUEUED).update(
                status=ItemStatus.FAILED,
                completed_at=now,
                updated_at=now,
                error_code=error.code,
                error_message=error.message,
            )
            if failed:
                Variant.objects.filter(id=variant_id).update(
                    failed_items=F("failed_items") + failed, updated_at=now
                )
            failed_total += failed
        Generation.objects.filter(id=generation_id).update(
            failed_items=F("failed_items") + failed_total, updated_at=now
        )
        finalise_if_ended(generation_id=generation_id, variant_ids=variant_ids, now=now)


def item_render(*, item_id: UUID, claim_token: str) -> None:
    """Produce, store and record one item. The asset and thumbnail are stored at their
    stable keys before the row that points to them is committed."""
    item = item_claim(item_id=item_id, claim_token=claim_token)
    if item is None:
        return
    if item.generation_status == GenerationStatus.CANCELLED:
        # Claimed in the moment between a cancel and its generation's status change.
        item_stop_cancelled(item=item, claim_token=claim_token)
        return
    try:
        result = item_produce_and_store(item, checkpoint=_cancel_checkpoint(item.generation_id))
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


def _cancel_checkpoint(generation_id: UUID) -> Callable[[], None]:
    """A checkpoint that raises Cancelled once the generation is cancelled, asking the
    database at most every CANCEL_CHECK_INTERVAL_SECONDS. The first interval needs no
    question: the claim has just read the generation's status."""
    next_check = time.monotonic() + CANCEL_CHECK_INTERVAL_SECONDS

    def checkpoint() -> None:
        nonlocal next_check
        if time.monotonic() < next_check:
            return
        next_check = time.monotonic() + CANCEL_CHECK_INTERVAL_SECONDS
        if Generation.objects.filter(id=generation_id, status=GenerationStatus.CANCELLED).exists():
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
        content_type=info.content_type,
        file_size=info.file_size,
        checksum=info.checksum,
        duration_seconds=info.duration_seconds,
        width=info.width,
        height=info.height,
        cost=produced.cost,
        provider_job_id=produced.provider_job_id,
        provider_status=produced.provider_status,
    )


def recover_stuck_work() -> dict[str, int]:
    """Requeue or fail items whose worker was lost, and re-enqueue work whose message was
    lost (generations still pending, stages never finished, queued items never taken)."""
    now = timezone.now()
    lease_start = now - timedelta(seconds=settings.ITEM_LEASE_SECONDS)
    requeued, lost = [], 0
    stale = Item.objects.filter(
        status=ItemStatus.PROCESSING, started_at__lt=lease_start
    ).values_list("id", flat=True)[:RECOVERY_BATCH_SIZE]
    for item_id in stale:
        if item_recover_lost(item_id=item_id, started_before=lease_start):
            requeued.append(item_id)
        else:
            lost += 1
    dispatch_items(requeued)

    pending = list(
        Generation.objects.filter(
            status=GenerationStatus.PENDING,
            created_at__lt=now - timedelta(seconds=settings.PENDING_REDISPATCH_SECONDS),
        ).values_list("id", flat=True)[:RECOVERY_BATCH_SIZE]
    )
    unprepared = list(
        Generation.objects.filter(
            status=GenerationStatus.PROCESSING, updated_at__lt=lease_start, metadata__prompts={}
        ).values_list("id", flat=True)[:RECOVERY_BATCH_SIZE]
    )
    for generation_id in pending + unprepared:
        dispatch_generation(generation_id)

    forgotten = list(
        Item.objects.filter(
            status=ItemStatus.QUEUED,
            queued_at__lt=lease_start,
            generation__status=GenerationStatus.PROCESSING,
        )
        # Items of a generation whose stages never finished have no prompt yet; the
        # generation's own redispatch above renders them once the stages are done.
        .exclude(generation__metadata__prompts={})
        .values_list("id", flat=True)[:RECOVERY_BATCH_SIZE]
    )
    dispatch_items(forgotten)

    unfinalised = _unfinalised_generations(now, lease_start)
    for generation_id in unfinalised:
        finalise_if_ended(generation_id=generation_id, now=now)
    return {
        "requeued_items": len(requeued),
        "lost_items": lost,
        "redispatched_generations": len(pending) + len(unprepared),
        "redispatched_items": len(forgotten),
        "finalised_generations": len(unfinalised),
    }


def _unfinalised_generations(now: datetime, lease_start: datetime) -> list[UUID]:
    """Generations whose last item ended but whose worker died before deciding the final
    status: still processing with every item ended, or cancelled (recently: older ones
    were swept before) with a variant still active."""
    ended = Generation.objects.filter(
        status=GenerationStatus.PROCESSING,
        updated_at__lt=lease_start,
        total_items__lte=F("completed_items") + F("failed_items") + F("cancelled_items"),
    )
    cancelled = Generation.objects.filter(
        status=GenerationStatus.CANCELLED,
        updated_at__lt=lease_start,
        updated_at__gte=lease_start - timedelta(days=1),
        variants__status__in=ACTIVE_GENERATION_STATUSES,
    )
    ids = list(ended.values_list("id", flat=True)[:RECOVERY_BATCH_SIZE])
    ids += cancelled.values_list("id", flat=True).distinct()[:RECOVERY_BATCH_SIZE]
    return ids
