"""Anthropic's list prices, USD per million tokens.

Source: https://platform.claude.com/docs/en/about-claude/pricing ("Model pricing" table; the
Batch API is 50 % off every token class), and the model pages under
https://platform.claude.com/docs/en/about-claude/models/ for Claude Sonnet 5 and Opus 5;
read on 2026-11-26.

Not seeded, for FinOps to add on the price page: Claude Sonnet 5.5 and Opus 5.5 (their cache
read price changed in October 2026 and the pages we read disagree), Haiku 5.5 (priced by
prompt length, which one row cannot express), Fable and Mythos (model ids not published on the
pages read), the >200k-token long-context rates of Sonnet 4/4.5, and the 1.1× US-only
inference multiplier.

Patterns end in * to cover dated ids (claude-sonnet-4-5 and claude-sonnet-4-5-20250929);
Claude Sonnet 5 and Opus 5 are exact names, or their prefix would also price 5.5 models.
Effective from 2024-01-01, before every model here but Claude 3 Opus and Haiku (2024-03): only
today's list price is seeded; earlier price changes of a model (if any) were not checked. To
record one, correct the 2024 row to the old price and add a row from the day it changed.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import migrations

SOURCE = "https://platform.claude.com/docs/en/about-claude/pricing"
READ_ON = "List price read on 2026-11-26."
FROM = datetime(2024, 1, 1, tzinfo=UTC)

# model pattern: (input, 5m cache write, 1h cache write, cache read, output)
PRICES: dict[str, tuple[str, str, str, str, str]] = {
    "claude-opus-5": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-4-8*": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-4-7*": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-4-6*": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-4-5*": ("5", "6.25", "10", "0.50", "25"),
    "claude-opus-4-1*": ("15", "18.75", "30", "1.50", "75"),
    "claude-opus-4-0*": ("15", "18.75", "30", "1.50", "75"),
    "claude-opus-4-2025*": ("15", "18.75", "30", "1.50", "75"),
    "claude-sonnet-5": ("2", "2.50", "4", "0.20", "10"),
    "claude-sonnet-4-6*": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-4-5*": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-4-0*": ("3", "3.75", "6", "0.30", "15"),
    "claude-sonnet-4-2025*": ("3", "3.75", "6", "0.30", "15"),
    "claude-3-7-sonnet*": ("3", "3.75", "6", "0.30", "15"),
    "claude-haiku-4-5*": ("1", "1.25", "2", "0.10", "5"),
    "claude-3-5-haiku*": ("0.80", "1", "1.6", "0.08", "4"),
    "claude-3-opus*": ("15", "18.75", "30", "1.50", "75"),
    "claude-3-haiku*": ("0.25", "0.30", "0.50", "0.03", "1.25"),
}


def seed(apps: Any, schema_editor: Any) -> None:
    ModelPrice = apps.get_model("costs", "ModelPrice")
    for model, (inp, w5m, w1h, read, out) in PRICES.items():
        ModelPrice.objects.get_or_create(
            provider="anthropic",
            model=model,
            effective_from=FROM,
            corrects=None,
            defaults={
                "input_usd_per_mtok": Decimal(inp),
                "cache_write_5m_usd_per_mtok": Decimal(w5m),
                "cache_write_1h_usd_per_mtok": Decimal(w1h),
                "cache_read_usd_per_mtok": Decimal(read),
                "output_usd_per_mtok": Decimal(out),
                "batch_discount": Decimal("0.5"),
                "source_url": SOURCE,
                "note": READ_ON,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("costs", "0001_llm_prices_and_usage")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
