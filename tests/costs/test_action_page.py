"""The action page shows what the action's llm_calls cost, priced at ingest."""

import html
from datetime import timedelta

import pytest
from django.urls import reverse

from tests.costs.conftest import T0, call, ingest, make_price
from tests.slo.test_facts import proposal

pytestmark = pytest.mark.django_db


def test_the_timeline_shows_table_priced_reported_and_unpriced_calls(client, viewer, agent):
    make_price()
    ingest(
        proposal("act-c", T0, incident=None),
        # 1,000 x 3 + 200 x 15 = 6,000 per million = $0.006
        call(ts=T0 + timedelta(seconds=1), action_id="act-c", input_tokens=1000, output_tokens=200),
        call(ts=T0 + timedelta(seconds=2), action_id="act-c", output_tokens=100, cost_usd="0.0123"),
        call("mystery-2", ts=T0 + timedelta(seconds=3), action_id="act-c", output_tokens=100),
    )
    client.force_login(viewer)
    text = html.unescape(client.get(reverse("actions:detail", args=["act-c"])).content.decode())
    assert '200 out · 900 ms · $0.006 <abbr title="priced from the LLM price table' in text
    assert "100 out · 900 ms · $0.0123</span>" in text  # reported: no label
    assert '100 out · 900 ms · <abbr title="no price for this model at this time' in text
    # Totals: $0.006 + $0.0123 = $0.0183, one unpriced; energy
    # (1 x 0.22 + 0.2 x 0.6) x 1.2 = 0.408 + 2 x (0.1 x 0.6 x 1.2 = 0.072) = 0.552 Wh
    header = text.split('title="Sum over this action\'s LLM calls">')[1].split("</span></span>")[0]
    assert header == (
        "3 LLM calls · 1400 tokens · 3 s · $0.0183 · 1 unpriced · "
        '<span title="Estimated from per-token coefficients (not measured)">0.55 Wh est.'
    )
