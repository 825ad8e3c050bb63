"""The SLO pages: the tile list, one SLO, an agent's scorecard, and the demo SLOs.

Rows are written directly (SloStatus, SloRollup, SloAlert, SliFact), so every figure a
person reads is checked against values computed by hand."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.actions.models import Action
from apps.fleet.models import Agent, Team
from apps.slo.models import SliFact, Slo, SloAlert, SloRollup, SloStatus
from apps.slo.selectors import burn_rate_chart, slo_page, sparkline

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


@pytest.fixture
def payments(db: Any) -> Team:
    return Team.objects.create(slug="payments", name="Payments SRE")


@pytest.fixture
def sweeper(team: Team) -> Agent:
    return Agent.objects.create(slug="cost-sweeper", team=team, autonomy_mode="suggest")


@pytest.fixture
def sre_lead(make_person: Any) -> Any:
    return make_person("sam", "sre_lead")


def make_slo(slug: str, *, state: str | None = None, **fields: Any) -> Slo:
    """An SLO with (optionally) a status; status fields come as status_<name>."""
    status_fields = {k[7:]: fields.pop(k) for k in list(fields) if k.startswith("status_")}
    defaults: dict[str, Any] = {"name": slug, "sli": "acceptance", "objective": Decimal("0.9")}
    defaults.update(fields)
    if defaults.get("agent") is not None:
        defaults.setdefault("scope", "agent")
    elif defaults.get("team") is not None:
        defaults.setdefault("scope", "team")
    slo = Slo.objects.create(slug=slug, **defaults)
    if state is not None:
        SloStatus.objects.create(
            slo=slo,
            evaluated_at=NOW,
            window_start=NOW - timedelta(days=28),
            state=state,
            **status_fields,
        )
    return slo


def tile_order(page: str) -> list[str]:
    return re.findall(r'data-slo="([^"]+)"', page)


def tile_html(page: str, slug: str) -> str:
    start = page.index(f'data-slo="{slug}"')
    return page[page.rindex("<a ", 0, start) : page.index("</a>", start)]


# ---------------------------------------------------------------- access


def test_anonymous_is_sent_to_login_and_outsider_refused(client, outsider, agent):
    slo = make_slo("fleet-acceptance", state="ok")
    urls = [
        reverse("slo:list"),
        reverse("slo:detail", args=[slo.slug]),
        reverse("fleet:agent-slos", args=[agent.slug]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))
    client.force_login(outsider)
    for url in urls:
        assert client.get(url).status_code == 403


def test_unknown_slo_and_agent_are_404(client, viewer):
    client.force_login(viewer)
    assert client.get(reverse("slo:detail", args=["no-such-slo"])).status_code == 404
    assert client.get(reverse("fleet:agent-slos", args=["no-such-agent"])).status_code == 404


def test_navigation_has_slos_for_a_viewer(client, viewer):
    client.force_login(viewer)
    page = client.get(reverse("home")).content.decode()
    assert '<a href="/slos/" >SLOs</a>' in page
    assert 'href="/slos/" title="SLO alerts firing: open the SLO list">0 alerts</a>' in page


def test_the_top_bar_counts_open_slo_alerts(client, viewer):
    from django.utils import timezone

    slo = make_slo("fleet-acceptance", state="critical")
    now = timezone.now()
    for long_window, resolved in (("1h", None), ("6h", None), ("1d", now)):
        SloAlert.objects.create(
            slo=slo,
            severity="page",
            long_window=long_window,
            short_window="5m",
            factor=Decimal("13.44"),
            started_at=now,
            resolved_at=resolved,
            peak_burn_rate=Decimal("20"),
            last_burn_rate=Decimal("20"),
        )
    client.force_login(viewer)
    page = client.get(reverse("home")).content.decode()
    assert (
        '<a class="pill danger" href="/slos/" title="SLO alerts firing: open the SLO list">'
        "2 alerts</a>"
    ) in page


# ---------------------------------------------------------------- the list


def test_tiles_show_state_sli_budget_burn_and_scope(client, viewer, team, sweeper):
    make_slo(
        "sweeper-acceptance",
        agent=sweeper,
        objective=Decimal("0.95"),
        state="critical",
        status_sli=Decimal("0.58"),
        status_budget_remaining=Decimal("-7.4"),
        status_worst_burn_rate=Decimal("8.4"),
        status_good=14,
        status_total=24,
    )
    make_slo(
        "platform-rollback",
        team=team,
        sli="rollback",
        objective=Decimal("0.95"),
        state="ok",
        status_sli=Decimal("0.981234"),
        status_budget_remaining=Decimal("0.6247"),
        status_worst_burn_rate=Decimal("0.3"),
    )
    make_slo("fleet-cost", sli="cost_per_action", threshold=Decimal("0.5"), state="no_data")
    client.force_login(viewer)
    page = client.get(reverse("slo:list")).content.decode()

    critical = tile_html(page, "sweeper-acceptance")
    assert 'class="slo-tile critical"' in critical
    assert '<span class="badge critical">critical</span>' in critical
    assert '<span class="fig slo-sli below">58.00 %</span>' in critical  # under 95 %
    assert "SLI · objective 95 %" in critical
    assert '<span class="fig slo-budget exhausted">\u2212740.0 %</span>' in critical
    assert "budget spent" in critical
    assert '<span class="fig slo-burn">8.40\u00d7</span>' in critical
    assert "Acceptance · agent cost-sweeper · rolling 28 d" in critical

    ok = tile_html(page, "platform-rollback")
    assert 'class="slo-tile ok"' in ok
    assert '<span class="fig slo-sli">98.12 %</span>' in ok
    assert '<span class="fig slo-budget">62.5 %</span>' in ok and "budget left" in ok
    assert '<span class="fig slo-burn">0.30\u00d7</span>' in ok
    assert "Rollback · team platform · rolling 28 d" in ok

    no_data = tile_html(page, "fleet-cost")
    assert 'class="slo-tile no_data"' in no_data
    assert '<span class="badge muted">no data</span>' in no_data
    assert '<span class="fig slo-sli">—</span>' in no_data
    assert "no recent SLI points" in no_data
    assert "Cost per action · all agents" in no_data

    assert '<span class="pill danger" data-state="critical">1 critical</span>' in page
    assert '<span class="pill ok" data-state="ok">1 ok</span>' in page
    assert '<span class="pill muted" data-state="no_data">1 no data</span>' in page


def test_tiles_are_sorted_worst_first(client, viewer):
    make_slo("ok-low-budget", state="ok", status_budget_remaining=Decimal("0.10"))
    make_slo("ok-high-budget", state="ok", status_budget_remaining=Decimal("0.90"))
    make_slo("warning-one", state="warning", status_budget_remaining=Decimal("0.50"))
    make_slo("critical-one", state="critical", status_budget_remaining=Decimal("0.80"))
    make_slo("never-evaluated")  # no status row: no data, last
    make_slo("empty-window", state="no_data")
    client.force_login(viewer)
    page = client.get(reverse("slo:list")).content.decode()
    assert tile_order(page) == [
        "critical-one",
        "warning-one",
        "ok-low-budget",
        "ok-high-budget",
        "empty-window",
        "never-evaluated",
    ]


def test_filters_narrow_the_tiles_and_htmx_gets_only_the_tiles(
    client, viewer, team, payments, sweeper
):
    payer = Agent.objects.create(slug="payments-sre", team=payments)
    make_slo("platform-acceptance", team=team, state="ok")
    make_slo("sweeper-rollback", agent=sweeper, sli="rollback", state="warning")
    make_slo("payments-acceptance", team=payments, state="ok")
    make_slo("payer-accuracy", agent=payer, sli="accuracy", state="ok")
    make_slo("fleet-recall", sli="recall", state="ok")
    client.force_login(viewer)
    url = reverse("slo:list")

    def slugs(**params: str) -> list[str]:
        return sorted(tile_order(client.get(url, params).content.decode()))

    assert slugs(team="platform") == ["platform-acceptance", "sweeper-rollback"]
    assert slugs(team="payments") == ["payer-accuracy", "payments-acceptance"]
    assert slugs(agent="cost-sweeper") == ["sweeper-rollback"]
    assert slugs(sli="acceptance") == ["payments-acceptance", "platform-acceptance"]
    assert slugs(team="payments", sli="accuracy") == ["payer-accuracy"]
    # An unknown SLI is ignored, not an error.
    assert len(slugs(sli="nonsense")) == 5
    assert "No SLO matches these filters" in client.get(url, {"team": "nobody"}).content.decode()

    partial = client.get(url, {"team": "payments"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial
    assert sorted(tile_order(partial)) == ["payer-accuracy", "payments-acceptance"]
    full = client.get(url, {"team": "payments"}).content.decode()
    assert "<option selected>payments</option>" in full
    assert 'hx-push-url="true"' in full


def test_list_reads_slos_in_a_constant_number_of_queries(client, viewer, team, sweeper):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("slo:list")).status_code == 200
        return len(ctx.captured_queries)

    client.force_login(viewer)
    for i in range(2):
        make_slo(f"a-{i}", team=team, state="ok", status_sparkline=[["t", 0.95]])
    client.get(reverse("slo:list"))  # session, roles: cached alike for both counts
    few = count_queries()
    for i in range(25):
        make_slo(f"b-{i}", agent=sweeper, state="warning", status_sparkline=[["t", 0.9]])
        make_slo(f"c-{i}")  # no status
    many = count_queries()
    assert many == few, (few, many)
    assert few <= 12, few


# ---------------------------------------------------------------- sparkline


def test_sparkline_coordinates_break_at_gaps_and_draw_the_objective():
    spark = sparkline(
        [["t0", 1.0], ["t1", 0.9], ["t2", None], ["t3", 0.95]], objective=Decimal("0.9")
    )
    assert spark is not None
    # viewBox 1200 x 280: y runs from 0.885 (just under the objective) at 260 to 1.0 at 20;
    # x steps 400 per point; the lone last point becomes a 30-unit stroke.
    assert spark.lines == ["0,20 400,229", "1185,124 1200,124"]
    assert spark.objective_y == 229
    assert spark.label == "SLI over the last 4 points, from 90.00 % to 100.00 %"
    assert sparkline([["t0", None]], objective=Decimal("0.9")) is None


def test_tile_renders_the_sparkline_svg(client, viewer):
    make_slo(
        "sparkly",
        state="ok",
        objective=Decimal("0.9"),
        status_sparkline=[["t0", 1.0], ["t1", 0.9], ["t2", None], ["t3", 0.95]],
    )
    client.force_login(viewer)
    tile = tile_html(client.get(reverse("slo:list")).content.decode(), "sparkly")
    assert (
        '<svg class="spark" viewBox="0 0 1200 280" preserveAspectRatio="none" role="img" '
        'aria-label="SLI over the last 4 points, from 90.00 % to 100.00 %">'
        '<line class="spark-objective" x1="0" x2="1200" y1="229" y2="229"/>'
        '<polyline points="0,20 400,229"/><polyline points="1185,124 1200,124"/></svg>'
    ) in tile


# ---------------------------------------------------------------- one SLO


def rollup_set(slo: Slo) -> None:
    for minute, good, total in [
        (datetime(2026, 11, 13, 12, 29, tzinfo=UTC), 0, 9),  # a minute before the window
        (datetime(2026, 11, 13, 12, 30, tzinfo=UTC), 0, 2),  # its first minute
        (datetime(2026, 11, 20, 9, 10, tzinfo=UTC), 8, 10),
        (datetime(2026, 11, 20, 10, 5, tzinfo=UTC), 10, 10),
        (datetime(2026, 11, 20, 11, 59, tzinfo=UTC), 3, 5),
    ]:
        SloRollup.objects.create(slo=slo, minute=minute, good=good, total=total)


def test_chart_data_from_a_hand_made_rollup_set(team):
    slo = make_slo("platform-acceptance", team=team, window_days=7, objective=Decimal("0.9"))
    rollup_set(slo)
    slo = Slo.objects.get(pk=slo.pk)
    page = slo_page(slo=slo, now=NOW)

    sli = page["sli_chart"]
    # 7 days at 2 h per point from 2026-11-13 12:00: 85 points.
    xs, ys = sli["data"][0]["x"], sli["data"][0]["y"]
    assert len(xs) == 85
    assert xs[0] == "2026-11-13T12:00:00Z" and xs[-1] == "2026-11-20T12:00:00Z"
    known = {x: y for x, y in zip(xs, ys, strict=True) if y is not None}
    assert known == {
        "2026-11-13T12:00:00Z": 0.0,
        "2026-11-20T08:00:00Z": 80.0,
        "2026-11-20T10:00:00Z": 86.6667,  # 13 good of 15
    }
    assert sli["data"][0]["text"][-2] == "13 good of 15"
    assert sli["data"][1]["name"] == "objective 90 %"
    assert sli["data"][1]["y"] == [90.0, 90.0]
    assert sli["layout"]["title"]["text"] == "SLI per 2 h against the objective"
    assert sli["layout"]["yaxis"]["title"]["text"] == "good events (%)"

    burndown = page["burndown_chart"]
    # 27 events in the window; the budget is 10 % of them (2.7 bad events).
    assert burndown["data"][0]["x"] == [
        "2026-11-13T12:30:00Z",
        "2026-11-13T13:00:00Z",
        "2026-11-20T10:00:00Z",
        "2026-11-20T11:00:00Z",
        "2026-11-20T12:00:00Z",
    ]
    assert burndown["data"][0]["y"] == [100.0, 25.9259, -48.1481, -48.1481, -122.2222]
    assert burndown["data"][1]["x"] == ["2026-11-13T12:30:00Z", "2026-11-20T12:30:00Z"]
    assert burndown["data"][1]["y"] == [100.0, 0.0]
    assert burndown["layout"]["title"]["text"] == "Error budget left over the window"
    assert burndown["layout"]["yaxis"]["title"]["text"] == "budget left (%)"


def test_burn_rate_chart_draws_the_alert_factors_of_the_period():
    slo = Slo(slug="x", objective=Decimal("0.99"), window_days=28)
    status = SloStatus(burn_rates={"5m": 20.0, "1h": 14.0, "3d": 0.5})
    chart = burn_rate_chart(slo, status, timedelta(days=28))
    bars = chart["data"][0]
    assert bars["x"] == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    assert bars["y"] == [20.0, None, 14.0, None, None, None, 0.5]
    rules = [(t["name"], t["x"], t["y"]) for t in chart["data"][1:]]
    assert rules == [
        ("page 1h & 5m: 13.44\u00d7", ["5m", "1h"], [13.44, 13.44]),
        ("page 6h & 30m: 5.6\u00d7", ["30m", "6h"], [5.6, 5.6]),
        ("ticket 1d & 2h: 2.8\u00d7", ["2h", "1d"], [2.8, 2.8]),
        ("ticket 3d & 6h: 0.93\u00d7", ["6h", "3d"], [0.93, 0.93]),
    ]
    assert chart["layout"]["yaxis"]["title"]["text"] == "burn rate (\u00d7 budget pace)"


def test_slo_page_shows_figures_alerts_and_worst_actions(client, viewer, team, sweeper):
    slo = make_slo(
        "sweeper-ttp",
        agent=sweeper,
        sli="time_to_propose",
        threshold=Decimal("300"),
        objective=Decimal("0.9"),
        state="warning",
        status_sli=Decimal("0.85"),
        status_budget_remaining=Decimal("-0.5"),
        status_worst_burn_rate=Decimal("3.1"),
        status_burn_rates={"5m": 0, "30m": 1.25, "1d": 3.1},
        status_good=17,
        status_total=20,
    )
    SloAlert.objects.create(
        slo=slo,
        severity="ticket",
        long_window="1d",
        short_window="2h",
        factor=Decimal("2.8"),
        started_at=NOW - timedelta(hours=3),
        peak_burn_rate=Decimal("3.5"),
        last_burn_rate=Decimal("3.1"),
    )
    SloAlert.objects.create(
        slo=slo,
        severity="page",
        long_window="1h",
        short_window="5m",
        factor=Decimal("13.44"),
        started_at=NOW - timedelta(days=2),
        resolved_at=NOW - timedelta(days=2) + timedelta(minutes=40),
        peak_burn_rate=Decimal("15"),
        last_burn_rate=Decimal("2"),
    )
    Action.objects.create(
        action_id="act-slow-1",
        agent=sweeper,
        status="succeeded",
        action_type="cloud.stop_idle_instance",
        target="k8s://prod/api",
    )
    for subject, seconds, minutes_ago in [
        ("act-slow-1", "912", 60),
        ("act-slow-2", "450.5", 30),
        ("act-fast", "20", 10),  # good: under 300 s
    ]:
        SliFact.objects.create(
            kind="time_to_propose",
            subject=subject,
            agent=sweeper,
            team=team,
            minute=NOW - timedelta(minutes=minutes_ago),
            value=Decimal(seconds),
        )
    SliFact.objects.create(  # bad but another agent's: not this SLO's
        kind="time_to_propose",
        subject="act-other",
        agent=Agent.objects.create(slug="other", team=team),
        team=team,
        minute=NOW - timedelta(minutes=5),
        value=Decimal("999"),
    )
    client.force_login(viewer)
    with time_machine.travel(NOW, tick=False):
        page = client.get(reverse("slo:detail", args=[slo.slug])).content.decode()

    assert '<span class="badge warn" id="slo-state">warning</span>' in page
    assert '<div class="card danger"><div class="value" id="slo-sli">85.00 %</div>' in page
    assert "SLI now · objective 90 %" in page
    assert '<div class="value" id="slo-budget">\u221250.0 %</div>' in page
    assert "error budget spent" in page
    assert '<div class="value" id="slo-burn">3.10\u00d7</div>' in page
    assert "17 / 20" in page
    assert "proposals made within 300 s of the first alert" in page
    assert '<td class="num" data-window="30m">1.25\u00d7</td>' in page
    assert '<td class="num" data-window="1d">3.10\u00d7</td>' in page
    assert '<td class="num" data-window="6h">—</td>' in page
    # The period's factors: 28 days.
    for factor in ("13.44\u00d7", "5.60\u00d7", "2.80\u00d7", "0.93\u00d7"):
        assert f'<td class="num">{factor}</td>' in page
    # Alert history: the open one first.
    alerts = page[page.index('id="alerts"') : page.index('id="worst"')]
    assert alerts.index("firing") < alerts.index("resolved")
    assert "3h" in alerts and "40m" in alerts and "15.00\u00d7" in alerts
    # Worst actions: the slowest first, linked to their provenance; not another agent's.
    worst = page[page.index('id="worst"') :]
    assert worst.index("912 s") < worst.index("450.5 s")
    assert '<a href="/actions/act-slow-1/">cloud.stop_idle_instance k8s://prod/api</a>' in worst
    assert '<a href="/actions/act-slow-2/">act-slow-2</a>' in worst
    assert "act-fast" not in worst and "act-other" not in worst
    # Chart data for Plotly, and no Edit link for a viewer.
    assert 'id="sli-chart-data"' in page and 'id="burn-chart-data"' in page
    assert "/slos/sweeper-ttp/edit" not in page


def test_edit_link_only_for_sre_lead(client, viewer, sre_lead):
    """And the list offers "New SLO" to the same people."""
    slo = make_slo("fleet-acceptance", state="ok")
    url = reverse("slo:detail", args=[slo.slug])
    client.force_login(viewer)
    assert 'href="/slos/fleet-acceptance/edit/"' not in client.get(url).content.decode()
    client.force_login(sre_lead)
    assert 'href="/slos/fleet-acceptance/edit/">Edit</a>' in client.get(url).content.decode()
    assert 'href="/slos/new/">New SLO</a>' in client.get(reverse("slo:list")).content.decode()
    client.force_login(viewer)
    assert "New SLO" not in client.get(reverse("slo:list")).content.decode()


def test_recall_worst_rows_link_to_the_incident(client, viewer, team, agent):
    slo = make_slo("fleet-recall", sli="recall", objective=Decimal("0.8"), state="ok")
    SliFact.objects.create(
        kind="recall",
        subject="INC-42",
        agent=agent,
        team=team,
        minute=NOW - timedelta(hours=1),
        good=False,
    )
    client.force_login(viewer)
    with time_machine.travel(NOW, tick=False):
        page = client.get(reverse("slo:detail", args=[slo.slug])).content.decode()
    assert '<a href="/audit/events/?incident_id=INC-42">incident INC-42</a>' in page


# ---------------------------------------------------------------- scorecard


def test_scorecard_shows_the_agents_slos_marked_and_its_autonomy_history(
    client, viewer, admin_person, team, payments, sweeper
):
    from apps.audit.services.opsdash_events import opsdash_event_record

    make_slo("sweeper-acceptance", agent=sweeper, state="critical")
    make_slo("platform-rollback", team=team, sli="rollback", state="ok")
    make_slo("fleet-recall", sli="recall", state="warning")
    make_slo("payments-acceptance", team=payments, state="critical")  # another team's
    other = Agent.objects.create(slug="k8s-healer", team=team)
    make_slo("healer-accuracy", agent=other, sli="accuracy", state="ok")  # another agent's
    opsdash_event_record(
        agent=sweeper,
        event_type="autonomy_change",
        data={
            "from": "auto_low_risk",
            "to": "suggest",
            "reason": "rollback SLO paged",
            "by": "opsdash",
        },
    )
    client.force_login(viewer)
    page = client.get(reverse("fleet:agent-slos", args=[sweeper.slug])).content.decode()
    assert tile_order(page) == ["sweeper-acceptance", "fleet-recall", "platform-rollback"]
    assert '<span class="badge info" title="scoped to this agent">agent</span>' in tile_html(
        page, "sweeper-acceptance"
    )
    assert '<span class="badge info" title="scoped to this team">team</span>' in tile_html(
        page, "platform-rollback"
    )
    assert '<span class="badge info" title="applies to every agent">global</span>' in tile_html(
        page, "fleet-recall"
    )
    assert (
        '<div class="value text" id="autonomy-mode" title="suggest">'
        "Suggest (every action needs approval)</div>"
    ) in page
    history = page[page.index('id="autonomy-history"') :]
    assert "<td>auto_low_risk</td><td><strong>suggest</strong></td>" in history
    assert "<td>opsdash</td><td>rollback SLO paged</td>" in history
    # The agent's settings page is linked for an admin only, and links back.
    assert f'href="/fleet/agents/{sweeper.slug}/"' not in page
    assert 'id="promotion"' not in page
    client.force_login(admin_person)
    page = client.get(reverse("fleet:agent-slos", args=[sweeper.slug])).content.decode()
    assert f'href="/fleet/agents/{sweeper.slug}/"' in page
    settings_page = client.get(reverse("fleet:agent", args=[sweeper.slug])).content.decode()
    assert f'href="/fleet/agents/{sweeper.slug}/slos/"' in settings_page


def test_scorecard_shows_a_promotion_suggestion_when_the_agent_has_earned_one(
    client, viewer, sweeper
):
    """Accuracy and recall met over the promotion period with enough actions: the engine's
    own promotion rule, on real rows."""
    from django.utils import timezone

    from apps.actions.models import Action

    now = timezone.now()
    accuracy = make_slo("sweeper-accuracy", sli="accuracy", scope="agent", agent=sweeper)
    recall = make_slo(
        "sweeper-recall", sli="recall", scope="agent", agent=sweeper, objective=Decimal("0.8")
    )
    minute = (now - timedelta(days=30)).replace(second=0, microsecond=0)
    SloRollup.objects.create(slo=accuracy, minute=minute, good=95, total=100)
    SloRollup.objects.create(slo=recall, minute=minute, good=9, total=10)
    Action.objects.bulk_create(
        Action(action_id=f"sweep-{i}", agent=sweeper, proposed_at=now - timedelta(days=1))
        for i in range(50)
    )
    client.force_login(viewer)
    page = client.get(reverse("fleet:agent-slos", args=[sweeper.slug])).content.decode()
    assert (
        '<div class="message success" id="promotion">cost-sweeper meets its SLOs: consider '
        "promoting it to auto_low_risk (90 days, 50 actions, every SLO met).</div>"
    ) in page


# ---------------------------------------------------------------- demo


def test_demo_slos_are_created_once():
    from apps.demo.generator import DEMO_AGENTS, DEMO_TEAMS
    from apps.demo.slos import DEMO_SLOS, demo_slos_ensure

    teams = {slug: Team.objects.create(slug=slug, name=name) for slug, name, _ in DEMO_TEAMS}
    for spec in DEMO_AGENTS:
        Agent.objects.create(slug=spec.slug, team=teams[spec.team], autonomy_mode=spec.mode)
    assert demo_slos_ensure() == len(DEMO_SLOS) == 14
    assert demo_slos_ensure() == 0
    burner = Slo.objects.get(slug="cost-sweeper-acceptance")
    assert (burner.scope, burner.agent.slug, burner.objective) == (
        "agent",
        "cost-sweeper",
        Decimal("0.95000"),
    )
    ttp = Slo.objects.get(slug="payments-time-to-propose")
    assert (ttp.threshold, ttp.objective, ttp.team.slug) == (
        Decimal("300.000000"),
        Decimal("0.75000"),
        "payments",
    )
    canary = Slo.objects.get(slug="k8s-healer-v2-rollback")
    assert (canary.agent_version, canary.window_days) == ("2.0.0", 7)
    assert list(Slo.objects.filter(scope="all").values_list("slug", flat=True)) == [
        "fleet-accuracy",
        "fleet-cost-per-action",
        "fleet-recall",
    ]
