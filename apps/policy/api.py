"""/api/v1/policies: versions, activation (and rollback) and the shadow, for people's tokens."""

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import SRE_LEAD, VIEWER, has_role
from apps.policy.models import PolicyShadow, PolicyVersion
from apps.policy.schema import MAX_SOURCE_BYTES, PolicyInvalid
from apps.policy.selectors import (
    policy_active_version,
    policy_version_get,
    policy_versions,
    shadow_summary,
)
from apps.policy.services import (
    PolicyRefused,
    policy_shadow_start,
    policy_shadow_stop,
    policy_version_activate,
    policy_version_create,
)

TAGS = ["policies"]


class PolicyAccess(BasePermission):
    """Viewers read; sre_lead and admin change. Agents have no business here."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            self.message = "Reading the policy needs the viewer role (a person's token)."
            return has_role(request.user, VIEWER)
        self.message = "Changing the policy needs the sre_lead or admin role."
        return has_role(request.user, SRE_LEAD)


PERMISSIONS = [IsAuthenticated, PolicyAccess]


class _TooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class _Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class PolicyVersionOut(serializers.ModelSerializer):
    class Meta:
        model = PolicyVersion
        fields = [
            "number",
            "active",
            "note",
            "created_by",
            "created_at",
            "activated_at",
            "activated_by",
            "sha256",
        ]


class PolicyVersionDetailOut(PolicyVersionOut):
    class Meta(PolicyVersionOut.Meta):
        fields = [*PolicyVersionOut.Meta.fields, "source"]


class YamlText(serializers.CharField):
    """Text only: DRF's CharField would quietly turn a number or a boolean into a string."""

    default_error_messages = {"not_text": "Send the policy as a string of YAML, not {kind}."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_text", kind=type(data).__name__)
        return str(super().to_internal_value(data))


class PolicyCreateIn(serializers.Serializer):
    # The field is called `source` in the API; it shadows Field.source only for type checkers.
    source = YamlText(  # type: ignore[assignment]
        trim_whitespace=False, help_text=f"The policy as YAML, at most {MAX_SOURCE_BYTES} bytes."
    )
    note = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="", help_text="Why this version."
    )
    activate = serializers.BooleanField(
        default=False, help_text="Make it the active policy at once (default: a draft)."
    )


PolicyErrorsOut = inline_serializer(
    "PolicyErrors",
    fields={
        "error": serializers.CharField(),
        "status": serializers.IntegerField(),
        "errors": serializers.ListField(
            child=inline_serializer(
                "PolicyError",
                fields={
                    "line": serializers.IntegerField(allow_null=True),
                    "path": serializers.CharField(),
                    "message": serializers.CharField(),
                },
            )
        ),
    },
)


def _version_or_404(number: int) -> PolicyVersion:
    version = policy_version_get(number)
    if version is None:
        raise exceptions.NotFound(f"There is no policy version {number}.")
    return version


def _user(request: Request) -> str:
    return str(getattr(request.user, "username", ""))


def policy_invalid_response(exc: PolicyInvalid) -> Response:
    return Response(
        {
            "error": "The policy is not valid; nothing was saved.",
            "status": 400,
            "errors": [{"line": e.line, "path": e.path, "message": e.message} for e in exc.errors],
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


class PolicyListCreateView(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(
        summary="Policy versions, newest first",
        responses={200: PolicyVersionOut(many=True)},
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        return Response(PolicyVersionOut(policy_versions(), many=True).data)

    @extend_schema(
        summary="Store a new policy version (a draft unless activate is true)",
        description=(
            "Validates the YAML; errors name their line. Sending the text of the active version "
            "again changes nothing and answers 200 with that version (so a deploy can load the "
            "policy from git every time)."
        ),
        request=PolicyCreateIn,
        responses={
            201: PolicyVersionDetailOut,
            200: OpenApiResponse(
                PolicyVersionDetailOut, description="Same text as the active version: no change."
            ),
            400: OpenApiResponse(PolicyErrorsOut, description="Not a valid policy."),
            403: OpenApiResponse(description="Needs the sre_lead or admin role."),
            413: OpenApiResponse(description=f"The source is over {MAX_SOURCE_BYTES} bytes."),
        },
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        given = PolicyCreateIn(data=request.data)
        given.is_valid(raise_exception=True)
        source: str = given.validated_data["source"]
        size = len(source.encode("utf-8", "surrogatepass"))
        if size > MAX_SOURCE_BYTES:
            raise _TooLarge(
                f"The policy is {size} bytes; the limit is {MAX_SOURCE_BYTES} bytes "
                f"({MAX_SOURCE_BYTES // 1024} KB). Split out comments or unused rules."
            )
        try:
            version, created = policy_version_create(
                source=source,
                created_by=_user(request),
                note=given.validated_data["note"],
                activate=given.validated_data["activate"],
            )
        except PolicyInvalid as exc:
            return policy_invalid_response(exc)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(PolicyVersionDetailOut(version).data, status=code)


class PolicyActiveView(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(
        summary="The active policy version, with its source",
        responses={
            200: PolicyVersionDetailOut,
            404: OpenApiResponse(description="No policy loaded yet."),
        },
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        version = policy_active_version()
        if version is None:
            raise exceptions.NotFound(
                "No policy is active yet; every action asks a person until one is."
            )
        return Response(PolicyVersionDetailOut(version).data)


class PolicyDetailView(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(
        summary="One policy version, with its source",
        responses={
            200: PolicyVersionDetailOut,
            404: OpenApiResponse(description="No such version."),
        },
        tags=TAGS,
    )
    def get(self, request: Request, number: int) -> Response:
        return Response(PolicyVersionDetailOut(_version_or_404(number)).data)


class PolicyActivateView(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(
        summary="Make a version the active policy (rollback when it is an older one)",
        request=None,
        responses={
            200: PolicyVersionOut,
            403: OpenApiResponse(description="Needs the sre_lead or admin role."),
            404: OpenApiResponse(description="No such version."),
        },
        tags=TAGS,
    )
    def post(self, request: Request, number: int) -> Response:
        version = policy_version_activate(
            version=_version_or_404(number), activated_by=_user(request)
        )
        return Response(PolicyVersionOut(version).data)


class ShadowOut(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number")

    class Meta:
        model = PolicyShadow
        fields = [
            "version",
            "agents",
            "running",
            "started_by",
            "started_at",
            "stopped_by",
            "stopped_at",
        ]


class ShadowStartIn(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, help_text="A saved, inactive version.")
    agents = serializers.ListField(
        child=serializers.SlugField(max_length=64),
        min_length=1,
        max_length=500,
        help_text="Slugs of the agents whose proposals the shadow evaluates.",
    )


ShadowStateOut = inline_serializer(
    "PolicyShadowState",
    fields={
        "shadow": ShadowOut(allow_null=True),
        "evaluated": serializers.IntegerField(help_text="Proposals the shadow evaluated."),
        "differing": serializers.IntegerField(help_text="Of which decided differently."),
    },
)


class PolicyShadowView(APIView):
    permission_classes = PERMISSIONS

    @extend_schema(
        summary="The running (else the latest) shadow and how often it disagreed",
        responses={200: ShadowStateOut},
        tags=TAGS,
    )
    def get(self, request: Request) -> Response:
        summary = shadow_summary(limit=0)
        return Response(
            {
                "shadow": ShadowOut(summary.shadow).data if summary.shadow else None,
                "evaluated": summary.evaluated,
                "differing": summary.differing,
            }
        )

    @extend_schema(
        summary="Start evaluating a draft version beside the active policy for some agents",
        description="Other opsdash processes pick the change up within a few seconds.",
        request=ShadowStartIn,
        responses={
            201: ShadowOut,
            400: OpenApiResponse(description="Unknown version or agent, or the active version."),
            409: OpenApiResponse(description="A shadow is already running."),
        },
        tags=TAGS,
    )
    def post(self, request: Request) -> Response:
        given = ShadowStartIn(data=request.data)
        given.is_valid(raise_exception=True)
        number = given.validated_data["version"]
        version = policy_version_get(number)
        if version is None:
            raise exceptions.ValidationError({"version": [f"There is no policy version {number}."]})
        try:
            shadow = policy_shadow_start(
                version=version, agents=given.validated_data["agents"], started_by=_user(request)
            )
        except PolicyRefused as exc:
            if "already running" in str(exc):
                raise _Conflict(str(exc)) from exc
            raise exceptions.ValidationError({"non_field_errors": [str(exc)]}) from exc
        return Response(ShadowOut(shadow).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Stop the running shadow (its recorded decisions stay)",
        request=None,
        responses={200: ShadowOut, 404: OpenApiResponse(description="No shadow is running.")},
        tags=TAGS,
    )
    def delete(self, request: Request) -> Response:
        shadow = policy_shadow_stop(stopped_by=_user(request))
        if shadow is None:
            raise exceptions.NotFound("No shadow is running.")
        return Response(ShadowOut(shadow).data)
