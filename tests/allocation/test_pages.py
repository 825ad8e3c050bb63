"""The rules page (finops), recompute after a rule change, the chargeback page and its CSV."""

import csv
import io
import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from apps.billing.models import AllocationRule, AllocationRun, CostAllocation, CostLineItem
from apps.billing.rules import allocation_run_process, rule_create
from apps.costs.models import LlmUsage
from tests.allocation.conftest import assert_exact, import_bill, line, shares

pytestmark = pytest.mark.django_db
D = Decimal
RULES = "/billing/rules/"
CHARGEBACK = "/billing/chargeback/"
CSV = "/billing/chargeback.csv"


@pytest.fixture
def october(fleet, tmp_path: Path):
    rule_create(
        data={"name": "Agent tag", "kind": "tag", "tag_key": "opsdash-agent", "target": "agent"},
        user=None,
    )
    rule_create(
        data={"name": "Shared cluster", "kind": "shared", "match_service": "*Kubernetes*"},
        user=None,
    )
    import_bill(
        tmp_path,
        [
            line("10.00", tags={"opsdash-agent": "triage-bot"}),
            line("100.00", service="Amazon Elastic Kubernetes Service"),
            line("0.01"),
            line("2.50", currency="EUR", account="acct-eu"),
        ],
    )
    payments = fleet["agents"]["queue-medic"]
    for cost in (D("1.234"), None):
        LlmUsage.objects.create(
            event_id=uuid.uuid4(),
            ts=datetime(2026, 10, 5, tzinfo=UTC),
            agent=payments,
            team_id=payments.team_id,
            provider="anthropic",
            model="claude-haiku-4-5",
            cost_usd=cost,
            cost_source="reported" if cost else "unpriced",
            energy_wh=0,
            gco2e=0,
            grid_region="x",
        )


def cells(page: str, row_id: str) -> list[str]:
    row = page[page.index(f'id="{row_id}"') :]
    row = row[: row.index("</tr>")]
    return [
        " ".join(re.sub(r"<[^>]+>", " ", c).split())
        for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)
    ]


def test_chargeback_page_shows_each_team_the_unallocated_line_and_the_bills_total(
    client, finops, october
):
    client.force_login(finops)
    page = client.get(CHARGEBACK, {"month": "2026-10"}).content.decode()
    assert cells(page, "team-data-USD") == [
        "Data data",
        "USD",
        "33.34",
        "33.34",
        "—",
        "Shared cluster (shared evenly): 33.34",
    ]
    assert cells(page, "team-payments-USD") == [
        "Payments payments",
        "USD",
        "33.33",
        "33.33",
        "1.23",
        "Shared cluster (shared evenly): 33.33",
    ]
    assert cells(page, "team-platform-USD") == [
        "Platform platform",
        "USD",
        "43.33",
        "43.33",
        "—",
        "Agent tag (tag): 10.00 Shared cluster (shared evenly): 33.33",
    ]
    assert cells(page, "team-unallocated-USD") == [
        "Unallocated",
        "USD",
        "0.01",
        "0.01",
        "—",
        "no rule matched: 0.01",
    ]
    assert cells(page, "team-unallocated-EUR") == [
        "Unallocated",
        "EUR",
        "2.50",
        "2.50",
        "—",
        "no rule matched: 2.50",
    ]
    assert cells(page, "total-USD") == ["Total (the bills)", "USD", "110.01", "110.01", "1.23", ""]
    assert cells(page, "total-EUR") == ["Total (the bills)", "EUR", "2.50", "2.50", "", ""]
    assert 'title="33.333333333334"' in page
    assert "1 call of unpriced models is not counted" in page
    assert re.search(r'<a href="/billing/chargeback/"[^>]*>Chargeback</a>', page)  # nav
    assert_exact()


def test_chargeback_csv_has_the_same_numbers_to_the_cent(client, finops, october):
    client.force_login(finops)
    response = client.get(CSV, {"month": "2026-10"})
    assert response["Content-Disposition"] == 'attachment; filename="chargeback-2026-10.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows == [
        [
            "month",
            "team",
            "team_name",
            "currency",
            "cloud_billed",
            "cloud_effective",
            "llm_estimated_usd",
            "rules",
        ],
        [
            "2026-10",
            "data",
            "Data",
            "USD",
            "33.34",
            "33.34",
            "",
            "Shared cluster (shared evenly): 33.34",
        ],
        [
            "2026-10",
            "payments",
            "Payments",
            "USD",
            "33.33",
            "33.33",
            "1.23",
            "Shared cluster (shared evenly): 33.33",
        ],
        [
            "2026-10",
            "platform",
            "Platform",
            "USD",
            "43.33",
            "43.33",
            "",
            "Agent tag (tag): 10.00; Shared cluster (shared evenly): 33.33",
        ],
        [
            "2026-10",
            "unallocated",
            "Unallocated",
            "EUR",
            "2.50",
            "2.50",
            "",
            "no rule matched: 2.50",
        ],
        [
            "2026-10",
            "unallocated",
            "Unallocated",
            "USD",
            "0.01",
            "0.01",
            "",
            "no rule matched: 0.01",
        ],
        ["2026-10", "total", "", "EUR", "2.50", "2.50", "", ""],
        ["2026-10", "total", "", "USD", "110.01", "110.01", "1.23", ""],
    ]
    usd = [r for r in rows[1:-2] if r[3] == "USD"]
    assert sum(D(r[4]) for r in usd) == D(rows[-1][4])


def test_other_roles_are_refused(client, viewer, approver, sre_lead, october):
    rule = AllocationRule.objects.first()
    for person in (viewer, approver, sre_lead):
        client.force_login(person)
        for url in (RULES, CHARGEBACK, CSV, f"/billing/rules/{rule.pk}/", "/billing/rules/runs"):
            assert client.get(url).status_code == 403, url
        assert client.post(f"/billing/rules/{rule.pk}/delete").status_code == 403
        assert "Chargeback" not in client.get("/").content.decode()
    assert AllocationRule.objects.count() == 2


def test_rules_page_adds_a_rule_with_clear_errors_and_lists_them_in_order(client, finops, october):
    client.force_login(finops)
    bad = client.post(
        RULES,
        {
            "name": "Logs",
            "kind": "shared",
            "match_resource": "([",
            "teams": ["data"],
            "value_map": "",
        },
    )
    page = bad.content.decode()
    assert bad.status_code == 400
    assert "Nothing was saved" in page
    assert "Not a valid regular expression: unterminated character set at position 1." in page
    bad_map = client.post(
        RULES,
        {
            "name": "CC",
            "kind": "tag",
            "tag_key": "cc",
            "target": "team",
            "value_map": "CC-1 = payments\nnonsense",
        },
    )
    assert "Line 2 (&#x27;nonsense&#x27;): write `tag value = slug`." in bad_map.content.decode()
    good = client.post(
        RULES,
        {
            "name": "Logs",
            "kind": "shared",
            "match_service": "CloudWatch",
            "split": "tokens",
            "teams": ["data", "payments"],
        },
        follow=True,
    )
    page = good.content.decode()
    assert "Rule &#x27;Logs&#x27; added" in page
    names = re.findall(
        r'<tr id="rule-\d+"[^>]*>\s*<td class="num">(\d)</td>\s*<td><a [^>]*>([^<]+)</a>', page
    )
    assert names == [("1", "Agent tag"), ("2", "Shared cluster"), ("3", "Logs")]
    assert "shared by llm tokens across data, payments" in page
    logs = AllocationRule.objects.get(name="Logs")
    client.post(f"/billing/rules/{logs.pk}/up")
    assert list(AllocationRule.objects.values_list("name", flat=True)) == [
        "Agent tag",
        "Logs",
        "Shared cluster",
    ]
    assert 'data-status="queued"' in client.get(RULES).content.decode()  # the recompute's row


def test_a_rule_change_recomputes_the_range_idempotently(
    client, finops, october, django_capture_on_commit_callbacks, eager_celery
):
    client.force_login(finops)
    rule = AllocationRule.objects.get(name="Shared cluster")
    AllocationRun.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/billing/rules/{rule.pk}/",
            {
                "name": "Shared cluster",
                "kind": "shared",
                "match_service": "*Kubernetes*",
                "teams": ["payments"],
                "enabled": "on",
            },
        )
        # the default range is the recent months; October 2026 is asked for explicitly
        client.post("/billing/rules/recompute", {"start": "2026-10-01", "end": "2026-10-31"})
    run = AllocationRun.objects.order_by("-pk").first()
    assert (run.status, run.line_items, run.allocations) == ("done", 4, 4)
    assert shares() == [
        ("payments", None, "shared_even", "Shared cluster", D("100"), D("100")),
        ("platform", "triage-bot", "tag", "Agent tag", D("10"), D("10")),
        (None, None, "unallocated", "", D("0.01"), D("0.01")),
        (None, None, "unallocated", "", D("2.5"), D("2.5")),
    ]
    owners = sorted(
        (f"{i.billed_cost.normalize():f}", i.team.slug if i.team else None, i.agent_id is not None)
        for i in CostLineItem.objects.select_related("team")
    )
    assert owners == [
        ("0.01", None, False),
        ("10", "platform", True),
        ("100", None, False),
        ("2.5", None, False),
    ]
    # Again: the same allocations, not twice as many.
    again = AllocationRun.objects.create(start=run.start, end=run.end)
    allocation_run_process(run_id=again.pk)
    assert CostAllocation.objects.count() == 4
    assert_exact()
    page = client.get(RULES).content.decode()
    assert f'id="run-{run.pk}" data-status="done"' in page


def test_preview_shows_how_a_change_moves_money_without_saving(
    client, finops, october, time_machine
):
    time_machine.move_to("2026-11-20T12:00:00Z")  # October is in the range a save recomputes
    client.force_login(finops)
    rule = AllocationRule.objects.get(name="Shared cluster")
    runs = AllocationRun.objects.count()
    page = client.post(
        f"/billing/rules/{rule.pk}/",
        {
            "name": "Shared cluster",
            "kind": "shared",
            "match_service": "*Kubernetes*",
            "teams": ["payments"],
            "enabled": "on",
            "preview": "1",
        },
    ).content.decode()
    assert "If saved: billed cost charged 2026-09-01 \u2013 2026-11-30 (4 line items)" in page
    assert cells(page, "preview-data-USD") == ["data", "USD", "33.33", "0.00", "-33.33"]
    assert cells(page, "preview-payments-USD") == ["payments", "USD", "33.33", "100.00", "+66.67"]
    assert cells(page, "preview-platform-USD") == ["platform", "USD", "43.33", "10.00", "-33.33"]
    assert cells(page, "preview-unallocated-USD") == ["Unallocated", "USD", "0.01", "0.01", "0.00"]
    assert cells(page, "preview-unallocated-EUR") == ["Unallocated", "EUR", "2.50", "2.50", "0.00"]
    rule.refresh_from_db()
    assert [t.slug for t in rule.teams.all()] == []
    assert AllocationRun.objects.count() == runs
