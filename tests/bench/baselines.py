"""The naive baselines the measurements compare against: what a first version would do."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import serializers, viewsets
from rest_framework.pagination import PageNumberPagination

from generations.models import Generation, Item, Variant
from generations.pipeline.lifecycle import ItemResult
from generations.states import ItemStatus


class NaiveGenerationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Generation
        fields = "__all__"


class NaivePagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class NaiveGenerationViewSet(viewsets.ReadOnlyModelViewSet):
    """Stock DRF: page numbers with an exact COUNT(*), a plain ModelSerializer, no joins."""

    serializer_class = NaiveGenerationSerializer
    pagination_class = NaivePagination
    throttle_classes: list[Any] = []

    def get_queryset(self) -> QuerySet[Generation]:
        user = self.request.user
        assert isinstance(user, User)
        return Generation.objects.filter(owner=user, deleted_at__isnull=True).order_by(
            "-created_at"
        )


naive_site = admin.AdminSite(name="naive_admin")


class NaiveGenerationAdmin(admin.ModelAdmin):
    # Django's own template, not the project's override for this model.
    change_list_template = "admin/change_list.html"
    list_filter = ["status"]
    search_fields = ["title", "prompt"]


class NaiveItemAdmin(admin.ModelAdmin):
    change_list_template = "admin/change_list.html"
    list_filter = ["status"]


naive_site.register(Generation, NaiveGenerationAdmin)
naive_site.register(Item, NaiveItemAdmin)


def claim_naive(*, item_id: Any, claim_token: str) -> Item | None:
    """Claim with a guarded update, then load the item with its variant and generation
    (two statements in a transaction: what the ORM makes natural)."""
    now = timezone.now()
    with transaction.atomic():
        if not Item.objects.filter(id=item_id, status=ItemStatus.QUEUED).update(
            status=ItemStatus.PROCESSING, claim_token=claim_token, started_at=now, updated_at=now
        ):
            return None
        return Item.objects.select_related("variant", "generation").get(id=item_id)


def _mark_completed(item_id: Any, claim_token: str, result: ItemResult) -> bool:
    now = timezone.now()
    return bool(
        Item.objects.filter(
            id=item_id, status=ItemStatus.PROCESSING, claim_token=claim_token
        ).update(
            status=ItemStatus.COMPLETED,
            completed_at=now,
            updated_at=now,
            asset_key=result.asset_key,
            thumbnail_key=result.thumbnail_key,
            file_size=result.media.file_size,
            cost=result.cost,
        )
    )


def complete_get_save(*, item: Item, claim_token: str, result: ItemResult) -> None:
    """Counters by read-modify-write in Python: concurrent workers lose increments."""
    with transaction.atomic():
        if not _mark_completed(item.id, claim_token, result):
            return
        variant = Variant.objects.get(id=item.variant_id)
        variant.completed_items += 1
        variant.save(update_fields=["completed_items", "updated_at"])
        generation = Generation.objects.get(id=item.generation_id)
        generation.completed_items += 1
        generation.actual_cost += result.cost
        generation.save(update_fields=["completed_items", "actual_cost", "updated_at"])


def complete_select_for_update(*, item: Item, claim_token: str, result: ItemResult) -> None:
    """Counters by locked read-modify-write: correct, but the row lock is held across a
    round trip to Python and back."""
    with transaction.atomic():
        if not _mark_completed(item.id, claim_token, result):
            return
        variant = Variant.objects.select_for_update().get(id=item.variant_id)
        variant.completed_items += 1
        variant.save(update_fields=["completed_items", "updated_at"])
        generation = Generation.objects.select_for_update().get(id=item.generation_id)
        generation.completed_items += 1
        generation.actual_cost += result.cost
        generation.save(update_fields=["completed_items", "actual_cost", "updated_at"])
