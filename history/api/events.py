"""A generation's event log over the API: `GET /api/generations/{id}/events/`, in order,
with `?after=<sequence>` for only what is new since a client last looked."""

from typing import Any
from uuid import UUID

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from generations import selectors
from generations.models import Event, Generation
from generations.states import Actor, EventType
from history.api.schema import READ_ERRORS

MAX_EVENTS = 1000


class EventSerializer(serializers.ModelSerializer[Event]):
    type = serializers.ChoiceField(choices=EventType.choices, read_only=True)
    actor = serializers.ChoiceField(choices=Actor.choices, read_only=True)

    class Meta:
        model = Event
        fields = ["sequence", "type", "actor", "payload", "created_at"]
        read_only_fields = fields


class EventListView(APIView):
    throttle_scope = "read"

    @extend_schema(
        summary="What happened to a generation, in order",
        description=(
            "Its event log, oldest first, numbered without gaps. `after` gives only the "
            f"events after that sequence number; at most {MAX_EVENTS} come at a time."
        ),
        parameters=[
            OpenApiParameter(
                "after",
                {"type": "integer", "minimum": 0},
                description="Only events with a higher sequence number.",
            )
        ],
        responses={200: EventSerializer(many=True), **READ_ERRORS},
    )
    def get(self, request: Request, pk: UUID) -> Response:
        try:
            generation = selectors.generation_get(user=request.user, generation_id=pk)  # type: ignore[arg-type]
        except Generation.DoesNotExist:
            raise Http404 from None
        events = selectors.event_list(generation.id).filter(sequence__gt=_after(request))
        return Response(EventSerializer(events[:MAX_EVENTS], many=True).data)


def _after(request: Request) -> int:
    text: Any = request.query_params.get("after", "0")
    if not (isinstance(text, str) and text.isascii() and text.isdigit()):
        raise ValidationError({"after": ["Must be a whole number of 0 or more."]})
    return int(text)
