"""Usage statistics over the API: `GET /api/stats/`, the caller's or (staff) everyone's."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generations.stats import generation_stats
from history.api.schema import errors


class StatsView(APIView):
    throttle_scope = "read"

    @extend_schema(
        summary="Counts, success rate, costs, times, failure codes and a daily series",
        parameters=[
            OpenApiParameter(
                "scope",
                OpenApiTypes.STR,
                enum=["user", "all"],
                description="`all` (staff only) covers every user.",
            ),
            OpenApiParameter(
                "days",
                {"type": "integer", "minimum": 1, "maximum": 365},
                description="Days in the daily series (default 30).",
            ),
        ],
        responses={200: OpenApiTypes.OBJECT, **errors(400, 401, 403, 429)},
    )
    def get(self, request: Request) -> Response:
        scope = request.query_params.get("scope", "user")
        if scope not in ("user", "all"):
            raise ValidationError({"scope": ["Must be user or all."]})
        if scope == "all" and not request.user.is_staff:
            raise PermissionDenied("Only staff may see everyone's statistics.")
        days_text = request.query_params.get("days", "30")
        if not days_text.isdigit() or not 1 <= int(days_text) <= 365:
            raise ValidationError({"days": ["Must be a whole number from 1 to 365."]})
        days = int(days_text)
        owner = None if scope == "all" else request.user
        return Response(generation_stats(owner=owner, days=days))  # type: ignore[arg-type]
