"""Writes behind every user action on a generation: create, cancel, retry, regenerate,
delete and restore (removing for good is `generations.purge`). The API, the pages, the
admin and the commands all call these.
"""

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import IO, Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from generations.dispatch import dispatch_generation
from generations.errors import ActionRefused, ErrorCode, InputError, LimitExceeded
from generations.events import event_record
from generations.inputs import DERIVED_FIELDS, normalise_input
from generations.kinds import KindSpec, kind_spec
from generations.models import Generation, GenerationMetadata, Item, SourceType, Variant
from generations.pipeline.finalise import finalise_if_ended
from generations.pipeline.lifecycle import queued_items_end
from generations.providers import PROVIDERS, Provider, get_provider
from generations.selectors import (
    trash_cutoff,
)
from generations.states import (
    ACTIVE_GENERATION_STATUSES,
    EventType,
    GenerationStatus,
    GenerationTransition,
    ItemStatus,
    ItemTransition,
    QueueReason,
    can_cancel,
    can_retry,
    rollup_status,
)
from storage.keys import source_key
from storage.services import (
    StorageUnavailable,
    object_delete,
    object_open,
    object_save,
)

logger = logging.getLogger(__name__)

TITLE_LENGTH = 80


def generation_create(
    *,
    owner: User,
    kind: str,
    input: Mapping[str, Any],
    title: str = "",
    provider: str | None = None,
    model: str | None = None,
    source_file: IO[bytes] | None = None,
    source_filename: str = "",
    parent: Generation | None = None,
    by: User | None = None,
) -> Generation:
    """Validate, estimate, record the generation with its variants, items and metadata as
    pending, and enqueue it once the transaction commits. Raises InputError.

    An uploaded source is stored before the transaction that locks the owner's row (an
    upload may take minutes); if the generation is not recorded after all, the object is
    removed again, or left for `repair_storage` when storage cannot be reached."""
    backend = _provider(provider)
    snapshot = normalise_input(
        kind,
        dict(input),
        has_upload=source_file is not None,
        fault_injection=backend.capabilities.fault_injection,
    )
    if kind not in backend.capabilities.kinds:
        raise InputError({"kind": [f"The {backend.name} provider does not make {kind}."]})
    model_name = model or backend.default_model
    if model_name not in backend.prices:
        raise InputError({"model": [f"Unknown model; use one of {', '.join(backend.prices)}."]})
    snapshot.update(provider=backend.name, model=model_name)

    spec = kind_spec(kind)
    prompts = spec.item_prompts(snapshot)
    labels: list[str] = snapshot["variants"]
    per_variant = backend.estimate_cost(
        model=model_name, kind=kind, parameters=snapshot, prompts=prompts
    )
    prompt = str(snapshot.get(spec.text_field) or "")
    _ensure_below_active_limit(owner, lock=False)
    generation_id = uuid.uuid4()
    stored_source = ""
    if source_file is not None:
        stored_source = source_key(generation_id=generation_id, filename=source_filename)
        object_save(key=stored_source, content=source_file)
        snapshot["source_key"] = stored_source
    now = timezone.now()
    try:
        with transaction.atomic():
            _ensure_below_active_limit(owner, lock=True)
            generation = Generation.objects.create(
                id=generation_id,
                owner=owner,
                kind=kind,
                title=(title.strip() or _default_title(spec, prompt))[:200],
                prompt=prompt,
                input=snapshot,
                provider=backend.name,
                provider_model=model_name,
                source_url=snapshot.get("source_url", ""),
                source_type=_source_type(snapshot, source_file),
                total_items=len(labels) * len(prompts),
                cost_estimate=per_variant * len(labels),
                parent=parent,
            )
            variants = Variant.objects.bulk_create(
                Variant(
                    generation=generation, label=label, position=position, total_items=len(prompts)
                )
                for position, label in enumerate(labels)
            )
            Item.objects.bulk_create(
                Item(
                    generation=generation,
                    variant=variant,
                    number=number,
                    prompt=item_prompt,
                    queued_at=now,
                )
                for variant in variants
                for number, item_prompt in enumerate(prompts, start=1)
            )
            GenerationMetadata.objects.create(generation=generation)
            requester = by or owner
            event_record(
                generation.id,
                EventType.CREATED,
                by=requester,
                payload={
                    "kind": kind,
                    "total_items": generation.total_items,
                    "parent": str(parent.id) if parent else None,
                },
                now=now,
            )
            if parent is not None:
                event_record(
                    parent.id,
                    EventType.REGENERATED,
                    by=requester,
                    payload={"regeneration": str(generation.id)},
                    now=now,
                )
            _dispatch(generation.id, now)
    except BaseException:
        if stored_source:
            _remove_unrecorded_source(stored_source)
        raise
    return generation


def _dispatch(generation_id: UUID, now: datetime) -> None:
    """Send the generation to the workers once the transaction commits, and say so in its
    log."""
    event_record(generation_id, EventType.DISPATCHED, payload={"task": "run_generation"}, now=now)
    dispatch_generation(generation_id)


def _provider(name: str | None) -> Provider:
    provider_name = name or settings.GENVAULT_DEFAULT_PROVIDER
    if provider_name not in PROVIDERS:
        raise InputError({"provider": [f"Unknown provider; use one of {', '.join(PROVIDERS)}."]})
    return get_provider(provider_name)


def _remove_unrecorded_source(key: str) -> None:
    try:
        object_delete(key)
    except StorageUnavailable:
        logger.warning("Could not remove the unrecorded source %s; repair_storage will", key)


def _ensure_below_active_limit(owner: User, *, lock: bool) -> None:
    """Raise LimitExceeded when `owner` has GENVAULT_MAX_ACTIVE_GENERATIONS in flight.
    With `lock`, locks the owner's row first so that concurrent submissions are counted
    one at a time (inside the transaction that records the generation); without it, a
    cheap early refusal before anything slow is done."""
    if lock:
        list(User.objects.select_for_update().filter(pk=owner.pk).values_list("pk", flat=True))
    limit = settings.GENVAULT_MAX_ACTIVE_GENERATIONS
    active = Generation.objects.filter(
        owner=owner, status__in=ACTIVE_GENERATION_STATUSES, deleted_at__isnull=True
    )[:limit].count()
    if active >= limit:
        raise LimitExceeded(
            f"You already have {limit} generations pending or processing; wait for one to "
            "finish or cancel one, then submit again."
        )


def _default_title(spec: KindSpec, prompt: str) -> str:
    text = " ".join(prompt.split())
    if not text:
        return f"{spec.label} from source"
    return text if len(text) <= TITLE_LENGTH else text[: TITLE_LENGTH - 1].rstrip() + "…"


def _source_type(snapshot: Mapping[str, Any], source_file: IO[bytes] | None) -> str:
    if source_file is not None:
        return SourceType.UPLOAD
    return SourceType.URL if snapshot.get("source_url") else SourceType.NONE


def generation_cancel(*, generation: Generation, by: User | None = None) -> Generation:
    """Cancel a pending or processing generation: queued items are cancelled now, running
    ones stop at their next checkpoint. Raises ActionRefused once it has ended."""
    if not can_cancel(generation.status):
        raise ActionRefused(
            f"This generation is already {generation.get_status_display().lower()}; "
            "only pending or processing generations can be cancelled."
        )
    now = timezone.now()
    variant_ids = list(generation.variants.values_list("id", flat=True))
    cancel = GenerationTransition.CANCEL
    with transaction.atomic():
        event_record(generation.id, EventType.CANCEL_REQUESTED, by=by, now=now)
        cancelled = queued_items_end(
            variant_ids=variant_ids,
            transition=ItemTransition.CANCEL,
            code=ErrorCode.CANCELLED,
            message="Cancelled before it started.",
            now=now,
        )
        if not Generation.objects.filter(id=generation.id, status__in=cancel.sources).update(
            status=cancel.target,
            cancelled_items=F("cancelled_items") + cancelled,
            completed_at=now,
            updated_at=now,
            generation_time_seconds=generation.elapsed_seconds(now),
            error_code=ErrorCode.CANCELLED,
            error_message="Cancelled by its owner.",
        ):
            raise ActionRefused("This generation ended before it could be cancelled.")
        event_record(
            generation.id, EventType.CANCELLED, payload={"cancelled_items": cancelled}, now=now
        )
        finalise_if_ended(generation_id=generation.id, variant_ids=variant_ids, now=now)
    generation.refresh_from_db()
    return generation


def generation_retry(*, generation: Generation, by: User | None = None) -> int:
    """Run again every item that failed or was cancelled, keeping the completed ones.
    Returns how many items were queued; raises ActionRefused when there is nothing to do."""
    if generation.deleted_at is not None:
        raise ActionRefused("This generation is in the trash; restore it first.")
    if not can_retry(generation.status):
        raise ActionRefused(
            f"A {generation.get_status_display().lower()} generation has nothing to retry."
        )
    if generation.items.filter(status__in=ItemTransition.STOP.sources).exists():
        raise ActionRefused("Some items are still stopping; try again in a moment.")
    now = timezone.now()
    retry = GenerationTransition.RETRY
    # Running a cancelled generation's items again resumes it; otherwise it is a retry.
    resuming = generation.status == GenerationStatus.CANCELLED
    reset = {
        "status": ItemTransition.RETRY.target,
        "claim_token": "",
        "queue_reason": QueueReason.RESUME if resuming else QueueReason.USER_RETRY,
        "queued_at": now,
        "started_at": None,
        "completed_at": None,
        "updated_at": now,
        "error_code": "",
        "error_message": "",
    }
    with transaction.atomic():
        failed_total = cancelled_total = 0
        for variant in generation.variants.all():
            items = Item.objects.filter(variant_id=variant.id)
            requeued = {
                status: items.filter(status=status).update(**reset)
                for status in ItemTransition.RETRY.sources
            }
            failed, cancelled = requeued[ItemStatus.FAILED], requeued[ItemStatus.CANCELLED]
            if not failed + cancelled:
                # Every item of this variant completed, but it may have ended cancelled
                # because a cancel won; with the cancel undone, its counters decide.
                Variant.objects.filter(id=variant.id).update(
                    status=rollup_status(
                        total=variant.total_items,
                        completed=variant.completed_items,
                        failed=0,
                        cancelled=0,
                    )
                    or variant.status,
                    updated_at=now,
                )
            else:
                Variant.objects.filter(id=variant.id).update(
                    failed_items=F("failed_items") - failed,
                    cancelled_items=F("cancelled_items") - cancelled,
                    status=retry.target,
                    completed_at=None,
                    updated_at=now,
                    error_code="",
                    error_message="",
                )
            failed_total += failed
            cancelled_total += cancelled
        if not failed_total + cancelled_total:
            raise ActionRefused("Every item of this generation completed; nothing to retry.")
        if not Generation.objects.filter(id=generation.id, status=generation.status).update(
            status=retry.target,
            failed_items=F("failed_items") - failed_total,
            cancelled_items=F("cancelled_items") - cancelled_total,
            started_at=now,
            completed_at=None,
            updated_at=now,
            error_code="",
            error_message="",
        ):
            raise ActionRefused("This generation changed meanwhile; reload and try again.")
        event_record(
            generation.id,
            EventType.RETRIED,
            by=by,
            payload={"items": failed_total + cancelled_total, "resume": resuming},
            now=now,
        )
        _dispatch(generation.id, now)
    generation.refresh_from_db()
    return failed_total + cancelled_total


def generation_regenerate(
    *,
    generation: Generation,
    owner: User,
    overrides: Mapping[str, Any] | None = None,
    by: User | None = None,
) -> Generation:
    """A new generation with the same input (and seed, so the same output) unless
    `overrides` change it; its parent is `generation`."""
    changes = dict(overrides or {})
    title = str(changes.pop("title", generation.title))
    provider = str(changes.pop("provider", generation.provider))
    model = str(changes.pop("model", generation.provider_model))
    raw = {k: v for k, v in generation.input.items() if k not in DERIVED_FIELDS} | changes
    create = partial(
        generation_create,
        owner=owner,
        kind=generation.kind,
        input=raw,
        title=title,
        provider=provider,
        model=model,
        parent=generation,
        by=by,
    )
    source_key_value = generation.input.get("source_key")
    if source_key_value and "source_url" not in changes:
        with object_open(str(source_key_value)) as source:
            return create(source_file=source, source_filename=str(source_key_value))
    return create()


def generation_delete(*, generation: Generation, by: User | None = None) -> Generation:
    """Move to the trash (cancelling it first if it is still running). The purge removes
    it for good after TRASH_RETENTION_DAYS."""
    if generation.deleted_at is not None:
        raise ActionRefused("This generation is already in the trash.")
    if can_cancel(generation.status):
        generation_cancel(generation=generation, by=by)
    now = timezone.now()
    with transaction.atomic():
        if Generation.objects.filter(id=generation.id, deleted_at__isnull=True).update(
            deleted_at=now
        ):
            event_record(generation.id, EventType.DELETED, by=by, now=now)
    generation.refresh_from_db()
    return generation


def generation_restore(*, generation: Generation, by: User | None = None) -> Generation:
    """Take a generation out of the trash while its retention period lasts."""
    if generation.deleted_at is None:
        raise ActionRefused("This generation is not in the trash.")
    if generation.deleted_at < trash_cutoff():
        raise ActionRefused("This generation has passed its retention period and will be purged.")
    with transaction.atomic():
        if Generation.objects.filter(id=generation.id, deleted_at__isnull=False).update(
            deleted_at=None
        ):
            event_record(generation.id, EventType.RESTORED, by=by)
    generation.refresh_from_db()
    return generation
