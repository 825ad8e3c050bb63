"""Cloud bills normalised to FinOps FOCUS columns, and the imports they came from."""

from django.conf import settings
from django.db import models
from django.utils import timezone

# Money and quantities: 18 integer digits and 12 decimal places, so a sub-cent unit row
# (AWS prices per second to 10 places) is stored exactly and sums stay exact to the cent.
MONEY_DIGITS = 30
MONEY_PLACES = 12


class BillingFormat(models.TextChoices):
    FOCUS = "focus", "FinOps FOCUS 1.0+"
    AWS_CUR2 = "aws-cur2", "AWS CUR 2.0"
    GCP = "gcp", "Google Cloud billing export"
    AZURE = "azure", "Azure cost details export"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportSource(models.TextChoices):
    UPLOAD = "upload", "Upload"
    COMMAND = "command", "Command"


class ChargeCategory(models.TextChoices):
    """FOCUS ChargeCategory values; files spell them in any case."""

    USAGE = "Usage"
    PURCHASE = "Purchase"
    TAX = "Tax"
    CREDIT = "Credit"
    ADJUSTMENT = "Adjustment"


class BillingImport(models.Model):
    """One billing file imported (or being imported), with its counts, totals and errors."""

    file_name = models.CharField(max_length=255)
    # Name inside BILLING_UPLOAD_STORAGE for an upload; empty for a file the command read.
    stored_name = models.CharField(max_length=500, blank=True)
    file_size = models.BigIntegerField(default=0)
    format = models.CharField(max_length=16, choices=BillingFormat.choices)
    source = models.CharField(
        max_length=16, choices=ImportSource.choices, default=ImportSource.UPLOAD
    )
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    rows_imported = models.BigIntegerField(default=0)
    rows_rejected = models.BigIntegerField(default=0)
    # Rows of earlier imports for the same provider / account / billing period, replaced.
    rows_replaced = models.BigIntegerField(default=0)
    # {"USD": "1234.560000000000"}: Decimal strings, never floats.
    totals = models.JSONField(default=dict, blank=True)
    # The replacement keys this import covered: [{"provider", "billing_account_id",
    # "billing_period_start", "rows"}].
    periods = models.JSONField(default=list, blank=True)
    error_message = models.TextField(blank=True)
    # First BILLING_MAX_ROW_ERRORS rejected rows: {"row", "line", "column", "message"}.
    row_errors = models.JSONField(default=list, blank=True)
    row_errors_total = models.BigIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="billing_imports",
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"], name="billing_import_status")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.file_name} ({self.status})"

    @property
    def in_progress(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)


class CostLineItem(models.Model):
    """One billing row, normalised to FOCUS columns; team and agent are set by allocation."""

    billing_import = models.ForeignKey(
        BillingImport, on_delete=models.CASCADE, related_name="line_items"
    )
    # FOCUS ServiceProviderName (1.3) or ProviderName (1.0-1.2).
    provider = models.CharField(max_length=128)
    # FOCUS HostProviderName (1.3) or PublisherName (1.0-1.2); empty when not given.
    publisher = models.CharField(max_length=128, blank=True)
    billing_account_id = models.CharField(max_length=256)
    # FOCUS SubAccountId: AWS usage account, GCP project, Azure subscription.
    sub_account_id = models.CharField(max_length=256, blank=True)
    billing_period_start = models.DateTimeField()
    billing_period_end = models.DateTimeField()
    charge_period_start = models.DateTimeField()
    charge_period_end = models.DateTimeField()
    charge_category = models.CharField(max_length=16, choices=ChargeCategory.choices)
    billed_cost = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    effective_cost = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    # NULL: the file does not say (a GCP export without cost_at_list).
    list_cost = models.DecimalField(
        max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=True, blank=True
    )
    billing_currency = models.CharField(max_length=3)
    service_name = models.CharField(max_length=256, blank=True)
    resource_id = models.TextField(blank=True)
    region_id = models.CharField(max_length=128, blank=True)
    sku_id = models.CharField(max_length=256, blank=True)
    consumed_quantity = models.DecimalField(
        max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES, null=True, blank=True
    )
    consumed_unit = models.CharField(max_length=128, blank=True)
    # FOCUS Tags: a JSON object of string keys to string values.
    tags = models.JSONField(default=dict, blank=True)
    team = models.ForeignKey(
        "fleet.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    agent = models.ForeignKey(
        "fleet.Agent", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["charge_period_start"], name="billing_cli_charge_start"),
            models.Index(
                fields=["provider", "charge_period_start"], name="billing_cli_provider_start"
            ),
            # The replacement key: a restated bill deletes by it.
            models.Index(
                fields=["provider", "billing_account_id", "billing_period_start"],
                name="billing_cli_period_key",
            ),
            models.Index(
                fields=["service_name", "charge_period_start"], name="billing_cli_service"
            ),
        ]
        # A GIN index on tags (key and containment queries) is created on PostgreSQL only,
        # in migration 0002.

    def __str__(self) -> str:
        return f"{self.provider} {self.service_name} {self.billed_cost} {self.billing_currency}"


class AllocationMethod(models.TextChoices):
    TAG = "tag", "Tag"
    SHARED_EVEN = "shared_even", "Shared evenly"
    SHARED_ACTIONS = "shared_actions", "Shared by actions"
    SHARED_TOKENS = "shared_tokens", "Shared by tokens"
    UNALLOCATED = "unallocated", "Unallocated"


class CostAllocation(models.Model):
    """A share of one line item's cost given to a team (and, when known, an agent).

    Every line item has allocations whose costs add up to its own to the last decimal place;
    what no rule claims is one row with no team and method `unallocated`, so it is shown,
    never hidden. Charge period, provider, service and currency are copied from the line item
    so the cost pages group and filter without a join."""

    # No database constraint: its check is a per-row trigger at commit that also locks the
    # line item row (measured: about half of a bill's allocation time). Allocations are written
    # only in the transaction that writes or reallocates their line items, and deleted with
    # them (apps.billing.services._replace_previous; the ORM cascades).
    line_item = models.ForeignKey(
        CostLineItem, on_delete=models.CASCADE, db_constraint=False, related_name="allocations"
    )
    # No database constraints or single-column indexes on team and agent either: (team,
    # charge_period_start) and (agent, …) below serve the lookups, and the ORM sets them to
    # NULL when a team or agent is deleted. A bill writes one row per line item at least.
    team = models.ForeignKey(
        "fleet.Team",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    agent = models.ForeignKey(
        "fleet.Agent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        db_index=False,
        related_name="+",
    )
    method = models.CharField(max_length=16, choices=AllocationMethod.choices)
    # The rule that produced this share, by name: rules are edited, the chargeback must still
    # say which rule it was.
    rule_name = models.CharField(max_length=200, blank=True)
    billed_cost = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    effective_cost = models.DecimalField(max_digits=MONEY_DIGITS, decimal_places=MONEY_PLACES)
    billing_currency = models.CharField(max_length=3)
    charge_period_start = models.DateTimeField()
    charge_period_end = models.DateTimeField()
    provider = models.CharField(max_length=128)
    service_name = models.CharField(max_length=256, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["charge_period_start"], name="billing_alloc_start"),
            models.Index(fields=["team", "charge_period_start"], name="billing_alloc_team"),
            models.Index(fields=["agent", "charge_period_start"], name="billing_alloc_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.team_id or 'unallocated'} {self.effective_cost}"


class RuleKind(models.TextChoices):
    TAG = "tag", "Tag names the owner"
    SHARED = "shared", "Shared cost"


class RuleTarget(models.TextChoices):
    AGENT = "agent", "Agent (its team follows)"
    TEAM = "team", "Team"


class SplitBasis(models.TextChoices):
    EVEN = "even", "Evenly"
    ACTIONS = "actions", "By actions proposed"
    TOKENS = "tokens", "By LLM tokens"


class AllocationRule(models.Model):
    """One allocation rule; rules are tried in `position` order and the first that matches a
    line item decides all of its cost.

    A tag rule reads one tag (`tag_key`) and gives the line item to the agent or team its value
    names: the value is the slug, or `value_map` maps values to slugs. A shared rule matches by
    provider, service, tag and resource (every condition given must hold) and splits the cost
    across `teams` (all teams when empty), evenly or by each team's actions or LLM tokens in the
    line item's charge period."""

    name = models.CharField(max_length=200, unique=True)
    position = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=RuleKind.choices)
    enabled = models.BooleanField(default=True)
    # Tag rules.
    tag_key = models.CharField(max_length=256, blank=True)
    target = models.CharField(max_length=16, choices=RuleTarget.choices, blank=True)
    # {"tag value": "slug"}; empty: the tag value is the slug.
    value_map = models.JSONField(default=dict, blank=True)
    # Shared rules: conditions (blank = any).
    match_provider = models.CharField(max_length=128, blank=True)
    # Glob, case-insensitive: "*Kubernetes*".
    match_service = models.CharField(max_length=256, blank=True)
    match_tag_key = models.CharField(max_length=256, blank=True)
    # Blank: the tag is present with any value.
    match_tag_value = models.CharField(max_length=256, blank=True)
    # Regular expression searched in the resource id.
    match_resource = models.CharField(max_length=500, blank=True)
    split = models.CharField(max_length=16, choices=SplitBasis.choices, blank=True)
    teams = models.ManyToManyField("fleet.Team", blank=True, related_name="+")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class AllocationRun(models.Model):
    """One recompute of allocations for line items charged in [start, end)."""

    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(
        max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    reason = models.CharField(max_length=300, blank=True)
    line_items = models.BigIntegerField(default=0)
    allocations = models.BigIntegerField(default=0)
    error_message = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"run #{self.pk} {self.start:%Y-%m-%d}..{self.end:%Y-%m-%d} ({self.status})"

    @property
    def in_progress(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)
