"""Preparing a generation: starting it and running the stages before rendering, or failing
every item when its input cannot be rendered at all."""

import tempfile
from pathlib import Path
from uuid import UUID

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generations.errors import GenerationError
from generations.events import event_record
from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.pipeline import stages
from generations.pipeline.finalise import finalise_if_ended
from generations.pipeline.lifecycle import queued_items_end
from generations.states import (
    EventType,
    GenerationStatus,
    GenerationTransition,
    ItemTransition,
)


def generation_prepare(*, generation_id: UUID) -> list[UUID]:
    """Start a pending generation and run the stages before rendering (analysis,
    transformation, prompts), saving each to the metadata as it ends. Returns the queued
    items to render. Safe to repeat: stages are deterministic and skipped once done.

    A permanent stage error fails the generation; a transient one is raised for a retry.
    """
    now = timezone.now()
    start = GenerationTransition.START
    with transaction.atomic():
        if Generation.objects.filter(id=generation_id, status__in=start.sources).update(
            status=start.target, started_at=now, updated_at=now
        ):
            event_record(generation_id, EventType.STARTED, now=now)
    generation = Generation.objects.select_related("metadata").get(id=generation_id)
    if generation.status != GenerationStatus.PROCESSING:
        return []
    prompts = None
    if not generation.metadata.prompts:
        try:
            prompts = _run_stages(generation)
        except GenerationError as exc:
            if exc.retryable:
                raise
            generation_fail_unrendered(generation_id=generation_id, error=exc)
            return []
    with transaction.atomic():
        if prompts is not None:
            _save_prompts(generation, prompts)
        # With the prompts, in one transaction: an item that can be rendered always
        # belongs to a started variant, the only kind its ending may complete.
        Variant.objects.filter(generation_id=generation_id, status__in=start.sources).update(
            status=start.target, started_at=now, updated_at=now
        )
    return list(
        Item.objects.filter(
            generation_id=generation_id, status__in=ItemTransition.CLAIM.sources
        ).values_list("id", flat=True)
    )


def _run_stages(generation: Generation) -> dict[str, list[str]]:
    """Analysis and transformation, each saved as it ends; returns the prompts."""
    metadata = GenerationMetadata.objects.filter(generation_id=generation.id)
    with tempfile.TemporaryDirectory(prefix="genvault-analysis-") as workdir:
        analysis = stages.analysis_of(generation, Path(workdir))
    metadata.update(analysis=analysis, updated_at=timezone.now())
    transformation = stages.transformation_of(generation)
    metadata.update(transformation=transformation, updated_at=timezone.now())
    return stages.prompts_of(generation, analysis, transformation)


def _save_prompts(generation: Generation, prompts: dict[str, list[str]]) -> None:
    items = list(Item.objects.filter(generation=generation).select_related("variant"))
    for item in items:
        item.prompt = prompts[item.variant.label][item.number - 1]
    Item.objects.bulk_update(items, ["prompt"])
    GenerationMetadata.objects.filter(generation_id=generation.id).update(
        prompts=prompts, updated_at=timezone.now()
    )


def generation_fail_unrendered(*, generation_id: UUID, error: GenerationError) -> None:
    """Fail every queued item of a generation that cannot be rendered at all (its input
    was refused, or its stages kept failing)."""
    now = timezone.now()
    with transaction.atomic():
        variant_ids = list(
            Variant.objects.filter(generation_id=generation_id).values_list("id", flat=True)
        )
        failed = queued_items_end(
            variant_ids=variant_ids,
            transition=ItemTransition.REFUSE,
            code=error.code,
            message=error.message,
            now=now,
        )
        Generation.objects.filter(id=generation_id).update(
            failed_items=F("failed_items") + failed, updated_at=now
        )
        finalise_if_ended(generation_id=generation_id, variant_ids=variant_ids, now=now)
