"""A generation and what it is made of: its variants, their items, and the metadata its
stages write."""

import uuid
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from generations.kinds import GenerationKind
from generations.states import GenerationStatus, ItemStatus, QueueReason, VariantStatus


class SourceType(models.TextChoices):
    NONE = "none", "None"
    URL = "url", "URL"
    UPLOAD = "upload", "Upload"


def _status_in(choices: type[models.TextChoices]) -> Q:
    return Q(status__in=choices.values)


class Generation(models.Model):
    """One request to generate media, recorded before any provider is called."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="generations"
    )
    kind = models.CharField(max_length=20, choices=GenerationKind.choices)
    title = models.CharField(max_length=200, blank=True)
    prompt = models.TextField(blank=True)
    # The full parameter snapshot (seed, model, settings): enough to replay the run.
    input = models.JSONField(default=dict, blank=True)

    provider = models.CharField(max_length=50)
    provider_model = models.CharField(max_length=100, blank=True)
    provider_request_id = models.CharField(max_length=200, blank=True)

    source_url = models.URLField(max_length=2000, blank=True)
    source_type = models.CharField(
        max_length=10, choices=SourceType.choices, default=SourceType.NONE
    )

    status = models.CharField(
        max_length=20, choices=GenerationStatus.choices, default=GenerationStatus.PENDING
    )
    total_items = models.PositiveIntegerField(default=0)
    completed_items = models.PositiveIntegerField(default=0)
    failed_items = models.PositiveIntegerField(default=0)
    cancelled_items = models.PositiveIntegerField(default=0)

    cost_estimate = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))
    actual_cost = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))

    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)

    # The sequence number of the generation's last event (see Event).
    last_event_sequence = models.PositiveIntegerField(default=0, db_default=0)

    parent = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="regenerations",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    generation_time_seconds = models.FloatField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A user's history, newest first.
            models.Index(
                F("owner"),
                F("created_at").desc(),
                name="gen_owner_created",
                condition=Q(deleted_at__isnull=True),
            ),
            # A user's history filtered by status.
            models.Index(
                F("owner"),
                F("status"),
                F("created_at").desc(),
                name="gen_owner_status_created",
                condition=Q(deleted_at__isnull=True),
            ),
            # Statistics: the active generations, counted live beside the tally
            # (generations.stats), from the index alone.
            models.Index(
                fields=["status"],
                include=[
                    "kind",
                    "error_code",
                    "cost_estimate",
                    "actual_cost",
                    "generation_time_seconds",
                ],
                name="gen_active_stats",
                condition=Q(
                    deleted_at__isnull=True,
                    status__in=[GenerationStatus.PENDING, GenerationStatus.PROCESSING],
                ),
            ),
            # Statistics: the p95 generation time, read at its rank from the top
            # (generations.stats), staff-wide and for one user.
            models.Index(
                fields=["generation_time_seconds"],
                name="gen_time",
                condition=Q(deleted_at__isnull=True, generation_time_seconds__isnull=False),
            ),
            models.Index(
                fields=["owner", "generation_time_seconds"],
                name="gen_owner_time",
                condition=Q(deleted_at__isnull=True, generation_time_seconds__isnull=False),
            ),
            # Staff lists (admin), newest first across every owner.
            models.Index(F("created_at").desc(), name="gen_created"),
            # Recovery: active generations that have not moved for a while.
            models.Index(fields=["status", "updated_at"], name="gen_status_updated"),
            # Staff search by a provider's request id (admin).
            models.Index(
                fields=["provider_request_id"],
                name="gen_provider_request",
                condition=~Q(provider_request_id=""),
            ),
            # Trash and purge: soft-deleted rows by deletion time.
            models.Index(
                fields=["deleted_at"],
                name="gen_deleted",
                condition=Q(deleted_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=_status_in(GenerationStatus), name="gen_status_valid"),
            models.CheckConstraint(
                condition=Q(kind__in=GenerationKind.values), name="gen_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(source_type__in=SourceType.values), name="gen_source_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(
                    total_items__gte=F("completed_items") + F("failed_items") + F("cancelled_items")
                ),
                name="gen_counters_within_total",
            ),
            models.CheckConstraint(
                condition=Q(cost_estimate__gte=0) & Q(actual_cost__gte=0),
                name="gen_costs_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} {self.id}"

    @property
    def pending_items(self) -> int:
        return self.total_items - self.completed_items - self.failed_items - self.cancelled_items

    @property
    def progress_percent(self) -> int:
        if not self.total_items:
            return 0
        ended = self.completed_items + self.failed_items + self.cancelled_items
        return ended * 100 // self.total_items

    def elapsed_seconds(self, now: datetime) -> float:
        """Active time: earlier runs (before a retry) plus the current one."""
        earlier = self.generation_time_seconds or 0.0
        if self.started_at is None:
            return earlier
        return earlier + max((now - self.started_at).total_seconds(), 0.0)


class Variant(models.Model):
    """One flavour of a generation (soft, medium, aggressive, ultra, ...)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed through variant_label_unique, which starts with the generation.
    generation = models.ForeignKey(
        Generation, on_delete=models.CASCADE, related_name="variants", db_index=False
    )
    label = models.SlugField(max_length=50)
    position = models.PositiveSmallIntegerField(default=0)
    status = models.CharField(
        max_length=20, choices=VariantStatus.choices, default=VariantStatus.PENDING
    )
    total_items = models.PositiveIntegerField(default=0)
    completed_items = models.PositiveIntegerField(default=0)
    failed_items = models.PositiveIntegerField(default=0)
    cancelled_items = models.PositiveIntegerField(default=0)
    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["generation", "position"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "label"], name="variant_label_unique"),
            models.UniqueConstraint(
                fields=["generation", "position"], name="variant_position_unique"
            ),
            models.CheckConstraint(
                condition=_status_in(VariantStatus), name="variant_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(
                    total_items__gte=F("completed_items") + F("failed_items") + F("cancelled_items")
                ),
                name="variant_counters_within_total",
            ),
        ]

    def __str__(self) -> str:
        return self.label


class Item(models.Model):
    """One media item: a video item, a speech track or an image."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Denormalised from the variant so that generation-wide updates need no join; indexed
    # through item_generation_status.
    generation = models.ForeignKey(
        Generation, on_delete=models.CASCADE, related_name="items", db_index=False
    )
    # Indexed through item_number_unique, which starts with the variant.
    variant = models.ForeignKey(
        Variant, on_delete=models.CASCADE, related_name="items", db_index=False
    )
    number = models.PositiveSmallIntegerField()
    prompt = models.TextField(blank=True)

    provider_job_id = models.CharField(max_length=200, blank=True)
    provider_status = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=20, choices=ItemStatus.choices, default=ItemStatus.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The task delivery that holds this item while it is processing: a redelivery of
    # the same message may take it back, a different message may not.
    claim_token = models.CharField(max_length=64, blank=True)
    # Why the item is queued now: the reason its next attempt records.
    queue_reason = models.CharField(
        max_length=20,
        choices=QueueReason.choices,
        default=QueueReason.FIRST_RUN,
        db_default=QueueReason.FIRST_RUN,
    )

    # Storage keys, not URLs: URLs are presigned on demand and expire.
    asset_key = models.CharField(max_length=500, blank=True)
    thumbnail_key = models.CharField(max_length=500, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    file_size = models.PositiveBigIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    checksum = models.CharField(max_length=64, blank=True)
    cost = models.DecimalField(max_digits=12, decimal_places=4, default=Decimal(0))

    error_code = models.CharField(max_length=50, blank=True)
    error_message = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # While processing: when its worker last said it is alive (every ITEM_HEARTBEAT_SECONDS);
    # silent for ITEM_LEASE_SECONDS, the worker is presumed lost.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Since when its attempts have found media storage unreachable, without a success in
    # between: within STORAGE_OUTAGE_SECONDS it waits and retries, whatever its attempts.
    storage_outage_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["variant", "number"]
        indexes = [
            # Recovery: items whose worker may have died mid-run.
            models.Index(
                fields=["heartbeat_at"],
                name="item_processing_heartbeat",
                condition=Q(status=ItemStatus.PROCESSING),
            ),
            models.Index(fields=["generation", "status"], name="item_generation_status"),
            # Failures by code (admin filter, dashboard): only failed items are indexed.
            models.Index(
                fields=["error_code", "completed_at"],
                name="item_failed_code",
                condition=Q(status=ItemStatus.FAILED),
            ),
            # A list row's thumbnail: the first completed item that has one
            # (selectors.generation_with_thumbnail), answered from the index alone.
            models.Index(
                fields=["generation", "number"],
                name="item_first_thumbnail",
                include=["thumbnail_key"],
                condition=Q(status=ItemStatus.COMPLETED) & ~Q(thumbnail_key=""),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["variant", "number"], name="item_number_unique"),
            models.CheckConstraint(condition=_status_in(ItemStatus), name="item_status_valid"),
            models.CheckConstraint(condition=Q(cost__gte=0), name="item_cost_non_negative"),
        ]

    def __str__(self) -> str:
        return f"item {self.number}"


class GenerationMetadata(models.Model):
    """What each pipeline stage produced, saved as the stage ends."""

    generation = models.OneToOneField(
        Generation, on_delete=models.CASCADE, primary_key=True, related_name="metadata"
    )
    analysis = models.JSONField(default=dict, blank=True)
    transformation = models.JSONField(default=dict, blank=True)
    prompts = models.JSONField(default=dict, blank=True)
    evaluation = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "generation metadata"

    def __str__(self) -> str:
        return f"metadata of {self.generation_id}"
