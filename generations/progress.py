"""Scene lifecycle writes and the counters they move.

Every function here changes a scene's status and the matching counters of its variant and
generation in one transaction, with relative updates (never read-modify-write) so that
concurrent workers never lose an increment. Rows are always touched in the order scene,
variant, generation, which keeps concurrent transactions free of lock cycles. The
transaction whose increment ends the last item decides the final status; it holds the
generation's row lock while doing so, so this happens exactly once.
"""

import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Field, QuerySet
from django.utils import timezone

from generations.errors import ErrorCode, GenerationError
from generations.models import Generation, GenerationMetadata, Scene, Variant
from generations.stages import evaluation_of
from generations.states import (
    ACTIVE_GENERATION_STATUSES,
    GenerationStatus,
    SceneStatus,
    VariantStatus,
    rollup_status,
)

MAX_RETRY_DELAY_SECONDS = 300


@dataclass(frozen=True)
class SceneResult:
    """What a finished scene stored and measured."""

    asset_key: str
    thumbnail_key: str
    content_type: str
    file_size: int
    checksum: str
    duration_seconds: float | None
    width: int | None
    height: int | None
    cost: Decimal
    provider_job_id: str
    provider_status: str


def scene_claim(*, scene_id: UUID, claim_token: str) -> Scene | None:
    """Take a queued scene for this delivery and return it, or None when it is not
    available (ended, cancelled, or held by another delivery)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = (
            Scene.objects.filter(id=scene_id)
            .filter(status=SceneStatus.QUEUED)
            .update(
                status=SceneStatus.PROCESSING,
                claim_token=claim_token,
                attempts=F("attempts") + 1,
                started_at=now,
                updated_at=now,
            )
        ) or (
            # The same message delivered again after its worker died mid-scene; once its
            # attempts are spent, recovery fails it as worker_lost instead.
            Scene.objects.filter(
                id=scene_id,
                status=SceneStatus.PROCESSING,
                claim_token=claim_token,
                attempts__lt=settings.SCENE_MAX_ATTEMPTS,
            ).update(attempts=F("attempts") + 1, started_at=now, updated_at=now)
        )
        if not claimed:
            return None
        scene = Scene.objects.select_related("variant", "generation").get(id=scene_id)
        if scene.variant.status == VariantStatus.PENDING:
            Variant.objects.filter(id=scene.variant_id, status=VariantStatus.PENDING).update(
                status=VariantStatus.PROCESSING, started_at=now, updated_at=now
            )
    return scene


def scene_complete(*, scene: Scene, claim_token: str, result: SceneResult) -> bool:
    """Record a finished scene whose objects are already stored. False when the scene was
    taken away meanwhile (cancelled or recovered), in which case nothing is counted."""
    now = timezone.now()
    with transaction.atomic():
        updated = Scene.objects.filter(
            id=scene.id, status=SceneStatus.PROCESSING, claim_token=claim_token
        ).update(
            status=SceneStatus.COMPLETED,
            completed_at=now,
            updated_at=now,
            asset_key=result.asset_key,
            thumbnail_key=result.thumbnail_key,
            content_type=result.content_type,
            file_size=result.file_size,
            checksum=result.checksum,
            duration_seconds=result.duration_seconds,
            width=result.width,
            height=result.height,
            cost=result.cost,
            provider_job_id=result.provider_job_id,
            provider_status=result.provider_status,
            error_code="",
            error_message="",
        )
        if updated:
            _count_ended(scene, now, completed=1, cost=result.cost)
    return bool(updated)


def scene_fail(*, scene: Scene, claim_token: str, error: GenerationError) -> float | None:
    """Record a failed attempt. A retryable error with attempts left puts the scene back
    in the queue and returns the delay before the next attempt; otherwise the scene fails
    for good and None is returned."""
    now = timezone.now()
    mine = Scene.objects.filter(id=scene.id, status=SceneStatus.PROCESSING, claim_token=claim_token)
    if error.retryable and scene.attempts < settings.SCENE_MAX_ATTEMPTS:
        requeued = mine.update(
            status=SceneStatus.QUEUED,
            claim_token="",
            queued_at=now,
            updated_at=now,
            error_code=error.code,
            error_message=error.message,
        )
        return retry_delay(scene.attempts) if requeued else None
    with transaction.atomic():
        if mine.update(
            status=SceneStatus.FAILED,
            completed_at=now,
            updated_at=now,
            error_code=error.code,
            error_message=error.message,
        ):
            _count_ended(scene, now, failed=1)
    return None


def scene_stop_cancelled(*, scene: Scene, claim_token: str) -> None:
    """A running scene reached a checkpoint after its generation was cancelled."""
    now = timezone.now()
    with transaction.atomic():
        if Scene.objects.filter(
            id=scene.id, status=SceneStatus.PROCESSING, claim_token=claim_token
        ).update(
            status=SceneStatus.CANCELLED,
            completed_at=now,
            updated_at=now,
            error_code=ErrorCode.CANCELLED,
            error_message="Stopped because the generation was cancelled.",
        ):
            _count_ended(scene, now, cancelled=1)


def scene_recover_lost(*, scene_id: UUID, started_before: datetime) -> bool:
    """A scene still processing since before `started_before` lost its worker: queue it
    again while attempts remain (True: dispatch it), else fail it as worker_lost."""
    now = timezone.now()
    stale = Scene.objects.filter(
        id=scene_id, status=SceneStatus.PROCESSING, started_at__lt=started_before
    )
    if stale.filter(attempts__lt=settings.SCENE_MAX_ATTEMPTS).update(
        status=SceneStatus.QUEUED, claim_token="", queued_at=now, updated_at=now
    ):
        return True
    with transaction.atomic():
        scene = stale.first()
        if scene and stale.update(
            status=SceneStatus.FAILED,
            completed_at=now,
            updated_at=now,
            error_code=ErrorCode.WORKER_LOST,
            error_message=f"The worker stopped responding {scene.attempts} times.",
        ):
            _count_ended(scene, now, failed=1)
    return False


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: base, 2x base, 4x base, ... capped."""
    base = settings.SCENE_RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    jitter = random.uniform(0.8, 1.2)  # noqa: S311 (spreading retries, not security)
    return float(min(base * jitter, MAX_RETRY_DELAY_SECONDS))


def _count_ended(
    scene: Scene,
    now: datetime,
    *,
    completed: int = 0,
    failed: int = 0,
    cancelled: int = 0,
    cost: Decimal = Decimal(0),
) -> None:
    variant = _add_returning_counters(
        Variant,
        scene.variant_id,
        {"scenes_completed": completed, "scenes_failed": failed, "scenes_cancelled": cancelled},
        now=now,
        counters=("total_scenes", "scenes_completed", "scenes_failed", "scenes_cancelled"),
    )
    generation = _add_returning_counters(
        Generation,
        scene.generation_id,
        {
            "completed_items": completed,
            "failed_items": failed,
            "cancelled_items": cancelled,
            "actual_cost": cost,
        },
        now=now,
        counters=("total_items", "completed_items", "failed_items", "cancelled_items"),
    )
    # Only the increment that ends the last item goes on to read and decide; every other
    # one releases the generation's row lock at once.
    if _all_ended(variant) or _all_ended(generation):
        finalize_if_ended(
            generation_id=scene.generation_id, variant_ids=[scene.variant_id], now=now
        )


def _add_returning_counters(
    model: type[Variant] | type[Generation],
    pk: UUID,
    increments: dict[str, int | Decimal],
    *,
    now: datetime,
    counters: tuple[str, str, str, str],
) -> tuple[int, int, int, int]:
    """Add to the row's columns and return its (total, completed, failed, cancelled)
    counters as they stand after the addition, in one UPDATE ... RETURNING. The same as
    an F() update followed by a read, without the read."""
    quote = connection.ops.quote_name
    assignments, params = [], []
    for name, delta in {**increments, "updated_at": now}.items():
        column, field = _column(model, name)
        increment = name != "updated_at"
        assignments.append(f"{column} = {column} + %s" if increment else f"{column} = %s")
        params.append(field.get_db_prep_value(delta, connection))
    pk_column, pk_field = _column(model, "id")
    params.append(pk_field.get_db_prep_value(pk, connection))
    returned = ", ".join(_column(model, name)[0] for name in counters)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET {', '.join(assignments)} "  # noqa: S608
        f"WHERE {pk_column} = %s RETURNING {returned}"  # (names come from the model)
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    total, done, failed, cancelled = (int(value) for value in row)
    return total, done, failed, cancelled


def _column(model: type[Variant] | type[Generation], name: str) -> tuple[str, Field[Any, Any]]:
    """The quoted column of a concrete field, and the field."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or not field.column:
        raise LookupError(f"{model.__name__}.{name} is not a column")
    return connection.ops.quote_name(field.column), field


def _all_ended(counters: tuple[int, int, int, int]) -> bool:
    total, completed, failed, cancelled = counters
    return completed + failed + cancelled >= total


def finalize_if_ended(*, generation_id: UUID, variant_ids: list[UUID], now: datetime) -> None:
    """Decide the final status of the given variants and of the generation if their last
    item has ended. Call inside the transaction that moved their counters."""
    generation = Generation.objects.get(id=generation_id)
    cancel_requested = generation.status == GenerationStatus.CANCELLED
    for variant in Variant.objects.filter(id__in=variant_ids):
        status = rollup_status(
            total=variant.total_scenes,
            completed=variant.scenes_completed,
            failed=variant.scenes_failed,
            cancelled=variant.scenes_cancelled,
            cancel_requested=cancel_requested,
        )
        if status is not None:
            code, message = _failure_summary(Scene.objects.filter(variant_id=variant.id))
            Variant.objects.filter(id=variant.id, status__in=ACTIVE_GENERATION_STATUSES).update(
                status=status,
                completed_at=now,
                updated_at=now,
                error_code=code,
                error_message=message,
            )
    status = rollup_status(
        total=generation.total_items,
        completed=generation.completed_items,
        failed=generation.failed_items,
        cancelled=generation.cancelled_items,
        cancel_requested=cancel_requested,
    )
    if status is None:
        return
    if generation.status == GenerationStatus.PROCESSING:
        code, message = _failure_summary(Scene.objects.filter(generation_id=generation_id))
        Generation.objects.filter(id=generation_id, status=GenerationStatus.PROCESSING).update(
            status=status,
            completed_at=now,
            updated_at=now,
            generation_time_seconds=elapsed_seconds(generation, now),
            error_code=code,
            error_message=message,
        )
    elif generation.status != GenerationStatus.CANCELLED:
        return
    # A cancelled generation ended earlier; its evaluation waits for its last item.
    GenerationMetadata.objects.filter(generation_id=generation_id).update(
        evaluation=evaluation_of(generation_id), updated_at=now
    )


def elapsed_seconds(generation: Generation, now: datetime) -> float:
    """Active time: earlier runs (before a retry) plus the current one."""
    earlier = generation.generation_time_seconds or 0.0
    if generation.started_at is None:
        return earlier
    return earlier + max((now - generation.started_at).total_seconds(), 0.0)


def _failure_summary(scenes: QuerySet[Scene]) -> tuple[str, str]:
    """The most frequent error code among failed items, and a message counting them."""
    failed = list(
        scenes.filter(status=SceneStatus.FAILED).values_list("error_code", "error_message")
    )
    if not failed:
        return "", ""
    codes = Counter(code for code, _ in failed)
    code = codes.most_common(1)[0][0]
    example = next(message for failed_code, message in failed if failed_code == code)
    return code, f"{len(failed)} item(s) failed. {example}"
