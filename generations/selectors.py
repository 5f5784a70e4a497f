"""Reads: querysets with their scoping and joins done once. Callers never filter by owner
themselves, so none can forget to."""

from collections.abc import Iterable
from uuid import UUID

from django.contrib.auth.models import User
from django.db.models import Exists, OuterRef, Q, QuerySet

from generations.models import Generation, Scene
from generations.states import ACTIVE_GENERATION_STATUSES, SceneStatus


def generations_visible_to(user: User, *, include_deleted: bool = False) -> QuerySet[Generation]:
    """The generations `user` may see: their own (staff see everyone's in the admin only)."""
    generations = Generation.objects.filter(owner=user)
    if not include_deleted:
        generations = generations.filter(deleted_at__isnull=True)
    return generations


def generation_get(
    *, user: User, generation_id: UUID | str, include_deleted: bool = False
) -> Generation:
    """One of `user`'s generations; raises Generation.DoesNotExist for anyone else's."""
    return generations_visible_to(user, include_deleted=include_deleted).get(id=generation_id)


def generation_progress(generation_id: UUID) -> Generation:
    """The fields a progress display needs, nothing more."""
    return Generation.objects.only(
        "status",
        "total_items",
        "completed_items",
        "failed_items",
        "cancelled_items",
        "started_at",
        "updated_at",
    ).get(id=generation_id)


def generations_busy_in_storage(generation_ids: Iterable[UUID]) -> set[UUID]:
    """Of these generations, those that may still be writing objects: active ones, and
    ended ones with a scene still finishing (a cancel reaches it at its next checkpoint)."""
    running_scene = Scene.objects.filter(
        generation_id=OuterRef("id"), status=SceneStatus.PROCESSING
    )
    return set(
        Generation.objects.filter(id__in=list(generation_ids))
        .filter(Q(status__in=ACTIVE_GENERATION_STATUSES) | Exists(running_scene))
        .values_list("id", flat=True)
    )


def referenced_storage_keys(generation_ids: Iterable[UUID]) -> dict[UUID, set[str]]:
    """Every storage key the rows of these generations point to, by generation; a
    generation without rows is absent."""
    ids = list(generation_ids)
    keys: dict[UUID, set[str]] = {}
    for generation_id, snapshot, analysis in Generation.objects.filter(id__in=ids).values_list(
        "id", "input", "metadata__analysis"
    ):
        found = keys.setdefault(generation_id, set())
        if snapshot.get("source_key"):
            found.add(snapshot["source_key"])
        source = (analysis or {}).get("source", {})
        found.update(source.get("keyframes", []))
        if source.get("stored_key"):
            found.add(source["stored_key"])
    for generation_id, asset, thumbnail in Scene.objects.filter(generation_id__in=ids).values_list(
        "generation_id", "asset_key", "thumbnail_key"
    ):
        keys[generation_id].update(key for key in (asset, thumbnail) if key)
    return keys


def completed_scene_keys(generation_ids: Iterable[UUID]) -> list[tuple[UUID, str]]:
    """(scene id, key) of every object a completed scene of these generations points to."""
    pairs: list[tuple[UUID, str]] = []
    for scene_id, asset, thumbnail in Scene.objects.filter(
        generation_id__in=list(generation_ids), status=SceneStatus.COMPLETED
    ).values_list("id", "asset_key", "thumbnail_key"):
        pairs.extend((scene_id, key) for key in (asset, thumbnail) if key)
    return pairs
