from django.db import models
from django.utils import timezone


class EventType(models.TextChoices):
    ALERT = "alert"
    CONTEXT = "context"
    LLM_CALL = "llm_call"
    TOOL_CALL = "tool_call"
    EXECUTION = "execution"
    ROLLBACK = "rollback"
    OUTCOME = "outcome"
    NOTE = "note"
    PROPOSAL = "proposal"
    POLICY_DECISION = "policy_decision"
    APPROVAL = "approval"
    VERDICT = "verdict"
    HALT = "halt"
    RESUME = "resume"
    BUDGET_THRESHOLD = "budget_threshold"
    AUTONOMY_CHANGE = "autonomy_change"
    TOKEN_CHANGE = "token_change"


AGENT_WRITABLE_TYPES = frozenset(
    {
        EventType.ALERT,
        EventType.CONTEXT,
        EventType.LLM_CALL,
        EventType.TOOL_CALL,
        EventType.EXECUTION,
        EventType.ROLLBACK,
        EventType.OUTCOME,
        EventType.NOTE,
    }
)


class EventSource(models.TextChoices):
    API = "api", "Agent API"
    IMPORT = "import", "Bulk import"
    OPSDASH = "opsdash", "Written by opsdash"


class EventQuerySet(models.QuerySet):
    def visible_to(self, user: object) -> "EventQuerySet":
        """Agents see only their own events; people with any role see all."""
        if getattr(user, "is_agent", False):
            return self.filter(agent_id=user.agent.pk)  # type: ignore[attr-defined]
        return self

    def in_window(self, start: object = None, end: object = None) -> "EventQuerySet":
        qs = self
        if start is not None:
            qs = qs.filter(ts__gte=start)
        if end is not None:
            qs = qs.filter(ts__lt=end)
        return qs


class Event(models.Model):
    """One audit-log entry as it was accepted; append-only and sealed into the ledger."""

    id = models.UUIDField(primary_key=True)
    ts = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    agent = models.ForeignKey("fleet.Agent", on_delete=models.PROTECT, related_name="events")
    type = models.CharField(max_length=32, choices=EventType.choices)
    action_id = models.CharField(max_length=128, null=True, blank=True)
    incident_id = models.CharField(max_length=128, null=True, blank=True)
    agent_version = models.CharField(max_length=64, blank=True, default="")
    prompt_version = models.CharField(max_length=64, blank=True, default="")
    data = models.JSONField(default=dict)
    source = models.CharField(max_length=16, choices=EventSource.choices, default=EventSource.API)
    # SHA-256 of the canonical encoding: the Merkle leaf and the duplicate/conflict test.
    content_hash = models.CharField(max_length=64)
    size_bytes = models.PositiveIntegerField(default=0)
    batch_id = models.UUIDField()
    batch_index = models.PositiveIntegerField()

    objects = EventQuerySet.as_manager()

    class Meta:
        ordering = ["-ts", "-id"]
        indexes = [
            # Every list orders by (ts, id) newest first; with id in the index a filtered
            # page is an index range scan instead of a sort of every matching row.
            models.Index(fields=["agent", "-ts", "-id"], name="event_agent_ts"),
            models.Index(fields=["-ts", "-id"], name="event_ts"),
            models.Index(fields=["type", "-ts", "-id"], name="event_type_ts"),
            models.Index(fields=["action_id"], name="event_action"),
            models.Index(fields=["incident_id"], name="event_incident"),
            models.Index(fields=["batch_id", "batch_index"], name="event_batch"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class LedgerSeal(models.Model):
    """One accepted batch sealed into the hash chain: its Merkle root chained to the previous seal."""

    seq = models.PositiveBigIntegerField(unique=True)
    batch_id = models.UUIDField(unique=True)
    event_count = models.PositiveIntegerField()
    merkle_root = models.CharField(max_length=64)
    prev_seal_hash = models.CharField(max_length=64)
    seal_hash = models.CharField(max_length=64, unique=True)
    sealed_at = models.DateTimeField()
    source = models.CharField(max_length=16, choices=EventSource.choices, default=EventSource.API)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"seal #{self.seq}"


class LedgerHead(models.Model):
    """The single row naming the newest seal; locked once per batch to extend the chain."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    seal_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(id=1), name="ledger_head_singleton")
        ]

    def __str__(self) -> str:
        return f"head #{self.seq}"


class DerivedCursor(models.Model):
    """How far one kind of derived work (rollups, ...) has consumed the ledger, by seal seq."""

    name = models.CharField(max_length=64, primary_key=True)
    last_seq = models.PositiveBigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seq}"


class EventDailyCount(models.Model):
    """Events and bytes stored per agent, UTC day and type; rebuilt from events, never counted."""

    agent = models.ForeignKey("fleet.Agent", on_delete=models.CASCADE, related_name="events_daily")
    day = models.DateField()
    type = models.CharField(max_length=32, choices=EventType.choices)
    events = models.PositiveBigIntegerField(default=0)
    bytes = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "day", "type"], name="daily_count_unique")
        ]
        indexes = [models.Index(fields=["day"], name="daily_count_day")]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.day} {self.type}: {self.events}"


class LedgerVerification(models.Model):
    """One run of the ledger verification, kept so the ledger page can show the chain status."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(null=True)
    seals_checked = models.PositiveBigIntegerField(default=0)
    events_checked = models.PositiveBigIntegerField(default=0)
    head_seq = models.PositiveBigIntegerField(default=0)
    first_problem = models.TextField(blank=True)
    problems = models.JSONField(default=list, blank=True)
    triggered_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"verification {self.started_at:%Y-%m-%d %H:%M} ok={self.ok}"


class ChangeRecord(models.Model):
    """A person's change to a setting that belongs to no agent (a budget): who, when, and each
    field's old and new value. The audit log's events are all tied to an agent, so these are
    kept here, append-only like them (PostgreSQL refuses UPDATE and DELETE)."""

    subject_type = models.CharField(max_length=32)
    # No foreign key: the record outlives what it describes.
    subject_id = models.PositiveBigIntegerField()
    subject = models.CharField(max_length=200, help_text="Its slug or name at the time.")
    op = models.CharField(max_length=16, help_text="created, changed, deactivated, reactivated")
    by = models.CharField(max_length=150, blank=True, help_text="Username; blank for opsdash.")
    at = models.DateTimeField(default=timezone.now)
    changes = models.JSONField(default=dict, help_text="{field: [old, new]}")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["subject_type", "subject_id", "-at", "-id"], name="change_subject")
        ]

    def __str__(self) -> str:
        return f"{self.subject_type} {self.subject} {self.op} by {self.by or 'opsdash'}"
