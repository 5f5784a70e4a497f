"""What the OpenAPI schema says about errors: every error has the same body."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):  # type: ignore[type-arg]
    code = serializers.CharField(help_text="Machine-readable, e.g. invalid, not_found, conflict.")
    message = serializers.CharField(help_text="A sentence for people.")
    fields = serializers.DictField(  # type: ignore[assignment]  # a body key, not DRF's fields
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages by field name (input fields as input.<name>); empty otherwise.",
    )


class ErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    error = ErrorDetailSerializer()


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorSerializer, description=description)


ERRORS = {
    400: _error("Invalid input or parameters: error.fields names each bad field."),
    401: _error("Missing or invalid credentials."),
    403: _error("Not allowed for these credentials."),
    404: _error("No such object among yours (another user's id answers the same)."),
    409: _error("The action does not fit the object's current state, or a limit is reached."),
    415: _error("The body's content type is not JSON or multipart form data."),
    429: _error("Too many requests; retry after the Retry-After header."),
    503: _error("Media storage is not reachable; retry shortly."),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERRORS[code] for code in codes}


READ_ERRORS = errors(400, 401, 404, 429)
DOWNLOAD_ERRORS = errors(400, 401, 404, 429, 503)
LIST_ERRORS = errors(400, 401, 404, 429)  # 404: a page number past the end
ACTION_ERRORS = errors(401, 404, 409, 429, 503)
WRITE_ERRORS = errors(400, 401, 404, 409, 415, 429, 503)
