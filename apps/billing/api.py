"""/api/v1/allocation-rules: the ordered allocation rules, for FinOps (finops or admin).

People only (a personal token or a browser session). apps.billing.rules checks every rule, so
the API and the rules page refuse the same things with the same messages. Every change queues
a recompute of the recent months; the response names the run. PUT and PATCH both change
only the fields sent; `position` (0 is tried first) moves a rule.
"""

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import FINOPS, has_role
from apps.billing.models import AllocationRule, AllocationRun, RuleKind, RuleTarget, SplitBasis
from apps.billing.rules import (
    RULE_FIELDS,
    RuleInvalid,
    rule_create,
    rule_data,
    rule_delete,
    rule_index,
    rule_place,
    rule_update,
)

TAGS = ["allocation"]


class FinopsOnly(BasePermission):
    message = "Allocation rules need the finops or admin role (a person's token or session)."

    def has_permission(self, request: Any, view: Any) -> bool:
        return has_role(request.user, FINOPS)


PERMISSIONS = [IsAuthenticated, FinopsOnly]


class RuleSerializer(serializers.Serializer):
    """The shape, for the schema; the checks are apps.billing.rules.rule_clean."""

    id = serializers.IntegerField(read_only=True)
    position = serializers.IntegerField(
        required=False, help_text="0 is tried first; send it to move the rule."
    )
    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=RuleKind.choices)
    enabled = serializers.BooleanField(required=False, default=True)
    tag_key = serializers.CharField(required=False, allow_blank=True, help_text="tag rules")
    target = serializers.ChoiceField(choices=RuleTarget.choices, required=False, allow_blank=True)
    value_map = serializers.DictField(
        child=serializers.CharField(), required=False, help_text="tag value → slug"
    )
    match_provider = serializers.CharField(required=False, allow_blank=True)
    match_service = serializers.CharField(
        required=False, allow_blank=True, help_text="glob, e.g. *Kubernetes*"
    )
    match_tag_key = serializers.CharField(required=False, allow_blank=True)
    match_tag_value = serializers.CharField(required=False, allow_blank=True)
    match_resource = serializers.CharField(
        required=False, allow_blank=True, help_text="regular expression searched in ResourceId"
    )
    split = serializers.ChoiceField(choices=SplitBasis.choices, required=False, allow_blank=True)
    teams = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="team slugs; empty: every team"
    )
    recompute_run = serializers.IntegerField(read_only=True)


def _out(rule: AllocationRule, *, position: int | None = None) -> dict[str, Any]:
    data = rule_data(rule)
    data["id"] = rule.pk
    data["position"] = rule_index(rule) if position is None else position
    return data


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise exceptions.ValidationError({"non_field_errors": ["Send a JSON object."]})
    unknown = sorted(set(request.data) - set(RULE_FIELDS) - {"id", "position"})
    if unknown:
        raise exceptions.ValidationError(
            {
                name: [f"Unknown field; the fields are: {', '.join(RULE_FIELDS)}."]
                for name in unknown
            }
        )
    return dict(request.data)


def _position(data: dict[str, Any]) -> int | None:
    position = data.pop("position", None)
    data.pop("id", None)
    if position is not None and (isinstance(position, bool) or not isinstance(position, int)):
        raise exceptions.ValidationError({"position": ["Send a whole number (0 is first)."]})
    return position


def _latest_run() -> int | None:
    return AllocationRun.objects.order_by("-pk").values_list("pk", flat=True).first()


class RuleListView(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(tags=TAGS, responses=RuleSerializer(many=True))
    def get(self, request: Request) -> Response:
        rules = AllocationRule.objects.prefetch_related("teams").order_by("position", "id")
        return Response([_out(rule, position=n) for n, rule in enumerate(rules)])

    @extend_schema(tags=TAGS, request=RuleSerializer, responses={201: RuleSerializer})
    def post(self, request: Request) -> Response:
        data = _body(request)
        position = _position(data)
        try:
            rule = rule_create(data=data, user=request.user)
        except RuleInvalid as exc:
            raise exceptions.ValidationError(exc.errors) from None
        if position is not None:
            rule_place(rule=rule, position=position, user=request.user)
        return Response({**_out(rule), "recompute_run": _latest_run()}, status=201)


class RuleDetailView(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(tags=TAGS, responses=RuleSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(_out(get_object_or_404(AllocationRule, pk=pk)))

    @extend_schema(tags=TAGS, request=RuleSerializer, responses=RuleSerializer)
    def patch(self, request: Request, pk: int) -> Response:
        rule = get_object_or_404(AllocationRule, pk=pk)
        data = _body(request)
        position = _position(data)
        if data:
            try:
                rule_update(rule=rule, data={**rule_data(rule), **data}, user=request.user)
            except RuleInvalid as exc:
                raise exceptions.ValidationError(exc.errors) from None
        if position is not None:
            rule_place(rule=rule, position=position, user=request.user)
        return Response({**_out(rule), "recompute_run": _latest_run()})

    @extend_schema(tags=TAGS, request=RuleSerializer, responses=RuleSerializer)
    def put(self, request: Request, pk: int) -> Response:
        return self.patch(request, pk)

    @extend_schema(tags=TAGS, responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        rule_delete(rule=get_object_or_404(AllocationRule, pk=pk), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
