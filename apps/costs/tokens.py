"""The token counts of an llm_call, normalised: pure functions, no queries.

Token conventions (the llm_call `data` fields, see apps.audit.schemas.LlmCallData):

| field | `usage_convention: anthropic` (default) | `usage_convention: otel` |
|---|---|---|
| `input_tokens` | uncached input only (Anthropic `usage.input_tokens`) | every input token, cached ones included (`gen_ai.usage.input_tokens`) |
| `cache_read_input_tokens` | tokens read from the cache | the same (`gen_ai.usage.cache_read.input_tokens`) |
| `cache_creation_input_tokens` | tokens written to the cache, both TTLs | the same (`gen_ai.usage.cache_creation.input_tokens`) |
| `cache_creation_1h_input_tokens` | the part of the writes with a 1-hour TTL (`usage.cache_creation.ephemeral_1h_input_tokens`) | the same |
| `output_tokens` | output, thinking included | the same |

Whatever the convention, a usage row stores Anthropic's meaning: uncached input, 5-minute
writes, 1-hour writes and reads as four disjoint classes, each priced at its own rate.
"""

from typing import Any, NamedTuple

from django.db import models


class TokenConvention(models.TextChoices):
    ANTHROPIC = "anthropic", "Anthropic usage: input_tokens excludes cache reads and writes"
    OTEL = "otel", "OpenTelemetry GenAI: input_tokens includes cache reads and writes"


class TokenUsage(NamedTuple):
    """The four disjoint input classes and the output of one call, in Anthropic's meaning."""

    input: int
    output: int
    cache_write_5m: int
    cache_write_1h: int
    cache_read: int
    batch: bool = False
    convention: str = TokenConvention.ANTHROPIC

    @property
    def all_input(self) -> int:
        return self.input + self.cache_write_5m + self.cache_write_1h + self.cache_read


def _count(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def token_usage(data: dict[str, Any]) -> TokenUsage:
    """Normalises an llm_call's `data` (validated at ingest; older rows are read leniently:
    a negative remainder is counted as zero rather than refusing a stored event)."""
    convention = (
        TokenConvention.OTEL
        if data.get("usage_convention") == TokenConvention.OTEL
        else TokenConvention.ANTHROPIC
    )
    writes = _count(data, "cache_creation_input_tokens")
    writes_1h = min(_count(data, "cache_creation_1h_input_tokens"), writes)
    reads = _count(data, "cache_read_input_tokens")
    uncached = _count(data, "input_tokens")
    if convention == TokenConvention.OTEL:
        uncached = max(uncached - reads - writes, 0)
    return TokenUsage(
        input=uncached,
        output=_count(data, "output_tokens"),
        cache_write_5m=writes - writes_1h,
        cache_write_1h=writes_1h,
        cache_read=reads,
        batch=data.get("batch") is True,
        convention=convention,
    )
