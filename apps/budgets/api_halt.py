"""POST /api/v1/agents/{slug}/halt and /resume: a person's emergency stop and resume."""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.permissions import HasRole
from apps.accounts.roles import FINOPS
from apps.budgets.services import agents_halt, agents_resume
from apps.fleet.models import Agent


class CanHalt(HasRole):
    roles = (FINOPS,)  # admin holds every role
    message = "Halting and resuming agents needs the finops or admin role."


ReasonSerializer = inline_serializer(
    "HaltReason", fields={"reason": serializers.CharField(max_length=2000)}
)
AgentStateSerializer = inline_serializer(
    "AgentHaltState",
    fields={
        "agent": serializers.CharField(),
        "halted": serializers.BooleanField(),
        "halted_reason": serializers.CharField(),
        "changed": serializers.BooleanField(),
    },
)


class _AgentSwitch(APIView):
    permission_classes = [IsAuthenticated, CanHalt]
    halt = True

    def post(self, request: Request, slug: str) -> Response:
        data: Any = request.data
        reason = str(data.get("reason", "") if hasattr(data, "get") else "").strip()
        if not reason:
            raise exceptions.ValidationError({"reason": ["Say why (a reason is required)."]})
        if len(reason) > 2000:
            raise exceptions.ValidationError({"reason": ["At most 2,000 characters."]})
        agent = get_object_or_404(Agent.objects.select_related("team"), slug=slug)
        change = agents_halt if self.halt else agents_resume
        changed = change(agents=[agent], reason=reason, by=request.user)
        agent.refresh_from_db()
        return Response(
            {
                "agent": agent.slug,
                "halted": agent.halted,
                "halted_reason": agent.halted_reason,
                "changed": bool(changed),
            }
        )


_SCHEMA: dict[str, Any] = {
    "request": ReasonSerializer,
    "responses": {
        200: AgentStateSerializer,
        400: OpenApiResponse(description="No reason given."),
        403: OpenApiResponse(description="Needs the finops or admin role."),
        404: OpenApiResponse(description="No such agent."),
    },
    "tags": ["budgets"],
}


class AgentHaltView(_AgentSwitch):
    halt = True

    @extend_schema(summary="Halt an agent (emergency stop)", **_SCHEMA)
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)


class AgentResumeView(_AgentSwitch):
    halt = False

    @extend_schema(summary="Resume a halted agent", **_SCHEMA)
    def post(self, request: Request, slug: str) -> Response:
        return super().post(request, slug)
