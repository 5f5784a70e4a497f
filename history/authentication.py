"""API key authentication for the REST API: `Authorization: Bearer gv_...` (or
`Api-Key gv_...`). A request without such a header is left to the next class (sessions)."""

from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import User
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from history.models import ApiKey
from history.services import api_key_authenticate

if TYPE_CHECKING:
    # Only for typing: drf_spectacular.openapi imports rest_framework.views, which imports
    # the authentication classes named in the settings, this module among them.
    from drf_spectacular.openapi import AutoSchema

SCHEMES = (b"bearer", b"api-key")
INVALID_KEY = "Invalid or revoked API key."


class ApiKeyAuthentication(BaseAuthentication):
    """Sets request.user to the key's user and request.auth to the ApiKey. A malformed,
    unknown or revoked key, or one whose user is inactive, fails with 401."""

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in SCHEMES:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed(INVALID_KEY)
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(INVALID_KEY) from None
        api_key = api_key_authenticate(raw_key)
        if api_key is None:
            raise AuthenticationFailed(INVALID_KEY)
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        # A challenge makes DRF answer 401 (not 403) to unauthenticated requests.
        return "Bearer"


# drf-spectacular registers extensions in its untyped __init_subclass__.
class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents ApiKeyAuthentication in the OpenAPI schema as an HTTP bearer scheme."""

    target_class = "history.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: "AutoSchema") -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "gv_...",
            "description": "An API key from your account page: `Authorization: Bearer gv_...`.",
        }
