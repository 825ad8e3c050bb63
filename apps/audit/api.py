import zlib
from typing import Any, cast

import msgspec
from django.conf import settings
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, generics, serializers, status
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.authentication import AgentPrincipal
from apps.accounts.permissions import scope_permission
from apps.accounts.roles import VIEWER
from apps.audit.filters import EventFilter
from apps.audit.models import Event
from apps.audit.schemas import decode_batch
from apps.audit.services.ingest import event_batch_ingest
from apps.fleet.models import TokenScope


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "payload_too_large"


def ingest_limits() -> dict[str, int]:
    return {
        "max_items_per_batch": settings.INGEST_MAX_ITEMS,
        "max_bytes_per_batch": settings.INGEST_MAX_BATCH_BYTES,
        "max_bytes_per_event": settings.INGEST_MAX_EVENT_BYTES,
        "max_future_skew_seconds": settings.INGEST_MAX_FUTURE_SKEW_SECONDS,
    }


def gunzip_bounded(data: bytes, limit: int) -> bytes:
    """Decompresses at most `limit` + 1 bytes, so a small gzip bomb cannot fill the memory."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise exceptions.ParseError(f"The body is not valid gzip: {exc}.") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(
            f"The batch is over {limit} bytes once decompressed; split it into smaller batches."
        )
    if not inflater.eof:
        raise exceptions.ParseError("The gzip body is truncated.")
    return out


class EventOutSerializer(serializers.ModelSerializer):
    agent = serializers.CharField(source="agent.slug")

    class Meta:
        model = Event
        fields = [
            "id",
            "ts",
            "received_at",
            "agent",
            "type",
            "action_id",
            "incident_id",
            "agent_version",
            "prompt_version",
            "data",
            "source",
            "content_hash",
        ]


class BatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    rejected = inline_serializer(
        "RejectedItem",
        fields={
            "index": serializers.IntegerField(),
            "id": serializers.CharField(allow_null=True),
            "errors": serializers.DictField(
                child=serializers.ListField(child=serializers.CharField())
            ),
        },
        many=True,
    )


class EventCursorPagination(CursorPagination):
    ordering = ("-ts", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


EventsWrite = scope_permission(
    TokenScope.EVENTS_WRITE,
    people_message="Events are written by agents: use an agent token with the events:write scope.",
)


BATCH_EXAMPLE = [
    {
        "id": "7f1c1f64-2d47-4a0e-9a53-0b8f1f1c2a10",
        "ts": "2026-11-26T09:15:02.120Z",
        "agent": "triage-bot",
        "type": "llm_call",
        "incident_id": "INC-1042",
        "action_id": "act-1042-1",
        "agent_version": "1.4.0",
        "data": {
            "model": "claude-sonnet-4-5",
            "input_tokens": 1830,
            "output_tokens": 412,
            "cache_read_input_tokens": 1024,
            "latency_ms": 2310,
            "request": "Summarise the alert and propose a fix",
            "response": "Restart the api deployment",
        },
    }
]


class EventListCreateView(generics.ListAPIView):
    """The audit log: agents append batches; agents and people read with filters."""

    serializer_class = EventOutSerializer
    pagination_class = EventCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = EventFilter
    parser_classes: list[Any] = []  # the body is read raw and validated with msgspec

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return [IsAuthenticated(), EventsWrite()]
        return [IsAuthenticated(), scope_permission(TokenScope.EVENTS_WRITE, VIEWER)()]

    def get_queryset(self) -> Any:
        return Event.objects.visible_to(self.request.user).select_related("agent")

    @extend_schema(
        summary="Append a batch of audit events",
        description=(
            "A JSON array of events. Limits: {max_items_per_batch} items, {max_bytes_per_batch} "
            "bytes per batch, {max_bytes_per_event} bytes per event, timestamps at most "
            "{max_future_skew_seconds} s in the future (past ones are always accepted). "
            "A well-formed batch answers 200 even when some items are rejected; good items are "
            "stored. Re-sending an event with the same id and content counts as a duplicate."
        ).format(**ingest_limits()),
        request={
            "application/json": {"type": "array", "items": {"$ref": "#/components/schemas/EventIn"}}
        },
        responses={
            200: BatchResultSerializer,
            400: OpenApiResponse(description="The body is not a JSON array."),
            401: OpenApiResponse(description="Missing, wrong, expired or revoked token."),
            403: OpenApiResponse(description="The token lacks the events:write scope."),
            413: OpenApiResponse(description="Too many items or too many bytes."),
            503: OpenApiResponse(description="Database unavailable; retry after Retry-After."),
        },
        examples=[OpenApiExample("One LLM call", value=BATCH_EXAMPLE, request_only=True)],
        tags=["events"],
    )
    def post(self, request: Request) -> Response:
        limits = ingest_limits()
        content_type = (request.content_type or "").split(";")[0].strip()
        if content_type != "application/json":
            raise exceptions.UnsupportedMediaType(
                content_type or "none", detail="Send the batch as Content-Type: application/json."
            )
        declared = request.META.get("CONTENT_LENGTH")
        if declared and declared.isdigit() and int(declared) > limits["max_bytes_per_batch"]:
            raise PayloadTooLarge(
                f"The batch is {declared} bytes; the limit is {limits['max_bytes_per_batch']} bytes. "
                "Split it into smaller batches."
            )
        body = request.body
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
        if encoding == "gzip":
            body = gunzip_bounded(body, limits["max_bytes_per_batch"])
        elif encoding not in ("", "identity"):
            raise exceptions.UnsupportedMediaType(
                encoding,
                detail=f"Content-Encoding {encoding!r} is not supported; use gzip or none.",
            )
        if len(body) > limits["max_bytes_per_batch"]:
            raise PayloadTooLarge(
                f"The batch is {len(body)} bytes; the limit is {limits['max_bytes_per_batch']} bytes."
            )
        try:
            raw_items = decode_batch(body)
        except msgspec.ValidationError as exc:
            raise exceptions.ParseError(
                f"The body must be a JSON array of events ({exc})."
            ) from exc
        except msgspec.DecodeError as exc:
            raise exceptions.ParseError(f"The body is not valid JSON: {exc}.") from exc
        if len(raw_items) > limits["max_items_per_batch"]:
            raise PayloadTooLarge(
                f"The batch has {len(raw_items)} events; the limit is "
                f"{limits['max_items_per_batch']} per batch."
            )
        if not raw_items:
            raise exceptions.ParseError("The batch is empty: send at least one event.")
        result = event_batch_ingest(
            items=[bytes(r) for r in raw_items],
            token_agent=cast(AgentPrincipal, request.user).agent,
        )
        return Response(result.as_response(), status=status.HTTP_200_OK)

    @extend_schema(summary="List audit events", tags=["events"])
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class LimitsView(APIView):
    permission_classes: list[Any] = []
    authentication_classes: list[Any] = []

    @extend_schema(
        summary="Published ingest limits",
        responses={200: OpenApiTypes.OBJECT},
        tags=["events"],
    )
    def get(self, request: Request) -> Response:
        return Response(ingest_limits())
