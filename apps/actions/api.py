import threading
import time
from typing import Any, cast

from django.conf import settings
from django.db import close_old_connections
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.authentication import AgentPrincipal
from apps.accounts.permissions import HasRole, scope_permission
from apps.accounts.roles import APPROVER, VIEWER
from apps.actions.decide import DecisionRefused, action_decide
from apps.actions.models import Action, ActionStatus
from apps.actions.propose import ProposalAnswer, ProposalRejected, action_propose, proposal_decode
from apps.fleet.models import TokenScope

MAX_WAIT_SECONDS = 60
POLL_SECONDS = 0.5
# Sleeping long-polls must never take every thread of a worker: past this many per process a
# poll answers at once with Retry-After, and the agent asks again.
_LONG_POLL_SLOTS = threading.BoundedSemaphore(settings.LONG_POLL_SLOTS)

ActionsPropose = scope_permission(
    TokenScope.ACTIONS_PROPOSE,
    people_message="Agents propose actions: use an agent token with the actions:propose scope.",
)
ActionsRead = scope_permission(TokenScope.ACTIONS_PROPOSE, VIEWER)


class HasApproverRole(HasRole):
    roles = (APPROVER,)
    message = "Deciding actions needs the approver role."


DecisionSerializer = inline_serializer(
    "ActionDecision",
    fields={
        "action_id": serializers.CharField(),
        "status": serializers.ChoiceField(choices=ActionStatus.choices),
        "reasons": serializers.ListField(
            child=serializers.CharField(), help_text="Human-readable."
        ),
        "policy_version": serializers.IntegerField(allow_null=True),
        "effective_risk": serializers.CharField(),
        "approvers_required": serializers.IntegerField(),
        "matched_rules": serializers.ListField(child=serializers.CharField()),
    },
)


class _Locked(exceptions.APIException):
    status_code = status.HTTP_423_LOCKED
    default_code = "halted"


class _Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class _Throttled(exceptions.APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "throttled"

    def __init__(self, message: str, wait: int) -> None:
        super().__init__(message)
        # DRF's handler turns `wait` into the Retry-After header.
        self.wait = wait


def _raise(exc: ProposalRejected) -> None:
    if exc.status == 423:
        raise _Locked(exc.message)
    if exc.status == 429:
        raise _Throttled(exc.message, exc.retry_after or 1)
    if exc.status == 409:
        raise _Conflict(exc.message)
    raise exceptions.ValidationError(exc.detail or {"non_field_errors": [exc.message]})


class ActionProposeView(APIView):
    parser_classes: list[Any] = []
    permission_classes = [IsAuthenticated, ActionsPropose]

    @extend_schema(
        summary="Propose an action and get the policy's decision",
        description=(
            "Evaluates the active policy, the agent's autonomy mode and its halted state. "
            "`approved`: run it now. `pending_approval`: wait (poll GET with ?wait=). "
            "`denied`: never. `recorded`: observe mode, never run. The same action_id with the "
            "same arguments returns the same answer (200); other arguments give 409. A halted "
            "agent gets 423; one over a fired budget throttle gets 429 with `Retry-After`."
        ),
        request={"application/json": {"$ref": "#/components/schemas/ProposalIn"}},
        responses={
            201: DecisionSerializer,
            200: DecisionSerializer,
            400: OpenApiResponse(description="The proposal is not valid (errors per field)."),
            409: OpenApiResponse(description="The action_id was proposed with other arguments."),
            423: OpenApiResponse(description="The agent is halted."),
            429: OpenApiResponse(
                description=(
                    "Throttled: a throttle threshold of an active budget covering the agent "
                    "(measuring actions or cloud spend) has fired this period, and the agent "
                    "proposed its `per_minute` or more actions in the last 60 s. The message "
                    "names the budget and the limit; `Retry-After` gives the seconds until one "
                    "more fits. A retry of an already stored action_id is still answered."
                )
            ),
        },
        parameters=[
            OpenApiParameter(
                "Retry-After",
                int,
                location=OpenApiParameter.HEADER,
                response=[429],
                description="Seconds until a proposal fits under the budget's throttle.",
            )
        ],
        tags=["actions"],
    )
    def post(self, request: Request) -> Response:
        if (request.content_type or "").split(";")[0].strip() != "application/json":
            raise exceptions.UnsupportedMediaType(request.content_type or "none")
        # Loaded with its team by the token lookup; the halted flag and autonomy mode are read
        # again inside the decision's transaction.
        agent = cast(AgentPrincipal, request.user).agent
        try:
            answer = action_propose(agent=agent, proposal=proposal_decode(request.body))
        except ProposalRejected as exc:
            _raise(exc)
            raise  # unreachable: _raise always raises
        code = status.HTTP_201_CREATED if answer.created else status.HTTP_200_OK
        return Response(answer.as_dict(), status=code)


class ActionDetailView(APIView):
    permission_classes = [IsAuthenticated, ActionsRead]

    @extend_schema(
        summary="An action's status, optionally waiting for a decision",
        parameters=[
            OpenApiParameter(
                "wait", int, description=f"Seconds (≤ {MAX_WAIT_SECONDS}) to wait while pending."
            )
        ],
        responses={200: DecisionSerializer, 404: OpenApiResponse(description="No such action.")},
        tags=["actions"],
    )
    def get(self, request: Request, action_id: str) -> Response:
        try:
            wait = min(max(float(request.query_params.get("wait", 0)), 0), MAX_WAIT_SECONDS)
        except ValueError as exc:
            raise exceptions.ValidationError({"wait": ["A number of seconds."]}) from exc
        action = self._visible(request, action_id)
        if action.status != ActionStatus.PENDING_APPROVAL or wait <= 0:
            return Response(ProposalAnswer(action, created=False).as_dict())
        if not _LONG_POLL_SLOTS.acquire(blocking=False):
            return Response(
                ProposalAnswer(action, created=False).as_dict(), headers={"Retry-After": "2"}
            )
        try:
            deadline = time.monotonic() + wait
            while action.status == ActionStatus.PENDING_APPROVAL and time.monotonic() < deadline:
                # The database connection is released while the thread sleeps.
                close_old_connections()
                time.sleep(POLL_SECONDS)
                action = self._visible(request, action_id)
        finally:
            _LONG_POLL_SLOTS.release()
        return Response(ProposalAnswer(action, created=False).as_dict())

    @staticmethod
    def _visible(request: Request, action_id: str) -> Action:
        action = Action.objects.visible_to(request.user).filter(action_id=action_id).first()
        if action is None:
            raise exceptions.NotFound(f"No action {action_id!r}.")
        return action


class DecisionInSerializer(serializers.Serializer):
    reason = serializers.CharField(
        required=False, allow_blank=True, max_length=2000, help_text="Required to reject."
    )
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class ActionDecideView(APIView):
    """Approve or reject a pending action as a person (approver role), e.g. from a chat bot."""

    permission_classes = [IsAuthenticated, HasApproverRole]

    @extend_schema(
        summary="Approve or reject a pending action",
        operation_id="actions_decide",
        request=DecisionInSerializer,
        responses={200: DecisionSerializer, 409: OpenApiResponse(description="Already decided.")},
        tags=["actions"],
    )
    def post(self, request: Request, action_id: str, verdict: str) -> Response:
        given = DecisionInSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            outcome = action_decide(
                action_id=action_id,
                user=request.user,
                approve=verdict == "approve",
                reason=given.validated_data.get("reason", ""),
                comment=given.validated_data.get("comment", ""),
            )
        except DecisionRefused as exc:
            raise _Conflict(str(exc)) from exc
        body = ProposalAnswer(outcome.action, created=False).as_dict()
        body["votes"], body["votes_required"] = outcome.votes, outcome.required
        return Response(body)
