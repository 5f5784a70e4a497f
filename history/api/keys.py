"""The API key endpoints: list your keys, create one (its raw key is shown once), revoke one.
The integrator registers ApiKeyViewSet under /api/keys/."""

from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from history.api.schema import errors
from history.authentication import ApiKeyAuthentication
from history.models import ApiKey
from history.selectors import api_key_get, api_keys_of
from history.services import NAME_MAX_LENGTH, api_key_create, api_key_revoke

# A user has at most services.MAX_ACTIVE_KEYS active keys; revoked ones accumulate, and the
# list shows only the most recently revoked of them.
LIST_LIMIT = 100

_EXAMPLE_KEY = {
    "id": 42,
    "name": "CI pipeline",
    "prefix": "3f9a1c7e",
    "created_at": "2026-11-21T19:50:00Z",
    "last_used_at": None,
    "revoked_at": None,
    "active": True,
}


class ApiKeyCreateSerializer(serializers.Serializer[ApiKey]):
    name = serializers.CharField(max_length=NAME_MAX_LENGTH)


class ApiKeyOutputSerializer(serializers.ModelSerializer[ApiKey]):
    active = serializers.BooleanField(source="is_active", read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "active"]
        read_only_fields = fields


class ApiKeyCreatedSerializer(ApiKeyOutputSerializer):
    key = serializers.SerializerMethodField(
        help_text="The full key. It is shown only in this response; store it now."
    )

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = [*ApiKeyOutputSerializer.Meta.fields, "key"]
        read_only_fields = fields

    def get_key(self, api_key: ApiKey) -> str:
        return str(self.context["raw_key"])


@extend_schema_view(
    list=extend_schema(
        summary="List your API keys",
        description=f"Active keys first, then the most recently revoked; at most {LIST_LIMIT}.",
        responses={200: ApiKeyOutputSerializer(many=True), **errors(401, 429)},
        examples=[OpenApiExample("Keys", value=[_EXAMPLE_KEY], response_only=True)],
    ),
    create=extend_schema(
        summary="Create an API key",
        description=(
            "Returns the raw key once, in `key`; only its prefix is shown afterwards. Needs "
            "a signed-in session: an API key cannot create keys (403)."
        ),
        request=ApiKeyCreateSerializer,
        responses={201: ApiKeyCreatedSerializer, **errors(400, 401, 403, 415, 429)},
        examples=[
            OpenApiExample("Request", value={"name": "CI pipeline"}, request_only=True),
            OpenApiExample(
                "Created",
                value={**_EXAMPLE_KEY, "key": "gv_3f9a1c7e_" + "x" * 43},
                response_only=True,
                status_codes=["201"],
            ),
        ],
    ),
    destroy=extend_schema(
        summary="Revoke an API key",
        description="The key stops working at once; it stays listed as revoked.",
        parameters=[
            OpenApiParameter("id", int, OpenApiParameter.PATH, description="The key's id.")
        ],
        responses={204: None, **errors(401, 404, 429)},
    ),
)
class ApiKeyViewSet(
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[ApiKey],
):
    permission_classes = [IsAuthenticated]
    serializer_class = ApiKeyOutputSerializer
    pagination_class = None
    filter_backends = []
    lookup_value_converter = "int"

    @property
    def throttle_scope(self) -> str:
        return "read" if self.action == "list" else "action"

    def get_queryset(self) -> QuerySet[ApiKey]:
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return ApiKey.objects.none()
        return api_keys_of(_user(self.request))

    def get_object(self) -> ApiKey:
        try:
            return api_key_get(user=_user(self.request), key_id=self.kwargs["pk"])
        except ApiKey.DoesNotExist:
            raise NotFound from None

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        keys = self.get_queryset()[:LIST_LIMIT]
        return Response(ApiKeyOutputSerializer(keys, many=True).data)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if isinstance(request.successful_authenticator, ApiKeyAuthentication):
            # A leaked key must not be able to mint keys that outlive its revocation.
            raise PermissionDenied(
                "An API key cannot create API keys; create them while signed in (the account "
                "page) or with `manage.py create_api_key`."
            )
        serializer = ApiKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key, raw_key = api_key_create(
            user=_user(request), name=serializer.validated_data["name"]
        )
        output = ApiKeyCreatedSerializer(api_key, context={"raw_key": raw_key})
        return Response(output.data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        api_key_revoke(api_key=instance)


def _user(request: Request) -> User:
    # IsAuthenticated has run: the user is a real account.
    return cast(User, request.user)
