from urllib.parse import quote

from django.db import models
from django.utils import timezone


class ActionStatus(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Pending approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXPIRED = "expired", "Expired"
    DENIED = "denied", "Denied by policy"
    RECORDED = "recorded", "Recorded (observe mode)"
    EXECUTING = "executing", "Executing"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ROLLED_BACK = "rolled_back", "Rolled back"
    REPORTED = "reported", "Reported without a proposal"


RISK_ORDER = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def action_path(action_id: str) -> str:
    """The action page's path (actions:detail), for links built without a request."""
    return f"/actions/{quote(action_id, safe='')}/"


class ActionQuerySet(models.QuerySet):
    def visible_to(self, user: object) -> "ActionQuerySet":
        if getattr(user, "is_agent", False):
            return self.filter(agent_id=user.agent.pk)  # type: ignore[attr-defined]
        return self

    def violations(self) -> "ActionQuerySet":
        return self.filter(policy_violation=True)


class Action(models.Model):
    """The read model of one proposed action's life, folded from the events sharing its id.

    Every field is derived from events by an order-independent rule (earliest, or latest by
    (ts, event id)), so events may arrive in any order and be replayed without changing it.
    """

    action_id = models.CharField(max_length=128, unique=True)
    agent = models.ForeignKey("fleet.Agent", on_delete=models.PROTECT, related_name="actions")
    incident_id = models.CharField(max_length=128, null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=ActionStatus.choices, default=ActionStatus.REPORTED
    )

    # From the proposal.
    proposal_event_id = models.UUIDField(null=True, blank=True)
    proposed_at = models.DateTimeField(null=True, blank=True)
    action_type = models.CharField(max_length=128, blank=True)
    target = models.CharField(max_length=1000, blank=True)
    env = models.CharField(max_length=32, blank=True)
    risk = models.CharField(max_length=10, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    rationale = models.TextField(blank=True)
    citations = models.JSONField(default=list, blank=True)
    rollback_plan = models.TextField(blank=True, null=True)
    parameters = models.JSONField(default=dict, blank=True)
    agent_version = models.CharField(max_length=64, blank=True)
    prompt_version = models.CharField(max_length=64, blank=True)
    # SHA-256 of the arguments (type, target, env, parameters): an approval binds to these.
    proposal_hash = models.CharField(max_length=64, blank=True)
    effective_risk = models.CharField(max_length=10, blank=True)
    approvers_required = models.PositiveSmallIntegerField(default=0)
    separation_of_duties = models.BooleanField(default=False)
    matched_rules = models.JSONField(default=list, blank=True)
    # Deadlines set by the policy decision; escalated_at is set once by the escalation sweep.
    escalate_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    # Earliest alert of the action (time to propose starts here).
    first_alert_at = models.DateTimeField(null=True, blank=True)

    # The deciding event: the latest final decision by (ts, id).
    decision = models.CharField(max_length=20, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_event_id = models.UUIDField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    decision_reasons = models.JSONField(default=list, blank=True)
    policy_version = models.CharField(max_length=32, blank=True)
    approvals = models.JSONField(default=list, blank=True)

    execution_started_at = models.DateTimeField(null=True, blank=True)
    execution_finished_at = models.DateTimeField(null=True, blank=True)
    execution_status = models.CharField(max_length=12, blank=True)
    execution_event_id = models.UUIDField(null=True, blank=True)
    rolled_back_at = models.DateTimeField(null=True, blank=True)

    outcome_resolved = models.BooleanField(null=True, blank=True)
    outcome_at = models.DateTimeField(null=True, blank=True)
    outcome_event_id = models.UUIDField(null=True, blank=True)

    verdict_correct = models.BooleanField(null=True, blank=True)
    verdict_at = models.DateTimeField(null=True, blank=True)
    verdict_event_id = models.UUIDField(null=True, blank=True)
    verdict_by = models.CharField(max_length=150, blank=True)

    policy_violation = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = ActionQuerySet.as_manager()

    class Meta:
        ordering = ["-proposed_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-proposed_at"], name="action_status"),
            models.Index(fields=["agent", "-proposed_at"], name="action_agent"),
            models.Index(fields=["incident_id"], name="action_incident"),
            # The list page's default order, and the queue's "decided in the last 24 h" counts.
            models.Index(fields=["-proposed_at", "-id"], name="action_proposed"),
            models.Index(
                fields=["decided_at"],
                condition=models.Q(decided_at__isnull=False),
                name="action_decided",
            ),
            # The sweep finds pending actions past their deadlines without scanning history.
            models.Index(
                fields=["expires_at"],
                condition=models.Q(status="pending_approval"),
                name="action_pending_expiry",
            ),
            # Violations are rare and counted on every page (top bar): a partial index.
            models.Index(
                fields=["policy_violation"],
                condition=models.Q(policy_violation=True),
                name="action_violation",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_type or 'action'} {self.action_id}"


class Incident(models.Model):
    """The read model of one incident (events sharing an incident_id): when its first alert
    came, whose agent saw it, and when an outcome closed it. Derived from events by the SLO
    consumer (apps.slo), rebuildable; the time to propose, recall and MTTR read it."""

    incident_id = models.CharField(max_length=128, unique=True)
    # No database constraint: a rebuild writes every incident, and the constraint's trigger
    # per row bought nothing (the agent's events are PROTECT; Django cascades deletions).
    agent = models.ForeignKey(
        "fleet.Agent", on_delete=models.CASCADE, related_name="incidents", db_constraint=False
    )
    first_alert_at = models.DateTimeField(null=True, blank=True)
    first_alert_event_id = models.UUIDField(null=True, blank=True)
    # The first alert's agent version: recall is counted per version (canaries).
    agent_version = models.CharField(max_length=64, blank=True, default="")
    # The latest outcome by (ts, id) decides; resolved_at is its time when it says resolved.
    outcome_at = models.DateTimeField(null=True, blank=True)
    outcome_event_id = models.UUIDField(null=True, blank=True)
    resolved = models.BooleanField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["outcome_at"], name="incident_outcome")]

    def __str__(self) -> str:
        return self.incident_id
