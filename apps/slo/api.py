"""/api/v1/slos: SLO definitions with their latest status, and OpenSLO v1 import/export.

People only (a personal token or a browser session): viewers read, sre_lead and admin write.
Serializers check shape and types; apps.slo.services checks the rules, so the API, the form and
the OpenSLO import refuse the same things with the same messages.
"""

from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import SRE_LEAD, VIEWER, has_role
from apps.slo.models import SliKind, Slo, SloScope, SloStatus, WindowKind
from apps.slo.openslo import (
    MAX_BYTES,
    OpensloInvalid,
    openslo_export,
    openslo_import,
)
from apps.slo.services import (
    AGENT_VERSION_MAX,
    DEFAULTS,
    DESCRIPTION_MAX,
    EDITABLE_FIELDS,
    NAME_MAX,
    OWNERS_MAX,
    QUERY_MAX_BYTES,
    WEBHOOK_URL_MAX,
    decimal_text,
    duration_format,
    is_duplicate,
    slo_create,
    slo_delete,
    slo_update,
    threshold_unit,
)

TAGS = ["slos"]
YAML_TYPE = "application/yaml"


class SloAccess(BasePermission):
    """Viewers read; sre_lead and admin change. Agents have no business here."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            self.message = "Reading SLOs needs the viewer role (a person's token or session)."
            return has_role(request.user, VIEWER)
        self.message = "Changing SLOs needs the sre_lead or admin role."
        return has_role(request.user, SRE_LEAD)


PERMISSIONS = [IsAuthenticated, SloAccess]


class _Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class _TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


# ---------------------------------------------------------------------------------------------
# Fields


class StrictText(serializers.CharField):
    """Text only: DRF's CharField would quietly turn a number or a list into a string."""

    default_error_messages = {"not_text": "Send text, not {kind}."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_text", kind=_json_kind(data))
        return str(super().to_internal_value(data))


class StrictBool(serializers.BooleanField):
    default_error_messages = {"invalid": "Send true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictInt(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


@extend_schema_field(
    {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "example": "0.999"},
)
class DecimalText(serializers.Field):
    """A decimal as text without trailing zeros ("0.999"); accepts a JSON number or string."""

    default_error_messages = {"invalid": "Send a number (e.g. 0.99)."}

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool) or not isinstance(data, int | float | str) or len(str(data)) > 40:
            self.fail("invalid")
        try:
            number = Decimal(str(data).strip())
        except InvalidOperation:
            self.fail("invalid")
        if not number.is_finite():
            self.fail("invalid")
        return number

    def to_representation(self, value: Any) -> str | None:
        return decimal_text(value)


@extend_schema_field({"type": "string", "example": "24h"})
class DurationText(serializers.Field):
    """A duration as shorthand: 30m, 24h, 2d."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or len(data) > 20:
            raise serializers.ValidationError("Send a duration such as 30m, 24h or 2d.")
        return data

    def to_representation(self, value: Any) -> str:
        return duration_format(value)


def _json_kind(data: Any) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float):
        return "a number"
    if isinstance(data, list):
        return "a list"
    if isinstance(data, dict):
        return "an object"
    return type(data).__name__


# ---------------------------------------------------------------------------------------------
# Serializers


class SloIn(serializers.Serializer):
    """An SLO definition as sent: which fields apply depends on `sli` and `scope`."""

    slug = StrictText(
        max_length=63,
        required=False,
        help_text="Lowercase letters, digits and hyphens; the OpenSLO metadata.name. Fixed.",
    )
    name = StrictText(max_length=NAME_MAX)
    description = StrictText(max_length=DESCRIPTION_MAX, allow_blank=True, required=False)
    sli = serializers.ChoiceField(choices=SliKind.choices)
    scope = serializers.ChoiceField(choices=SloScope.choices, required=False)
    team = StrictText(
        max_length=100,
        allow_null=True,
        allow_blank=True,
        required=False,
        help_text="Team slug (scope team).",
    )
    agent = StrictText(
        max_length=100,
        allow_null=True,
        allow_blank=True,
        required=False,
        help_text="Agent slug (scope agent).",
    )
    agent_version = StrictText(
        max_length=AGENT_VERSION_MAX,
        allow_blank=True,
        required=False,
        help_text="Only this agent version (a canary); agent or team scope.",
    )
    objective = DecimalText(help_text="Ratio of good events, 0.5 to 0.99999.")
    window_kind = serializers.ChoiceField(choices=WindowKind.choices, required=False)
    window_days = StrictInt(required=False, help_text="Rolling windows: 7, 28 or 30.")
    time_zone = StrictText(
        max_length=64, required=False, help_text="IANA zone; calendar-month windows only."
    )
    threshold = DecimalText(
        allow_null=True,
        required=False,
        help_text="time_to_propose: seconds; cost_per_action: USD; energy_per_action: Wh.",
    )
    rollback_window = DurationText(required=False, help_text="Rollback SLI only, e.g. 24h.")
    good_query = StrictText(
        max_length=QUERY_MAX_BYTES, allow_blank=True, required=False, trim_whitespace=False
    )
    total_query = StrictText(
        max_length=QUERY_MAX_BYTES, allow_blank=True, required=False, trim_whitespace=False
    )
    alerting = StrictBool(required=False)
    notify_in_app = StrictBool(required=False)
    notify_email = StrictBool(required=False)
    notify_webhook = StrictBool(required=False)
    webhook_url = StrictText(max_length=WEBHOOK_URL_MAX, allow_blank=True, required=False)
    auto_demote = StrictBool(
        required=False, help_text="A page alert demotes the agent (rollback/accuracy SLIs)."
    )
    owners = serializers.ListField(
        child=StrictText(max_length=150), max_length=OWNERS_MAX, required=False
    )


class SloStatusOut(serializers.ModelSerializer):
    sli = DecimalText(allow_null=True)
    budget_remaining = DecimalText(allow_null=True)
    worst_burn_rate = DecimalText(allow_null=True)
    burn_rates = serializers.DictField(child=serializers.FloatField(allow_null=True))

    class Meta:
        model = SloStatus
        fields = [
            "state",
            "sli",
            "budget_remaining",
            "burn_rates",
            "worst_burn_rate",
            "good",
            "total",
            "window_start",
            "evaluated_at",
        ]


class SloOut(serializers.ModelSerializer):
    team: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    agent: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    objective = DecimalText()
    threshold = DecimalText(allow_null=True)
    threshold_unit = serializers.SerializerMethodField(
        help_text="seconds, USD or Wh; empty when the SLI takes no threshold."
    )
    rollback_window = DurationText()
    owners = serializers.SerializerMethodField(help_text="Usernames, sorted.")
    status = serializers.SerializerMethodField(help_text="The latest evaluation, if any.")

    class Meta:
        model = Slo
        fields = [
            *EDITABLE_FIELDS,
            "threshold_unit",
            "revision",
            "created_by",
            "created_at",
            "updated_at",
            "status",
        ]

    def get_threshold_unit(self, slo: Slo) -> str:
        return threshold_unit(slo.sli)

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_owners(self, slo: Slo) -> list[str]:
        # Sorted in Python: the prefetched owners are in primary-key order.
        return sorted(owner.get_username() for owner in slo.owners.all())

    @extend_schema_field(SloStatusOut(allow_null=True))
    def get_status(self, slo: Slo) -> dict[str, Any] | None:
        try:
            latest = slo.status
        except SloStatus.DoesNotExist:
            return None
        return dict(SloStatusOut(latest).data)


ErrorsOut = inline_serializer(
    "SloErrors",
    fields={
        "error": serializers.CharField(),
        "status": serializers.IntegerField(),
        "detail": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
    },
)
OpensloErrorsOut = inline_serializer(
    "OpensloErrors",
    fields={
        "error": serializers.CharField(),
        "status": serializers.IntegerField(),
        "errors": serializers.ListField(
            child=inline_serializer(
                "OpensloError",
                fields={
                    "document": serializers.IntegerField(),
                    "path": serializers.CharField(),
                    "message": serializers.CharField(),
                },
            )
        ),
    },
)
OpensloImportOut = inline_serializer(
    "OpensloImport",
    fields={
        "created": serializers.ListField(child=serializers.CharField()),
        "updated": serializers.ListField(child=serializers.CharField()),
        "unchanged": serializers.ListField(child=serializers.CharField()),
        "skipped": serializers.ListField(child=serializers.CharField()),
        "dry_run": serializers.BooleanField(),
    },
)


# ---------------------------------------------------------------------------------------------
# Helpers


def slos_queryset() -> QuerySet[Slo]:
    return (
        Slo.objects.select_related("team", "agent", "agent__team", "status")
        .prefetch_related("owners")
        .order_by("slug")
    )


def _has_nul(*values: str | None) -> bool:
    # PostgreSQL refuses NUL in text parameters; no slug contains one, so it matches nothing.
    return any(value and "\x00" in value for value in values)


def _slo_or_404(slug: str) -> Slo:
    slo = None if _has_nul(slug) else slos_queryset().filter(slug=slug[:63]).first()
    if slo is None:
        raise exceptions.NotFound(f"There is no SLO “{slug[:63]}”.")
    return slo


def _fields(request: Request, *, partial: bool) -> dict[str, Any]:
    """The request's fields, shape-checked; unknown fields are refused, not ignored."""
    data = request.data
    if not isinstance(data, dict):
        raise exceptions.ValidationError(
            {"non_field_errors": [f"Send a JSON object, not {_json_kind(data)}."]}
        )
    known = set(SloIn().fields)
    unknown = sorted(str(k)[:64] for k in data if k not in known)
    if unknown:
        raise exceptions.ValidationError(
            {name: [f"Unknown field; an SLO has: {', '.join(sorted(known))}."] for name in unknown}
        )
    given = SloIn(data=data, partial=partial)
    given.is_valid(raise_exception=True)
    return {name: given.validated_data[name] for name in data}


def _service_error(exc: ValidationError) -> exceptions.APIException:
    if is_duplicate(exc):
        return _Conflict(exc.message_dict["slug"][0])
    if hasattr(exc, "error_dict"):
        return exceptions.ValidationError(exc.message_dict)
    return exceptions.ValidationError({"non_field_errors": exc.messages})


def _out(slo: Slo) -> dict[str, Any]:
    return dict(SloOut(slos_queryset().get(pk=slo.pk)).data)


# ---------------------------------------------------------------------------------------------
# Views


class SloListCreateView(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(
        summary="SLOs with their latest status, by slug",
        parameters=[
            OpenApiParameter(
                "team", str, description="A team's slug: its SLOs and its agents' SLOs."
            ),
            OpenApiParameter("agent", str, description="An agent's slug: SLOs scoped to it."),
            OpenApiParameter("sli", str, enum=SliKind.values, description="One SLI kind."),
        ],
        responses={200: SloOut(many=True), 400: OpenApiResponse(description="Bad filter.")},
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        slos = slos_queryset()
        team = request.query_params.get("team")
        agent = request.query_params.get("agent")
        if _has_nul(team, agent):
            return Response([])
        sli = request.query_params.get("sli")
        if team:
            slos = slos.filter(Q(team__slug=team) | Q(agent__team__slug=team))
        if agent:
            slos = slos.filter(agent__slug=agent)
        if sli:
            if sli not in SliKind.values:
                raise exceptions.ValidationError(
                    {"sli": [f"Choose one of: {', '.join(SliKind.values)}."]}
                )
            slos = slos.filter(sli=sli)
        return Response(SloOut(slos, many=True).data)

    @extend_schema(
        summary="Define an SLO",
        description=(
            "Fields that do not apply to the SLI or scope are refused (e.g. a threshold on an "
            "acceptance SLO). Rollups are computed from the stored facts at once."
        ),
        request=SloIn,
        responses={
            201: SloOut,
            400: OpenApiResponse(ErrorsOut, description="Errors per field."),
            403: OpenApiResponse(description="Needs the sre_lead or admin role."),
            409: OpenApiResponse(description="An SLO with this slug exists."),
        },
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        fields = _fields(request, partial=False)
        try:
            slo = slo_create(by=request.user, **fields)
        except ValidationError as exc:
            raise _service_error(exc) from exc
        return Response(_out(slo), status=status.HTTP_201_CREATED)


class SloDetailView(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(
        summary="One SLO with its latest status",
        responses={200: SloOut, 404: OpenApiResponse(description="No such SLO.")},
        tags=TAGS,
    )
    def get(self, request: Request, slug: str) -> Response:
        return Response(SloOut(_slo_or_404(slug)).data)

    @extend_schema(
        summary="Replace an SLO's definition",
        description=(
            "The whole definition: optional fields left out take their defaults. Changing what "
            "the SLO counts (SLI, scope, threshold, queries…) bumps `revision` and recomputes "
            "its rollups. The slug cannot change."
        ),
        request=SloIn,
        responses={
            200: SloOut,
            400: OpenApiResponse(ErrorsOut, description="Errors per field."),
            403: OpenApiResponse(description="Needs the sre_lead or admin role."),
            404: OpenApiResponse(description="No such SLO."),
        },
        tags=TAGS,
    )
    def put(self, request: Request, slug: str) -> Response:
        slo = _slo_or_404(slug)
        fields = _fields(request, partial=False)
        return self._update(request, slo, {**DEFAULTS, **fields})

    @extend_schema(
        summary="Change some of an SLO's fields",
        request=SloIn(partial=True),
        responses={
            200: SloOut,
            400: OpenApiResponse(ErrorsOut, description="Errors per field."),
            403: OpenApiResponse(description="Needs the sre_lead or admin role."),
            404: OpenApiResponse(description="No such SLO."),
        },
        tags=TAGS,
    )
    def patch(self, request: Request, slug: str) -> Response:
        slo = _slo_or_404(slug)
        return self._update(request, slo, _fields(request, partial=True))

    @extend_schema(
        summary="Delete an SLO with its rollups, status and alerts",
        request=None,
        responses={
            204: OpenApiResponse(description="Deleted."),
            403: OpenApiResponse(description="Needs the sre_lead or admin role."),
            404: OpenApiResponse(description="No such SLO."),
        },
        tags=TAGS,
    )
    def delete(self, request: Request, slug: str) -> Response:
        slo_delete(_slo_or_404(slug), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _update(request: Request, slo: Slo, fields: dict[str, Any]) -> Response:
        try:
            updated = slo_update(slo, by=request.user, **fields)
        except ValidationError as exc:
            raise _service_error(exc) from exc
        return Response(_out(updated))


class SloOpensloView(APIView):
    permission_classes = PERMISSIONS
    # The body is YAML, read raw: no DRF parser should try (and fail) to decode it first.
    parser_classes: list[Any] = []

    @extend_schema(
        summary="Export SLOs as OpenSLO v1 YAML",
        parameters=[OpenApiParameter("slo", str, description="One SLO's slug (default: all).")],
        responses={
            (200, YAML_TYPE): OpenApiResponse(OpenApiTypes.STR, description="OpenSLO v1 YAML."),
            404: OpenApiResponse(description="No such SLO."),
        },
        tags=TAGS,
    )
    def get(self, request: Request) -> HttpResponse:
        slug = request.query_params.get("slo")
        slos = [_slo_or_404(slug)] if slug else list(slos_queryset())
        response = HttpResponse(openslo_export(slos), content_type=f"{YAML_TYPE}; charset=utf-8")
        response["Content-Disposition"] = 'inline; filename="slos.openslo.yaml"'
        return response

    @extend_schema(
        summary="Import OpenSLO v1 YAML: create or update SLOs by metadata.name",
        description=(
            "The body is the YAML (Content-Type application/yaml), one or more documents. "
            "All or nothing: any invalid SLO document refuses the whole file, each error naming "
            "its document and field. Service, SLI, DataSource and alerting documents are "
            f"skipped with a note. At most {MAX_BYTES // 1024} KB. `?dry_run=1` reports "
            "without saving."
        ),
        parameters=[OpenApiParameter("dry_run", bool, description="Check only; save nothing.")],
        request={YAML_TYPE: OpenApiTypes.STR},
        responses={
            200: OpensloImportOut,
            400: OpenApiResponse(OpensloErrorsOut, description="Not valid; nothing saved."),
            403: OpenApiResponse(description="Needs the sre_lead or admin role."),
            413: OpenApiResponse(description=f"Over {MAX_BYTES // 1024} KB."),
        },
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > MAX_BYTES:
            raise _TooLarge(
                f"The file is {length // 1024} KB; the limit is {MAX_BYTES // 1024} KB. "
                "Split it into several imports."
            )
        dry_run = request.query_params.get("dry_run", "") in ("1", "true", "yes")
        try:
            result = openslo_import(request.body, by=request.user, dry_run=dry_run)
        except OpensloInvalid as exc:
            return Response(
                {
                    "error": "The OpenSLO file is not valid; nothing was saved.",
                    "status": 400,
                    "errors": [
                        {"document": e.document, "path": e.path, "message": e.message}
                        for e in exc.errors
                    ],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(result.as_dict())
