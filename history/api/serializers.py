"""Input and output shapes of the API. Output serializers only read; input serializers
only parse, and the services validate the generation input itself."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, extend_schema_field, extend_schema_serializer
from rest_framework import serializers
from rest_framework.reverse import reverse

from generations.kinds import GenerationKind
from generations.models import Attempt, Generation, GenerationMetadata, Item, Variant
from generations.states import AttemptOutcome
from storage.services import object_url

VIDEO_AD_EXAMPLE = {
    "kind": "video_ad",
    "title": "Spring campaign",
    "input": {
        "prompt": "A reusable water bottle on a mountain trail at sunrise",
        "variants": ["soft", "medium", "aggressive", "ultra"],
        "scenes_per_variant": 4,
        "scene_seconds": 3,
        "seed": 7,
    },
}


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.JSONField):
    """A JSON object (not a list, string or null)."""

    def to_internal_value(self, data: Any) -> Any:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return value


class StrictCharField(serializers.CharField):
    """Text only: DRF's CharField would turn 0 or true into "0" or "True"."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        return str(super().to_internal_value(data))


class NoUnknownFieldsMixin(serializers.Serializer):  # type: ignore[type-arg]
    """Refuses fields the client may not set (owner, status, counters, costs, keys) or
    that do not exist, instead of silently ignoring them."""

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "keys"):
            unknown = sorted(set(data.keys()) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {name: ["This field is read-only or unknown."] for name in unknown}
                )
        return super().to_internal_value(data)


@extend_schema_serializer(
    examples=[
        OpenApiExample("Video ad", value=VIDEO_AD_EXAMPLE, request_only=True),
        OpenApiExample(
            "Speech",
            value={"kind": "speech", "input": {"text": "Welcome to the spring sale."}},
            request_only=True,
        ),
        OpenApiExample(
            "Image with an injected failure",
            value={
                "kind": "image",
                "input": {"prompt": "A red kite", "variants": ["a", "b"], "fail_items": ["b:1"]},
            },
            request_only=True,
        ),
    ]
)
class GenerationCreateSerializer(NoUnknownFieldsMixin):
    kind = serializers.ChoiceField(choices=GenerationKind.choices)
    title = StrictCharField(max_length=200, required=False, allow_blank=True, default="")
    input = JSONObjectField(
        required=False,
        default=dict,
        help_text=(
            "The kind's parameters: prompt (video_ad, image) or text (speech), variants, "
            "scenes_per_variant, scene_seconds, width, height, fps, images_per_variant, "
            "words_per_minute, seed, source_url; fail_items, transient_fail_items, "
            "fail_rate and delay_ms inject trouble for tests and demos."
        ),
    )
    provider = StrictCharField(max_length=50, required=False)
    model = StrictCharField(max_length=100, required=False)
    source_file = serializers.FileField(
        required=False, help_text="Video ad: a source video to analyse (multipart upload)."
    )


class RegenerateSerializer(NoUnknownFieldsMixin):
    title = StrictCharField(max_length=200, required=False, allow_blank=True)
    overrides = JSONObjectField(
        required=False,
        default=dict,
        help_text='Input fields to change, e.g. {"seed": 8} or {"variants": ["soft"]}.',
    )


class ItemSerializer(serializers.ModelSerializer[Item]):
    asset_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()
    variant = serializers.UUIDField(source="variant_id", read_only=True)

    class Meta:
        model = Item
        fields = [
            "id",
            "variant",
            "number",
            "prompt",
            "status",
            "attempts",
            "provider_job_id",
            "provider_status",
            "asset_url",
            "thumbnail_url",
            "download_url",
            "duration_seconds",
            "width",
            "height",
            "file_size",
            "content_type",
            "checksum",
            "cost",
            "error_code",
            "error_message",
            "queued_at",
            "started_at",
            "completed_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_asset_url(self, item: Item) -> str | None:
        return _absolute(self, object_url(item.asset_key)) if item.asset_key else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_thumbnail_url(self, item: Item) -> str | None:
        return _absolute(self, object_url(item.thumbnail_key)) if item.thumbnail_key else None

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download_url(self, item: Item) -> str | None:
        if not item.asset_key:
            return None
        return reverse("api:item-download", args=[item.id], request=self.context.get("request"))


class AttemptSerializer(serializers.ModelSerializer[Attempt]):
    """One attempt at an item: why it started, where it ran and how it ended."""

    item = serializers.UUIDField(source="item_id", read_only=True)
    # Declared: DRF drops allow_blank from a read-only model field, and the schema would
    # then refuse the blank outcome of a running attempt.
    outcome = serializers.ChoiceField(
        choices=AttemptOutcome.choices,
        allow_blank=True,
        read_only=True,
        help_text="Blank while the attempt runs.",
    )

    class Meta:
        model = Attempt
        fields = [
            "item",
            "number",
            "reason",
            "queued_at",
            "started_at",
            "ended_at",
            "outcome",
            "error_code",
            "error_message",
            "retryable",
            "provider_job_id",
            "cost",
            "worker",
        ]
        read_only_fields = fields


class ItemWithAttemptsSerializer(ItemSerializer):
    """An item with its attempt log, first attempt first."""

    # From the items' prefetched attempt_log (selectors.generation_detail), not a query each.
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta(ItemSerializer.Meta):
        fields = [*ItemSerializer.Meta.fields, "attempt_log"]
        read_only_fields = fields


class VariantSerializer(serializers.ModelSerializer[Variant]):
    generation = serializers.UUIDField(source="generation_id", read_only=True)

    class Meta:
        model = Variant
        fields = [
            "id",
            "generation",
            "label",
            "position",
            "status",
            "total_items",
            "completed_items",
            "failed_items",
            "cancelled_items",
            "error_code",
            "error_message",
            "created_at",
            "started_at",
            "completed_at",
        ]
        read_only_fields = fields


class VariantWithItemsSerializer(VariantSerializer):
    items = ItemWithAttemptsSerializer(many=True, read_only=True)

    class Meta(VariantSerializer.Meta):
        fields = [*VariantSerializer.Meta.fields, "items"]
        read_only_fields = fields


class GenerationSerializer(serializers.ModelSerializer[Generation]):
    """A row of a list: what a history card shows."""

    # Field.parent is DRF's link to the enclosing serializer; the metaclass moves declared
    # fields out of the class body, so the name is free at runtime.
    parent = serializers.UUIDField(  # type: ignore[assignment]
        source="parent_id", read_only=True, allow_null=True
    )
    pending_items = serializers.IntegerField(read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Generation
        fields = [
            "id",
            "kind",
            "title",
            "prompt",
            "status",
            "total_items",
            "completed_items",
            "failed_items",
            "cancelled_items",
            "pending_items",
            "progress_percent",
            "cost_estimate",
            "actual_cost",
            "provider",
            "provider_model",
            "error_code",
            "error_message",
            "parent",
            "thumbnail_url",
            "created_at",
            "updated_at",
            "started_at",
            "completed_at",
            "generation_time_seconds",
            "deleted_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_thumbnail_url(self, generation: Generation) -> str | None:
        key = getattr(generation, "thumbnail_key", None)
        return _absolute(self, object_url(key)) if key else None


class MetadataSerializer(serializers.ModelSerializer[GenerationMetadata]):
    class Meta:
        model = GenerationMetadata
        fields = ["analysis", "transformation", "prompts", "evaluation", "updated_at"]
        read_only_fields = fields


class LineageSerializer(serializers.Serializer):  # type: ignore[type-arg]
    parent = serializers.UUIDField(allow_null=True)  # type: ignore[assignment]  # see above
    regenerations = serializers.ListField(child=serializers.UUIDField())


class GenerationDetailSerializer(GenerationSerializer):
    """Everything about one generation: parameters, variants with items (each with its
    attempt log), metadata, lineage."""

    variants = VariantWithItemsSerializer(many=True, read_only=True)
    metadata = MetadataSerializer(read_only=True)
    # Empty when the generation has no source URL, so not typed as a URI.
    source_url = serializers.CharField(read_only=True)
    lineage = serializers.SerializerMethodField()

    class Meta(GenerationSerializer.Meta):
        fields = [
            *GenerationSerializer.Meta.fields,
            "input",
            "source_url",
            "source_type",
            "provider_request_id",
            "variants",
            "metadata",
            "lineage",
        ]
        read_only_fields = fields

    @extend_schema_field(LineageSerializer)
    def get_lineage(self, generation: Generation) -> dict[str, Any]:
        return {
            "parent": generation.parent_id,
            "regenerations": [child.id for child in generation.regenerations.all()],
        }

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_thumbnail_url(self, generation: Generation) -> str | None:
        for variant in generation.variants.all():
            for item in variant.items.all():
                if item.thumbnail_key:
                    return _absolute(self, object_url(item.thumbnail_key))
        return None


class VariantProgressSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    # Field.label is DRF's display label; as above, declared fields leave the class body.
    label = serializers.CharField()  # type: ignore[assignment]
    status = serializers.CharField()
    total_items = serializers.IntegerField()
    completed_items = serializers.IntegerField()
    failed_items = serializers.IntegerField()
    cancelled_items = serializers.IntegerField()


class ProgressSerializer(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    status = serializers.CharField()
    total_items = serializers.IntegerField()
    completed_items = serializers.IntegerField()
    failed_items = serializers.IntegerField()
    cancelled_items = serializers.IntegerField()
    pending_items = serializers.IntegerField()
    percent = serializers.IntegerField()
    updated_at = serializers.DateTimeField()
    variants = VariantProgressSerializer(many=True)


def _absolute(serializer: serializers.Serializer, url: str) -> str:  # type: ignore[type-arg]
    """Local storage links are paths; make them absolute like S3's presigned URLs."""
    request = serializer.context.get("request")
    if url.startswith("/") and request is not None:
        return str(request.build_absolute_uri(url))
    return url
