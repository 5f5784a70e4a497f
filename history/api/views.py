"""The REST API: thin viewsets that parse with a serializer, call a service or a
selector, and render. Every queryset comes from a selector scoped to the requesting
user, so another user's ids answer 404 exactly like missing ones."""

import hashlib
import json
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from generations import selectors, services
from generations.manifest import archive_filename, generation_archive_entries
from generations.models import Generation, Item, Variant
from history.api.filters import GenerationOrderingFilter
from history.api.pagination import CappedPageNumberPagination, HistoryPagination
from history.api.schema import (
    ACTION_ERRORS,
    DOWNLOAD_ERRORS,
    LIST_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
)
from history.api.serializers import (
    AttemptSerializer,
    GenerationCreateSerializer,
    GenerationDetailSerializer,
    GenerationSerializer,
    ItemSerializer,
    ProgressSerializer,
    RegenerateSerializer,
    VariantSerializer,
)
from history.filters import GenerationFilter
from storage.archive import stream_zip
from storage.services import object_exists, object_url, storage_check


def _get_or_404(lookup: Any, **kwargs: Any) -> Any:
    try:
        return lookup(**kwargs)
    except (ObjectDoesNotExist, ValueError, DjangoValidationError):
        raise Http404 from None


@extend_schema_view(
    list=extend_schema(
        summary="List your generations",
        description="Newest first. Cursor pages by default; `?page=N` gives numbered pages.",
        responses={200: GenerationSerializer, **LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="One generation with its variants, items and their attempts, metadata, lineage",
        responses={200: GenerationDetailSerializer, **READ_ERRORS},
    ),
    destroy=extend_schema(
        summary="Move a generation to the trash",
        description="Cancels it first if it is running. Restorable until the retention ends.",
        responses={204: None, **ACTION_ERRORS},
    ),
)
class GenerationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,  # type: ignore[type-arg]
):
    queryset = Generation.objects.none()  # describes the model to the schema; see get_queryset
    lookup_value_converter = "uuid"
    pagination_class = HistoryPagination
    filterset_class = GenerationFilter
    filter_backends = [DjangoFilterBackend, GenerationOrderingFilter]
    throttle_scope = "read"

    def get_throttles(self) -> list[Any]:
        if self.action == "create":
            self.throttle_scope = "create"
        elif self.action in {"cancel", "retry", "regenerate", "restore", "destroy"}:
            self.throttle_scope = "action"
        return super().get_throttles()

    def get_queryset(self) -> QuerySet[Generation]:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return selectors.generation_list(self.request.user)  # type: ignore[arg-type]

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        if self.action == "create":
            return GenerationCreateSerializer
        if self.action == "regenerate":
            return RegenerateSerializer
        return GenerationSerializer

    def get_object(self) -> Generation:
        return self._generation()

    def _generation(self, *, include_deleted: bool = False) -> Generation:
        generation: Generation = _get_or_404(
            selectors.generation_get,
            user=self.request.user,
            generation_id=self.kwargs["pk"],
            include_deleted=include_deleted,
        )
        return generation

    def _detail_response(
        self, generation_id: Any, status_code: int = status.HTTP_200_OK
    ) -> Response:
        generation = _get_or_404(
            selectors.generation_detail, user=self.request.user, generation_id=generation_id
        )
        data = GenerationDetailSerializer(generation, context=self.get_serializer_context()).data
        return Response(data, status=status_code)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._detail_response(kwargs["pk"])

    @extend_schema(
        summary="Submit a generation",
        description=(
            "Records the generation (pending) with its variants and items, then enqueues it. "
            "JSON, or multipart with `source_file` for a video ad's source."
        ),
        responses={201: GenerationDetailSerializer, **WRITE_ERRORS},
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = GenerationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        upload = data.get("source_file")
        generation = services.generation_create(
            owner=request.user,  # type: ignore[arg-type]
            kind=data["kind"],
            input=data["input"],
            title=data["title"],
            provider=data.get("provider"),
            model=data.get("model"),
            source_file=upload,
            source_filename=upload.name if upload else "",
        )
        return self._detail_response(generation.id, status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Generation) -> None:
        services.generation_delete(generation=instance)

    @extend_schema(
        summary="Cancel a pending or processing generation",
        request=None,
        responses={200: GenerationSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        generation = services.generation_cancel(generation=self._generation())
        return Response(
            GenerationSerializer(generation, context=self.get_serializer_context()).data
        )

    @extend_schema(
        summary="Run again every item that failed or was cancelled",
        description="Completed items are kept and not rendered again.",
        request=None,
        responses={202: GenerationSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        generation = self._generation()
        services.generation_retry(generation=generation)
        return Response(
            GenerationSerializer(generation, context=self.get_serializer_context()).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        summary="Start a new generation from this one's input",
        description="Same input and seed unless `overrides` change them; `parent` links the two.",
        request=RegenerateSerializer,
        responses={201: GenerationDetailSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def regenerate(self, request: Request, pk: str) -> Response:
        serializer = RegenerateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        overrides = dict(serializer.validated_data["overrides"])
        if "title" in serializer.validated_data:
            overrides["title"] = serializer.validated_data["title"]
        generation = services.generation_regenerate(
            generation=self._generation(),
            owner=request.user,  # type: ignore[arg-type]
            overrides=overrides,
        )
        return self._detail_response(generation.id, status.HTTP_201_CREATED)

    @extend_schema(
        summary="Take a generation out of the trash",
        request=None,
        responses={200: GenerationSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        generation = services.generation_restore(generation=self._generation(include_deleted=True))
        return Response(
            GenerationSerializer(generation, context=self.get_serializer_context()).data
        )

    @extend_schema(
        summary="Status and counters, cheap to poll",
        description="Send the ETag back in If-None-Match: an unchanged generation answers 304.",
        parameters=[OpenApiParameter("If-None-Match", OpenApiTypes.STR, OpenApiParameter.HEADER)],
        responses={
            200: ProgressSerializer,
            304: OpenApiResponse(description="Unchanged."),
            **READ_ERRORS,
        },
    )
    @action(detail=True, methods=["get"])
    def progress(self, request: Request, pk: str) -> Response:
        snapshot = _get_or_404(
            selectors.generation_progress_snapshot, user=request.user, generation_id=pk
        )
        body = ProgressSerializer(snapshot).data
        digest = hashlib.sha256(json.dumps(body, cls=DjangoJSONEncoder, sort_keys=True).encode())
        etag = f'"{digest.hexdigest()[:32]}"'
        unchanged = etag in request.headers.get("If-None-Match", "")
        response = Response(status=status.HTTP_304_NOT_MODIFIED) if unchanged else Response(body)
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        return response

    @extend_schema(
        summary="The variants of a generation",
        responses={200: VariantSerializer(many=True), **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def variants(self, request: Request, pk: str) -> Response:
        variants = selectors.variant_list(self._generation())
        return Response(VariantSerializer(variants, many=True).data)

    @extend_schema(
        summary="Every asset and a manifest.json, as a streamed ZIP",
        responses={(200, "application/zip"): OpenApiTypes.BINARY, **DOWNLOAD_ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def download(self, request: Request, pk: str) -> StreamingHttpResponse:
        generation = self._generation()
        storage_check()  # an outage answers 503 before any byte of the archive goes out
        response = StreamingHttpResponse(
            stream_zip(generation_archive_entries(generation)), content_type="application/zip"
        )
        response["Content-Disposition"] = f'attachment; filename="{archive_filename(generation)}"'
        return response


@extend_schema_view(
    retrieve=extend_schema(summary="One variant", responses={200: VariantSerializer, **READ_ERRORS})
)
class VariantViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    queryset = Variant.objects.none()  # for the schema; objects come from selectors
    lookup_value_converter = "uuid"
    serializer_class = VariantSerializer
    throttle_scope = "read"

    def get_object(self) -> Variant:
        variant: Variant = _get_or_404(
            selectors.variant_get, user=self.request.user, variant_id=self.kwargs["pk"]
        )
        return variant

    @extend_schema(
        summary="The items (or tracks, or images) of a variant",
        responses={200: ItemSerializer(many=True), **READ_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def items(self, request: Request, pk: str) -> Response:
        items = selectors.item_list(self.get_object())
        return Response(
            ItemSerializer(items, many=True, context=self.get_serializer_context()).data
        )


@extend_schema_view(
    retrieve=extend_schema(summary="One item", responses={200: ItemSerializer, **READ_ERRORS})
)
class ItemViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):  # type: ignore[type-arg]
    queryset = Item.objects.none()  # for the schema; objects come from selectors
    lookup_value_converter = "uuid"
    serializer_class = ItemSerializer
    throttle_scope = "read"

    def get_object(self) -> Item:
        item: Item = _get_or_404(
            selectors.item_get, user=self.request.user, item_id=self.kwargs["pk"]
        )
        return item

    @extend_schema(
        summary="The attempt log of one item, first attempt first",
        responses={200: AttemptSerializer(many=True), **READ_ERRORS},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filter_backends=[])
    def attempts(self, request: Request, pk: str) -> Response:
        attempts = selectors.attempt_list(self.get_object())
        return Response(AttemptSerializer(attempts, many=True).data)

    @extend_schema(
        summary="Download one asset",
        description="Redirects to a short-lived URL of the file.",
        responses={302: OpenApiResponse(description="Location: the file."), **DOWNLOAD_ERRORS},
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> HttpResponseRedirect:
        item = self.get_object()
        if not item.asset_key or not object_exists(item.asset_key):
            raise Http404
        name = f"{item.variant.label}-{item.asset_key.rsplit('/', 1)[-1]}"
        return HttpResponseRedirect(
            request.build_absolute_uri(object_url(item.asset_key, download_name=name))
        )


@extend_schema(
    summary="Your library: completed and partially successful generations",
    responses={200: GenerationSerializer, **LIST_ERRORS},
)
class LibraryView(ListAPIView):  # type: ignore[type-arg]
    serializer_class = GenerationSerializer
    pagination_class = HistoryPagination
    filterset_class = GenerationFilter
    filter_backends = [DjangoFilterBackend, GenerationOrderingFilter]
    throttle_scope = "read"

    def get_queryset(self) -> QuerySet[Generation]:
        if getattr(self, "swagger_fake_view", False):
            return Generation.objects.none()
        return selectors.generation_library_list(self.request.user)  # type: ignore[arg-type]


@extend_schema(
    summary="Your trash: deleted generations that can still be restored",
    responses={200: GenerationSerializer, **LIST_ERRORS},
)
class TrashView(ListAPIView):  # type: ignore[type-arg]
    serializer_class = GenerationSerializer
    # The trash holds at most TRASH_RETENTION_DAYS of deletions, ordered by deletion time.
    pagination_class = CappedPageNumberPagination
    throttle_scope = "read"
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[Generation]:
        if getattr(self, "swagger_fake_view", False):
            return Generation.objects.none()
        return selectors.generation_trash_list(self.request.user)  # type: ignore[arg-type]
