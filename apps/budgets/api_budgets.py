"""/api/v1/budgets: budgets kept in code (personal token or session; finops edits, finops and
SRE leads read)."""

from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import FINOPS, SRE_LEAD, has_role
from apps.budgets.models import (
    Budget,
    BudgetMeasure,
    BudgetPeriod,
    BudgetScope,
    ThresholdAction,
)
from apps.budgets.selectors import budget_standing
from apps.budgets.services import DEFAULT_THROTTLE_PER_MINUTE, budget_save
from apps.fleet.models import Agent, Team

TAGS = ["budgets"]
# A budget's own fields, in the order the API and the form show them.
BUDGET_FIELDS = (
    "slug",
    "name",
    "scope",
    "team",
    "agent",
    "model_pattern",
    "measure",
    "currency",
    "period",
    "rolling_days",
    "time_zone",
    "cap",
    "active",
)


class BudgetAccess(BasePermission):
    message = "Budgets are read by finops and SRE leads and edited by finops (or admin)."

    def has_permission(self, request: Any, view: Any) -> bool:
        if getattr(request.user, "is_agent", False):
            return False
        if request.method in SAFE_METHODS:
            return has_role(request.user, FINOPS, SRE_LEAD)
        return has_role(request.user, FINOPS)


class ThresholdIn(serializers.Serializer):
    percent = serializers.DecimalField(
        max_digits=6,
        decimal_places=2,
        min_value=Decimal("0.01"),
        max_value=Decimal(1000),
        error_messages={
            "min_value": "A threshold is a percentage of the cap above 0.",
            "max_value": "A threshold is at most 1,000 % of the cap.",
        },
    )
    action = serializers.ChoiceField(choices=ThresholdAction.choices)
    per_minute = serializers.IntegerField(
        min_value=1, max_value=100_000, required=False, allow_null=True
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["action"] == ThresholdAction.THROTTLE and not data.get("per_minute"):
            data["per_minute"] = DEFAULT_THROTTLE_PER_MINUTE
        if data["action"] != ThresholdAction.THROTTLE and data.get("per_minute"):
            raise serializers.ValidationError({"per_minute": "Only a throttle has a rate."})
        return data


class BudgetIn(serializers.Serializer):
    slug = serializers.SlugField(max_length=64)
    name = serializers.CharField(max_length=200)
    scope = serializers.ChoiceField(choices=BudgetScope.choices)
    team = serializers.SlugField(required=False, allow_null=True, help_text="A team's slug.")
    agent = serializers.SlugField(required=False, allow_null=True, help_text="An agent's slug.")
    model_pattern = serializers.CharField(max_length=200, required=False, allow_blank=True)
    measure = serializers.ChoiceField(choices=BudgetMeasure.choices)
    currency = serializers.RegexField(r"^[A-Z]{3}$", required=False, default="USD")
    period = serializers.ChoiceField(choices=BudgetPeriod.choices)
    rolling_days = serializers.IntegerField(
        min_value=1, max_value=366, required=False, allow_null=True
    )
    time_zone = serializers.CharField(max_length=64, required=False, default="UTC")
    cap = serializers.DecimalField(
        max_digits=24,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        error_messages={"min_value": "The cap is an amount above 0."},
    )
    active = serializers.BooleanField(required=False, default=True)
    thresholds = ThresholdIn(many=True, required=False)

    def validate_time_zone(self, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise serializers.ValidationError(
                f"{value!r} is not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)."
            ) from None
        return value

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, str] = {}
        scope = data["scope"]
        team_slug, agent_slug = data.get("team"), data.get("agent")
        if scope == BudgetScope.TEAM and not team_slug:
            errors["team"] = "A team budget names its team."
        if scope == BudgetScope.AGENT and not agent_slug:
            errors["agent"] = "An agent budget names its agent."
        if scope == BudgetScope.MODEL and not data.get("model_pattern"):
            errors["model_pattern"] = "A model budget names a model, or a prefix ending in *."
        if scope in (BudgetScope.GLOBAL, BudgetScope.AGENT) and team_slug:
            errors["team"] = f"A {scope} budget has no team."
        if scope != BudgetScope.AGENT and agent_slug:
            errors["agent"] = f"A {scope} budget has no agent."
        if scope != BudgetScope.MODEL and data.get("model_pattern"):
            errors["model_pattern"] = "Only a model budget has a model pattern."
        if data["period"] == BudgetPeriod.ROLLING and not data.get("rolling_days"):
            errors["rolling_days"] = "A rolling budget says how many days (1 to 366)."
        if data["period"] != BudgetPeriod.ROLLING and data.get("rolling_days"):
            errors["rolling_days"] = "Only a rolling budget has a number of days."
        if data["measure"] != BudgetMeasure.CLOUD_COST and data.get("currency", "USD") != "USD":
            errors["currency"] = (
                "Only cloud spend is counted in a bill's currency; LLM spend is USD."
            )
        if team_slug and "team" not in errors:
            data["team"] = Team.objects.filter(slug=team_slug).first()
            if data["team"] is None:
                errors["team"] = f"No team {team_slug!r}."
        if agent_slug and "agent" not in errors:
            data["agent"] = Agent.objects.filter(slug=agent_slug).first()
            if data["agent"] is None:
                errors["agent"] = f"No agent {agent_slug!r}."
        seen = set()
        for t in data.get("thresholds") or []:
            key = (t["percent"], t["action"])
            if key in seen:
                errors["thresholds"] = f"{t['percent']} % {t['action']} is listed twice."
            seen.add(key)
        if errors:
            raise serializers.ValidationError(errors)
        return data


class BudgetOut(serializers.ModelSerializer):
    team: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    agent: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    thresholds = serializers.SerializerMethodField()
    standing = serializers.SerializerMethodField()

    class Meta:
        model = Budget
        fields = [*BUDGET_FIELDS, "thresholds", "standing"]

    def get_thresholds(self, budget: Budget) -> list[dict[str, Any]]:
        return [
            {
                "percent": f"{t.percent.normalize():f}",
                "action": t.action,
                "per_minute": t.per_minute,
            }
            for t in budget.thresholds.all()
        ]

    def get_standing(self, budget: Budget) -> dict[str, Any]:
        s = budget_standing(budget)
        return {
            "period_first_day": s.first_day.isoformat(),
            "period_last_day": s.last_day.isoformat(),
            "counted": f"{s.spent.normalize():f}",
            "cap_with_allowances": f"{s.cap.normalize():f}",
        }


def _saved(budget: Budget | None, data: dict[str, Any], by: Any) -> Budget:
    try:
        return budget_save(budget, data, by)
    except DjangoValidationError as exc:
        raise exceptions.ValidationError(exc.message_dict) from exc


def _queryset() -> Any:
    return Budget.objects.select_related("team", "agent").prefetch_related("thresholds")


class BudgetListCreateView(APIView):
    permission_classes = [IsAuthenticated, BudgetAccess]

    @extend_schema(
        summary="Budgets and where each stands", responses={200: BudgetOut(many=True)}, tags=TAGS
    )
    def get(self, request: Request) -> Response:
        return Response(BudgetOut(_queryset(), many=True).data)

    @extend_schema(
        summary="Create a budget",
        description="Without `thresholds`, the defaults: 50 % and 80 % notify, 90 % throttle, 100 % halt.",
        request=BudgetIn,
        responses={201: BudgetOut, 400: OpenApiResponse(description="Errors per field.")},
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        incoming = BudgetIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        budget = _saved(None, dict(incoming.validated_data), request.user)
        return Response(
            BudgetOut(_queryset().get(pk=budget.pk)).data, status=status.HTTP_201_CREATED
        )


class BudgetDetailView(APIView):
    permission_classes = [IsAuthenticated, BudgetAccess]

    @extend_schema(summary="One budget", responses={200: BudgetOut}, tags=TAGS)
    def get(self, request: Request, slug: str) -> Response:
        return Response(BudgetOut(get_object_or_404(_queryset(), slug=slug)).data)

    @extend_schema(
        summary="Replace a budget's definition (mid-period: the new cap applies at the next counted event)",
        request=BudgetIn,
        responses={200: BudgetOut, 400: OpenApiResponse(description="Errors per field.")},
        tags=TAGS,
    )
    def put(self, request: Request, slug: str) -> Response:
        budget = get_object_or_404(Budget, slug=slug)
        incoming = BudgetIn(data=request.data)
        incoming.is_valid(raise_exception=True)
        if incoming.validated_data["slug"] != slug:
            raise exceptions.ValidationError({"slug": ["The slug cannot change."]})
        _saved(budget, dict(incoming.validated_data), request.user)
        return Response(BudgetOut(_queryset().get(pk=budget.pk)).data)
