"""POST /api/v1/gate: asked by an agent before each LLM or tool call."""

from decimal import Decimal
from typing import Any, Literal, cast

import msgspec
from django.db import DatabaseError
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.authentication import AgentPrincipal
from apps.accounts.permissions import scope_permission
from apps.audit.services.event_prepare import msgspec_errors
from apps.budgets.gate import GateRequest, gate_check
from apps.fleet.models import TokenScope

GateCheck = scope_permission(
    TokenScope.GATE_CHECK,
    people_message="Agents ask the gate: use an agent token with the gate:check scope.",
)


class GateIn(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["llm_call", "tool_call"]
    model: str = ""
    provider: str = "anthropic"
    max_tokens: int = 0
    input_tokens: int = 0
    estimated_cost_usd: Decimal | None = None

    def __post_init__(self) -> None:
        if len(self.model) > 200 or len(self.provider) > 64:
            raise ValueError("model is at most 200 characters and provider at most 64")
        if not 0 <= self.max_tokens <= 10_000_000 or not 0 <= self.input_tokens <= 100_000_000:
            raise ValueError("max_tokens and input_tokens are counts of tokens, 0 or more")
        if self.kind == "llm_call" and not self.model:
            raise ValueError("an llm_call names its model")
        if self.estimated_cost_usd is not None and not (
            self.estimated_cost_usd.is_finite() and 0 <= self.estimated_cost_usd <= 1_000_000
        ):
            raise ValueError("estimated_cost_usd is an amount in USD, from 0 to 1,000,000")


GateAnswerSerializer = inline_serializer(
    "GateAnswer",
    fields={
        "decision": serializers.ChoiceField(choices=["allow", "halt", "throttle", "unavailable"]),
        "reason": serializers.CharField(),
        "reservation_id": serializers.CharField(required=False),
        "budget": serializers.CharField(required=False),
        "retry_after": serializers.IntegerField(required=False),
        "budgets": serializers.ListField(child=serializers.DictField()),
    },
)


class GateView(APIView):
    parser_classes: list[Any] = []
    permission_classes = [IsAuthenticated, GateCheck]

    @extend_schema(
        summary="Ask before an LLM or tool call",
        description=(
            "200 `allow` with a `reservation_id`: send it in the call's `llm_call` event (it "
            "settles the reservation). 429 `throttle` with `Retry-After`. 423 `halt`: the agent "
            "is halted, or this call would cross a halting cap. 503: the gate cannot check "
            "(fails closed). Body: `{kind: llm_call|tool_call, model, max_tokens, "
            "input_tokens, estimated_cost_usd}`."
        ),
        request={"application/json": {"type": "object"}},
        responses={
            200: GateAnswerSerializer,
            400: OpenApiResponse(description="The request is not valid."),
            423: GateAnswerSerializer,
            429: GateAnswerSerializer,
            503: GateAnswerSerializer,
        },
        tags=["budgets"],
    )
    def post(self, request: Request) -> Response:
        if (request.content_type or "").split(";")[0].strip() != "application/json":
            raise exceptions.UnsupportedMediaType(request.content_type or "none")
        try:
            body = msgspec.json.decode(request.body, type=GateIn)
        except msgspec.ValidationError as exc:
            raise exceptions.ValidationError(msgspec_errors(exc)) from exc
        except msgspec.DecodeError as exc:
            raise exceptions.ValidationError({"body": [f"Not valid JSON: {exc}."]}) from exc
        agent = cast(AgentPrincipal, request.user).agent
        try:
            answer = gate_check(
                agent=agent,
                request=GateRequest(
                    kind=body.kind,
                    model=body.model,
                    provider=body.provider,
                    max_tokens=body.max_tokens,
                    input_tokens=body.input_tokens,
                    estimated_cost_usd=body.estimated_cost_usd,
                ),
            )
        except DatabaseError:
            # Fail closed: a call nobody could weigh is not allowed.
            return Response(
                {
                    "decision": "unavailable",
                    "reason": "The budgets cannot be checked now.",
                    "budgets": [],
                },
                status=503,
                headers={"Retry-After": "5"},
            )
        headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else {}
        return Response(answer.as_dict(), status=answer.status, headers=headers)
