"""Creating generations: from a request, and as a regeneration of another one."""

import logging
import uuid
from collections.abc import Mapping
from functools import partial
from typing import IO, Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from generations.dispatch import dispatch_generation
from generations.errors import (
    InputError,
    LimitExceeded,
)
from generations.events import event_record
from generations.inputs import DERIVED_FIELDS, normalise_input
from generations.kinds import KindSpec, kind_spec
from generations.models import Generation, GenerationMetadata, Item, SourceType, Variant
from generations.providers import PROVIDERS, Provider, get_provider
from generations.states import (
    LIVE_GENERATION_STATUSES,
    EventType,
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
            dispatch_generation(generation.id, now=now)
    except BaseException:
        if stored_source:
            _remove_unrecorded_source(stored_source)
        raise
    return generation


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
        owner=owner, status__in=LIVE_GENERATION_STATUSES, deleted_at__isnull=True
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
