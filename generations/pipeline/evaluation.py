"""The evaluation stage: checks of what a generation actually produced, saved to its
metadata once its last item has ended."""

from collections import Counter
from typing import Any
from uuid import UUID

from django.db.models import Count, Sum

from generations.models import Generation, Item
from generations.states import ItemStatus

DURATION_TOLERANCE_SECONDS = 0.25


def evaluation_of(generation_id: UUID) -> dict[str, Any]:
    """Checks of what was actually produced, per variant and overall, from the stored
    media facts."""
    generation = Generation.objects.only("kind", "input").get(id=generation_id)
    target_seconds = generation.input.get("scene_seconds")
    per_variant = (
        Item.objects.filter(generation_id=generation_id)
        .values("variant__label", "status")
        .annotate(items=Count("id"), seconds=Sum("duration_seconds"), bytes=Sum("file_size"))
        .order_by("variant__label", "status")
    )
    variants: dict[str, dict[str, Any]] = {}
    for row in per_variant:
        entry = variants.setdefault(
            row["variant__label"],
            {"completed": 0, "failed": 0, "cancelled": 0, "duration_seconds": 0.0, "bytes": 0},
        )
        if row["status"] in entry:
            entry[row["status"]] = row["items"]
        if row["status"] == ItemStatus.COMPLETED:
            entry["duration_seconds"] = round(row["seconds"] or 0.0, 3)
            entry["bytes"] = row["bytes"] or 0
    off_target = []
    if target_seconds is not None:
        off_target = [
            f"{label}:{number}"
            for label, number, seconds in Item.objects.filter(
                generation_id=generation_id, status=ItemStatus.COMPLETED
            ).values_list("variant__label", "number", "duration_seconds")
            if seconds is None or abs(seconds - float(target_seconds)) > DURATION_TOLERANCE_SECONDS
        ]
    total = sum(v["completed"] + v["failed"] + v["cancelled"] for v in variants.values())
    completed = sum(v["completed"] for v in variants.values())
    failure_codes = Counter(
        Item.objects.filter(generation_id=generation_id, status=ItemStatus.FAILED).values_list(
            "error_code", flat=True
        )
    )
    return {
        "variants": variants,
        "success_rate": round(completed / total, 4) if total else 0.0,
        "failure_codes": dict(failure_codes),
        "durations_on_target": not off_target,
        "off_target_items": off_target,
    }
