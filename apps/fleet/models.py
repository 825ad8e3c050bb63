from django.conf import settings
from django.db import models
from django.utils import timezone


class AutonomyMode(models.TextChoices):
    OBSERVE = "observe", "Observe (read-only)"
    SUGGEST = "suggest", "Suggest (every action needs approval)"
    AUTO_LOW_RISK = "auto_low_risk", "Auto low-risk"


class TokenScope(models.TextChoices):
    EVENTS_WRITE = "events:write", "Write audit events"
    ACTIONS_PROPOSE = "actions:propose", "Propose actions"
    GATE_CHECK = "gate:check", "Check the budget gate"


class Team(models.Model):
    """A cost centre that owns agents; the chargeback unit."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    cost_centre = models.CharField(max_length=64, blank=True)
    owner_email = models.EmailField(blank=True)
    # People answerable for the team's agents: under separation of duties they cannot be an
    # action's only approvers.
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="owned_teams"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name or self.slug


class AgentQuerySet(models.QuerySet):
    def halted(self) -> "AgentQuerySet":
        return self.filter(halted=True)


class Agent(models.Model):
    """An AI agent that reports to opsdash; its slug is immutable (events are sealed with it)."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200, blank=True)
    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="agents")
    environment = models.CharField(max_length=32, default="prod")
    autonomy_mode = models.CharField(
        max_length=16, choices=AutonomyMode.choices, default=AutonomyMode.SUGGEST
    )
    halted = models.BooleanField(default=False)
    halted_reason = models.TextField(blank=True)
    halted_at = models.DateTimeField(null=True, blank=True)
    anthropic_api_key_id = models.CharField(max_length=128, blank=True)
    cloud_tags = models.JSONField(default=dict, blank=True)
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="owned_agents"
    )
    # Called (signed, retried) when one of the agent's actions is decided; optional.
    callback_url = models.URLField(max_length=500, blank=True)
    callback_secret = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AgentQuerySet.as_manager()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class AgentTokenQuerySet(models.QuerySet):
    def active(self) -> "AgentTokenQuerySet":
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )


class AgentToken(models.Model):
    """A bearer credential for one agent, stored only as its SHA-256 digest."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100, blank=True)
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.CharField(max_length=150, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    objects = AgentTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.agent.slug} / {self.prefix}…"

    @property
    def is_active(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
