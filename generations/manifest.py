"""What a "download everything" archive holds: every completed item's media and
thumbnail, and a manifest.json that describes the generation well enough to understand
and replay it."""

import functools
import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone
from django.utils.text import slugify

from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.states import ItemStatus
from storage.archive import ArchiveEntry
from storage.services import object_open

MANIFEST_NAME = "manifest.json"
FILENAME_TITLE_LENGTH = 40
_METADATA_FIELDS = ("analysis", "transformation", "prompts", "evaluation")


def generation_manifest(generation: Generation) -> dict[str, Any]:
    """The generation, its parameters, lineage, variants with their items and stage
    metadata, as JSON-ready values (ids, times and amounts as strings). An item's `file`
    and `thumbnail` are its paths in the archive, or None unless it completed; lineage
    lists the owner's regenerations that are not in the trash. Four queries, however
    many items."""
    return _manifest(generation, _variants_with_items(generation), exported_at=timezone.now())


def generation_archive_entries(generation: Generation) -> list[ArchiveEntry]:
    """Every completed item's media and thumbnail as `{label}/{file name}`, each opened
    from storage only when the archive reaches it, then `manifest.json`, whose paths name
    exactly these entries."""
    exported_at = timezone.now()
    variants = _variants_with_items(generation)
    entries = [
        ArchiveEntry(
            name=path, open=functools.partial(object_open, key), modified=item.completed_at
        )
        for variant in variants
        for item in variant.items.all()
        for key in (item.asset_key, item.thumbnail_key)
        if (path := _archive_path(variant, item, key))
    ]
    manifest = _manifest(generation, variants, exported_at=exported_at)
    entries.append(
        ArchiveEntry(
            name=MANIFEST_NAME,
            data=json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode(),
            compress=True,
            modified=exported_at,
        )
    )
    return entries


def archive_filename(generation: Generation) -> str:
    """`genvault-{title slug}-{id prefix}.zip`: ASCII letters, digits and hyphens only,
    so it is safe in a Content-Disposition header and on any file system."""
    title = slugify(generation.title)[:FILENAME_TITLE_LENGTH].strip("-")
    stem = "-".join(part for part in ("genvault", title, str(generation.id)[:8]) if part)
    return f"{stem}.zip"


def _variants_with_items(generation: Generation) -> list[Variant]:
    return list(
        generation.variants.order_by("position").prefetch_related(
            Prefetch("items", queryset=Item.objects.order_by("number"))
        )
    )


def _archive_path(variant: Variant, item: Item, key: str) -> str | None:
    """Where a stored object of an item goes in the archive; None when the item did not
    complete or has no such object."""
    if item.status != ItemStatus.COMPLETED or not key:
        return None
    return f"{variant.label}/{PurePosixPath(key).name}"


def _manifest(
    generation: Generation, variants: Sequence[Variant], *, exported_at: datetime
) -> dict[str, Any]:
    metadata = (
        GenerationMetadata.objects.filter(generation_id=generation.id)
        .values(*_METADATA_FIELDS)
        .first()
    ) or {field: {} for field in _METADATA_FIELDS}
    regenerations = Generation.objects.filter(
        parent_id=generation.id, owner_id=generation.owner_id, deleted_at__isnull=True
    ).order_by("created_at", "id")
    return {
        "generation": {
            "id": str(generation.id),
            "kind": generation.kind,
            "title": generation.title,
            "prompt": generation.prompt,
            "status": generation.status,
            "provider": generation.provider,
            "provider_model": generation.provider_model,
            "created_at": _iso(generation.created_at),
            "started_at": _iso(generation.started_at),
            "completed_at": _iso(generation.completed_at),
            "generation_time_seconds": generation.generation_time_seconds,
            "cost_estimate": str(generation.cost_estimate),
            "actual_cost": str(generation.actual_cost),
            "error_code": generation.error_code,
            "error_message": generation.error_message,
            "source_url": generation.source_url,
            "source_type": generation.source_type,
        },
        "parameters": generation.input,
        "lineage": {
            "parent": str(generation.parent_id) if generation.parent_id else None,
            "regenerations": [str(pk) for pk in regenerations.values_list("id", flat=True)],
        },
        "variants": [_variant(variant) for variant in variants],
        "metadata": metadata,
        "exported_at": exported_at.isoformat(),
    }


def _variant(variant: Variant) -> dict[str, Any]:
    return {
        "label": variant.label,
        "status": variant.status,
        "total_items": variant.total_items,
        "completed_items": variant.completed_items,
        "failed_items": variant.failed_items,
        "cancelled_items": variant.cancelled_items,
        "items": [_item(variant, item) for item in variant.items.all()],
    }


def _item(variant: Variant, item: Item) -> dict[str, Any]:
    return {
        "number": item.number,
        "status": item.status,
        "prompt": item.prompt,
        "file": _archive_path(variant, item, item.asset_key),
        "thumbnail": _archive_path(variant, item, item.thumbnail_key),
        "duration_seconds": item.duration_seconds,
        "width": item.width,
        "height": item.height,
        "file_size": item.file_size,
        "content_type": item.content_type,
        "checksum": item.checksum,
        "cost": str(item.cost),
        "attempts": item.attempts,
        "error_code": item.error_code,
        "error_message": item.error_message,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
