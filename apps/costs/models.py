from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from apps.costs.cloud_energy import Kind
from apps.costs.tokens import TokenConvention

CLOUD_ENERGY_KINDS = Kind.CHOICES

PRICE_FIELDS = (
    "input_usd_per_mtok",
    "output_usd_per_mtok",
    "cache_write_5m_usd_per_mtok",
    "cache_write_1h_usd_per_mtok",
    "cache_read_usd_per_mtok",
)


def price_field() -> models.DecimalField:
    # USD per million tokens; six decimals keep sub-cent list prices such as $0.03 exact.
    return models.DecimalField(max_digits=12, decimal_places=6)


class ModelPriceQuerySet(models.QuerySet):
    def current(self) -> "ModelPriceQuerySet":
        """Rows not superseded by a correction (the ones pricing uses)."""
        return self.filter(correction__isnull=True)


class ModelPrice(models.Model):
    """One list price of a model (or of every model whose name starts with a prefix) from a
    moment on; never edited in place: a new price, or a correction of one, is a new row."""

    provider = models.CharField(max_length=64, default="anthropic")
    model = models.CharField(
        max_length=200,
        help_text="The exact model name, or a prefix ending in * for versioned names "
        "(claude-sonnet-4-5* matches claude-sonnet-4-5-20250929).",
    )
    effective_from = models.DateTimeField()
    input_usd_per_mtok = price_field()
    output_usd_per_mtok = price_field()
    cache_write_5m_usd_per_mtok = price_field()
    cache_write_1h_usd_per_mtok = price_field()
    cache_read_usd_per_mtok = price_field()
    # The share taken off every token class of a Message Batches call: 0.5 = half price.
    batch_discount = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0"))
    # A correction carries the same provider, model and effective date as the row it replaces;
    # the replaced row stays, so what was charged before the correction can still be explained.
    corrects = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="correction"
    )
    source_url = models.URLField(max_length=500, blank=True)
    note = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = ModelPriceQuerySet.as_manager()

    class Meta:
        ordering = ["provider", "model", "-effective_from", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "effective_from"],
                condition=Q(corrects__isnull=True),
                name="model_price_one_original_per_date",
            ),
            models.CheckConstraint(
                condition=Q(input_usd_per_mtok__gte=0)
                & Q(output_usd_per_mtok__gte=0)
                & Q(cache_write_5m_usd_per_mtok__gte=0)
                & Q(cache_write_1h_usd_per_mtok__gte=0)
                & Q(cache_read_usd_per_mtok__gte=0),
                name="model_price_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(batch_discount__gte=0) & Q(batch_discount__lte=1),
                name="model_price_batch_discount_share",
            ),
            models.CheckConstraint(
                condition=~Q(corrects=F("id")), name="model_price_not_self_correcting"
            ),
        ]
        indexes = [models.Index(fields=["provider", "effective_from"], name="model_price_lookup")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} from {self.effective_from:%Y-%m-%d %H:%M}"


class CostSource(models.TextChoices):
    REPORTED = "reported", "reported by the agent"
    PRICE_TABLE = "price_table", "priced from the table"
    UNPRICED = "unpriced", "no price for the model"


class EnergySource(models.TextChoices):
    MEASURED = "measured", "measured"
    ESTIMATED = "estimated", "estimated"


class LlmUsageQuerySet(models.QuerySet):
    def in_window(self, start: object = None, end: object = None) -> "LlmUsageQuerySet":
        qs = self
        if start is not None:
            qs = qs.filter(ts__gte=start)
        if end is not None:
            qs = qs.filter(ts__lt=end)
        return qs


class LlmUsage(models.Model):
    """The tokens, cost and energy of one stored llm_call event; written in the transaction
    that stores the event, so spend is never behind the audit log."""

    # No database FKs here, and no single-column FK indexes: each FK is a per-row trigger and
    # each index a per-row insert on the ingest hot path (measured: together about a third of
    # the cost of writing 250 rows). Rows are written only from events stored in the same
    # transaction (or read back when repricing); events are append-only (triggers refuse
    # DELETE) and hold their agent's FK themselves; price rows are never deleted, and the ORM
    # still refuses to delete a team or price that usage rows name (PROTECT is Django-side).
    event = models.OneToOneField(
        "audit.Event",
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="llm_usage",
    )
    ts = models.DateTimeField()
    agent = models.ForeignKey(
        "fleet.Agent",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # (agent, ts) below
        related_name="+",
    )
    # The agent's team when the call was stored: chargeback follows who owned the agent then.
    team = models.ForeignKey(
        "fleet.Team",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,  # (team, ts) below
        related_name="+",
    )
    action_id = models.CharField(max_length=128, null=True, blank=True)
    incident_id = models.CharField(max_length=128, null=True, blank=True)
    provider = models.CharField(max_length=200)
    model = models.CharField(max_length=200)
    # Normalised to Anthropic's meaning whatever the event's convention: input_tokens is the
    # uncached input only; the three cache classes are separate and priced separately.
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_5m_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_1h_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    batch = models.BooleanField(default=False)
    token_convention = models.CharField(
        max_length=16, choices=TokenConvention.choices, default=TokenConvention.ANTHROPIC
    )
    cost_usd = models.DecimalField(max_digits=20, decimal_places=9, null=True, blank=True)
    cost_source = models.CharField(max_length=16, choices=CostSource.choices)
    price = models.ForeignKey(
        ModelPrice,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,  # repricing reads by event, never by price row
        related_name="usages",
    )
    energy_wh = models.DecimalField(max_digits=18, decimal_places=6)
    energy_source = models.CharField(
        max_length=16, choices=EnergySource.choices, default=EnergySource.ESTIMATED
    )
    gco2e = models.DecimalField(max_digits=18, decimal_places=6)
    grid_region = models.CharField(max_length=64)
    priced_at = models.DateTimeField(default=timezone.now)

    objects = LlmUsageQuerySet.as_manager()

    class Meta:
        ordering = ["-ts"]
        constraints = [
            # Unknown cost is NULL, never zero; a price-table cost names the row it used.
            models.CheckConstraint(
                condition=(Q(cost_source=CostSource.UNPRICED) & Q(cost_usd__isnull=True))
                | (~Q(cost_source=CostSource.UNPRICED) & Q(cost_usd__isnull=False)),
                name="llm_usage_unpriced_iff_null_cost",
            ),
            models.CheckConstraint(
                condition=Q(cost_source=CostSource.PRICE_TABLE, price__isnull=False)
                | (~Q(cost_source=CostSource.PRICE_TABLE) & Q(price__isnull=True)),
                name="llm_usage_price_row_iff_price_table",
            ),
        ]
        indexes = [
            models.Index(fields=["action_id"], name="llm_usage_action"),
            models.Index(fields=["ts"], name="llm_usage_ts"),
            models.Index(fields=["agent", "ts"], name="llm_usage_agent_ts"),
            models.Index(fields=["team", "ts"], name="llm_usage_team_ts"),
            models.Index(
                fields=["provider", "model"],
                condition=Q(cost_source=CostSource.UNPRICED),
                name="llm_usage_unpriced",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.event_id}: {self.cost_usd} USD"


class DriverKind(models.TextChoices):
    LOG_STORAGE = "log_storage", "Audit-log storage (USD per GB-month)"
    TOOL_CALL = "tool_call", "Tool / downstream API call (USD per call)"


class CostDriverRate(models.Model):
    """A unit price of a cost driver other than inference, from a UTC day on.

    Like LLM prices, rates are never edited in place: a new rate is a new row, and every day
    is priced with the rate in effect that day, so last month's figures do not move when the
    rate changes."""

    kind = models.CharField(max_length=16, choices=DriverKind.choices)
    # Tool name, or a glob over tool names (`pagerduty.*`, `*`); empty for log storage. The
    # most specific pattern wins: an exact name, then the longest glob.
    tool = models.CharField(max_length=200, blank=True)
    usd_rate = models.DecimalField(max_digits=16, decimal_places=9)
    effective_from = models.DateField()
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["kind", "tool", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "tool", "effective_from"], name="driver_rate_one_per_day"
            ),
            models.CheckConstraint(condition=Q(usd_rate__gte=0), name="driver_rate_non_negative"),
            models.CheckConstraint(
                condition=(Q(kind="log_storage") & Q(tool=""))
                | (Q(kind="tool_call") & ~Q(tool="")),
                name="driver_rate_tool_iff_tool_call",
            ),
        ]

    def __str__(self) -> str:
        what = self.tool or self.get_kind_display()
        return f"{what}: {self.usd_rate} USD from {self.effective_from}"


class ToolCallDailyCount(models.Model):
    """`tool_call` events per agent, UTC day and tool; kept by a ledger consumer, so a batch
    applied twice counts once."""

    agent = models.ForeignKey("fleet.Agent", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    tool = models.CharField(max_length=200)
    calls = models.PositiveBigIntegerField(default=0)
    # Calls that reported their own cost_usd, and its sum: those are not priced at the rate.
    reported_calls = models.PositiveBigIntegerField(default=0)
    reported_usd = models.DecimalField(max_digits=20, decimal_places=9, default=Decimal(0))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agent", "day", "tool"], name="tool_daily_unique")
        ]
        indexes = [models.Index(fields=["day"], name="tool_daily_day")]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.day} {self.tool}: {self.calls}"


class PullStatus(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"


class PullTrigger(models.TextChoices):
    SCHEDULE = "schedule", "daily schedule"
    BUTTON = "button", "pull now"
    COMMAND = "command", "management command"


PULL_STALLED_AFTER = timedelta(hours=1)


class AnthropicCostPull(models.Model):
    """One run of the pull of billed cost from Anthropic's Admin API: the UTC days it
    replaced, who or what started it, and how it ended (shown on the reconciliation page)."""

    trigger = models.CharField(max_length=16, choices=PullTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    since = models.DateField()
    until = models.DateField(help_text="Exclusive.")
    status = models.CharField(max_length=16, choices=PullStatus.choices, default=PullStatus.QUEUED)
    # Written for FinOps: what failed and what to do about it.
    message = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    rows = models.PositiveIntegerField(default=0)
    usage_rows = models.PositiveIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    billed_usd = models.DecimalField(max_digits=28, decimal_places=14, null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(since__lt=F("until")), name="cost_pull_days_order")
        ]

    def __str__(self) -> str:
        return f"pull {self.since} to {self.until} {self.status}"

    @property
    def in_progress(self) -> bool:
        return self.status in (PullStatus.QUEUED, PullStatus.RUNNING)

    @property
    def last_day(self) -> date:
        return self.until - timedelta(days=1)

    @property
    def stalled(self) -> bool:
        """Queued or running long past the task's 30-minute limit: its worker died or its
        task was lost. The next pull replaces the same days, so nothing is left half-done."""
        return self.in_progress and timezone.now() - self.created_at > PULL_STALLED_AFTER


class AnthropicBilledCost(models.Model):
    """Anthropic's billed cost of one UTC day for one workspace, model, API key and cost type,
    as the Admin API's analytics cost endpoint reported it at the last pull of that day.

    It reconciles the estimates priced from llm_call events (LlmUsage); it is never added to
    them. An empty workspace, model or API key is one the API reported as null (usage no API
    key authenticated has no key, code execution has no model)."""

    day = models.DateField()
    workspace_id = models.CharField(max_length=128, blank=True)
    model = models.CharField(max_length=200, blank=True)
    api_key_id = models.CharField(max_length=128, blank=True)
    cost_type = models.CharField(max_length=32, blank=True)
    currency = models.CharField(max_length=3, default="USD")
    # The API reports fractional cents as decimal strings; stored as currency units, exactly
    # (12 decimal places of a cent).
    amount = models.DecimalField(max_digits=28, decimal_places=14)
    list_amount = models.DecimalField(max_digits=28, decimal_places=14)
    pull = models.ForeignKey(AnthropicCostPull, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["day", "workspace_id", "model", "api_key_id", "cost_type"]
        constraints = [
            # A pull replaces whole days; a second row for the same cell would double the bill.
            models.UniqueConstraint(
                fields=["day", "workspace_id", "model", "api_key_id", "cost_type", "currency"],
                name="billed_cost_one_row_per_cell",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.workspace_id} {self.model} {self.api_key_id}: {self.amount}"


class AnthropicBilledUsage(models.Model):
    """Anthropic's token counts of one UTC day for one workspace, model, API key and service
    tier, as the Admin API's analytics usage endpoint reported them at the last pull of that
    day. Priced with our price table they split a variance in two: tokens our events missed,
    and prices that differ from the table."""

    day = models.DateField()
    workspace_id = models.CharField(max_length=128, blank=True)
    model = models.CharField(max_length=200, blank=True)
    api_key_id = models.CharField(max_length=128, blank=True)
    service_tier = models.CharField(max_length=32, blank=True)
    # Anthropic's meaning: input excludes the cache classes, each counted on its own.
    uncached_input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_5m_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_1h_tokens = models.PositiveBigIntegerField(default=0)
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveBigIntegerField(null=True, blank=True)
    pull = models.ForeignKey(AnthropicCostPull, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["day", "workspace_id", "model", "api_key_id", "service_tier"]
        constraints = [
            models.UniqueConstraint(
                fields=["day", "workspace_id", "model", "api_key_id", "service_tier"],
                name="billed_usage_one_row_per_cell",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.workspace_id} {self.model} {self.api_key_id}"


# What a CloudEnergyBasis is one of: the columns of a line item its energy depends on (the
# upsert of the bases names them as its conflict target, so they are the unique key too).
CLOUD_ENERGY_BASIS_KEY = (
    "provider",
    "service_name",
    "sku_id",
    "consumed_unit",
    "region_id",
    "charge_category",
)


class CloudEnergyBasis(models.Model):
    """How the line items of one (provider, service, SKU, unit, region, charge category) are
    turned into energy: the usage kind, Wh per unit and the coefficients used (apps.costs.
    cloud_energy). Rewritten when the coefficients change (`cloud_energy_recompute`)."""

    provider = models.CharField(max_length=128)
    service_name = models.CharField(max_length=256, blank=True)
    sku_id = models.CharField(max_length=256, blank=True)
    consumed_unit = models.CharField(max_length=128, blank=True)
    region_id = models.CharField(max_length=128, blank=True)
    charge_category = models.CharField(max_length=16)
    kind = models.CharField(max_length=16, choices=CLOUD_ENERGY_KINDS)
    # NULL: no estimate (the kind says whether one is missing or none is due).
    wh_per_unit = models.DecimalField(max_digits=40, decimal_places=20, null=True, blank=True)
    # Storage billed per GB-month: Wh per GB-hour, times the hours of the charge's month.
    per_month = models.BooleanField(default=False)
    grid_region = models.CharField(max_length=64)
    gco2e_per_kwh = models.DecimalField(max_digits=12, decimal_places=4)
    # What a person reads: "CCF compute: vCPU-hours x 2.12 W x PUE 1.135; …", or why none.
    method = models.CharField(max_length=500)
    coefficients = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=CLOUD_ENERGY_BASIS_KEY, name="cloud_energy_basis_key")
        ]

    def __str__(self) -> str:
        return (
            f"{self.provider} {self.service_name} {self.sku_id} {self.consumed_unit}: {self.kind}"
        )


class CloudEnergy(models.Model):
    """The estimated energy and emissions of one billing line item (always estimated: no
    cloud bill measures energy). NULL Wh: no estimate, shown as such, never as zero."""

    # No database FKs and no index on basis: each is a per-row trigger or insert when a bill's
    # rows are estimated in its import's transaction (measured on 90,000 rows: 2.6 s with
    # them and an upsert, 1.8 s with neither). Rows are written only from line items by one
    # statement, and the ORM still cascades a deleted line item and refuses to delete a basis
    # in use.
    line_item = models.OneToOneField(
        "billing.CostLineItem",
        primary_key=True,
        on_delete=models.CASCADE,
        db_constraint=False,
        related_name="energy",
    )
    basis = models.ForeignKey(
        CloudEnergyBasis,
        on_delete=models.PROTECT,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    energy_wh = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    gco2e = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)

    def __str__(self) -> str:
        return f"line item {self.line_item_id}: {self.energy_wh} Wh"


class MeasuredWindowStatus(models.TextChoices):
    MEASURED = "measured", "measured"
    NO_DATA = "no_data", "no power samples"


class MeasuredEnergyWindow(models.Model):
    """GPU energy of one self-hosted model over one closed window, integrated from Prometheus
    DCGM power samples and shared across the window's llm_calls by tokens."""

    # The COSTS_MEASURED_POWER entry's name (provider/model pattern).
    source = models.CharField(max_length=200)
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    status = models.CharField(max_length=16, choices=MeasuredWindowStatus.choices)
    energy_wh = models.DecimalField(max_digits=24, decimal_places=6, null=True, blank=True)
    samples = models.PositiveIntegerField(default=0)
    step_seconds = models.PositiveIntegerField()
    calls = models.PositiveIntegerField(default=0)
    tokens = models.PositiveBigIntegerField(default=0)
    selector = models.TextField()
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-window_start"]
        constraints = [
            models.UniqueConstraint(fields=["source", "window_start"], name="measured_window_key")
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.window_start:%Y-%m-%d %H:%M}: {self.energy_wh} Wh"
