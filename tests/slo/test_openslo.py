"""OpenSLO v1: the exact YAML, a lossless round trip, refusals naming the field, hostile YAML,
the API endpoints and the management commands."""

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from apps.fleet.models import Agent, Team
from apps.slo.models import Slo, SloRollup
from apps.slo.openslo import OpensloInvalid, openslo_export_all, openslo_import
from apps.slo.services import slo_create
from tests.slo.api_helpers import (  # noqa: F401 (fixtures)
    lead_fixture,
    person_api_fixture,
    reader_fixture,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/slos/openslo"

TTP_YAML = """\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: triage-ttp
  displayName: Triage proposes within 2 minutes
  annotations:
    opsdash.dev/alerting: 'true'
    opsdash.dev/notify-in-app: 'true'
    opsdash.dev/notify-email: 'false'
    opsdash.dev/notify-webhook: 'false'
    opsdash.dev/auto-demote: 'false'
spec:
  description: From the first alert to the proposal.
  service: platform
  indicator:
    metadata:
      name: triage-ttp-sli
      displayName: Time to propose
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: opsdash
            spec:
              sli: time_to_propose
              scope: agent
              agent: triage-bot
              agent_version: v2
              threshold: 120.5
        total:
          metricSource:
            type: opsdash
            spec:
              sli: time_to_propose
              scope: agent
              agent: triage-bot
              agent_version: v2
              threshold: 120.5
  timeWindow:
  - duration: 28d
    isRolling: true
  budgetingMethod: Occurrences
  objectives:
  - displayName: Triage proposes within 2 minutes
    target: 0.95
"""


@pytest.fixture
def fleet(agent: Agent, other_agent: Agent, make_person: Any) -> dict[str, Any]:
    payments = Team.objects.create(slug="payments", name="Payments")
    Agent.objects.create(slug="pay-bot", team=payments, autonomy_mode="suggest")
    make_person("alex", "admin")
    make_person("dana", "sre_lead")
    return {"payments": payments}


def _variety() -> None:
    """One SLO of each shape opsdash supports."""
    slo_create(
        by="t",
        slug="triage-ttp",
        name="Triage proposes within 2 minutes",
        description="From the first alert to the proposal.",
        sli="time_to_propose",
        scope="agent",
        agent="triage-bot",
        agent_version="v2",
        objective="0.95",
        threshold="120.5",
    )
    slo_create(
        by="t",
        slug="pay-acceptance",
        name="Payments proposals accepted",
        sli="acceptance",
        scope="team",
        team="payments",
        objective="0.9",
        window_kind="calendar_month",
        time_zone="Europe/Paris",
        alerting=False,
        owners=["dana", "alex"],
    )
    slo_create(
        by="t",
        slug="healer-rollbacks",
        name="Healer rarely rolls back",
        sli="rollback",
        scope="agent",
        agent="k8s-healer",
        objective="0.995",
        window_days=7,
        rollback_window=timedelta(minutes=90),
        auto_demote=True,
        notify_email=True,
        notify_webhook=True,
        webhook_url="https://hooks.example.com/slo?x=1",
    )
    slo_create(
        by="t",
        slug="fleet-cost",
        name="Cost per action",
        sli="cost_per_action",
        objective="0.99999",
        threshold="0.012345",
        window_days=30,
    )
    slo_create(
        by="t",
        slug="api-availability",
        name="API availability",
        sli="promql",
        objective="0.999",
        good_query='sum(rate(http_requests_total{code!~"5.."}[5m]))',
        total_query="sum(rate(http_requests_total[5m]))",
    )


def test_export_writes_the_documented_openslo_v1_shape(fleet) -> None:
    slo_create(
        by="t",
        slug="triage-ttp",
        name="Triage proposes within 2 minutes",
        description="From the first alert to the proposal.",
        sli="time_to_propose",
        scope="agent",
        agent="triage-bot",
        agent_version="v2",
        objective="0.95",
        threshold="120.5",
    )
    assert openslo_export_all() == TTP_YAML


def test_round_trip_export_import_export_is_identical(fleet) -> None:
    _variety()
    first = openslo_export_all()
    Slo.objects.all().delete()
    result = openslo_import(first, by="sam")
    assert sorted(result.created) == [
        "api-availability",
        "fleet-cost",
        "healer-rollbacks",
        "pay-acceptance",
        "triage-ttp",
    ]
    assert openslo_export_all() == first
    healer = Slo.objects.get(slug="healer-rollbacks")
    assert (healer.rollback_window, healer.window_days, healer.webhook_url) == (
        timedelta(minutes=90),
        7,
        "https://hooks.example.com/slo?x=1",
    )
    pay = Slo.objects.get(slug="pay-acceptance")
    assert (pay.window_kind, pay.time_zone, pay.alerting) == (
        "calendar_month",
        "Europe/Paris",
        False,
    )
    assert sorted(pay.owners.values_list("username", flat=True)) == ["alex", "dana"]
    assert "  - displayName: Cost per action\n    target: 0.99999\n" in first
    assert "threshold: 0.012345" in first
    assert "    - duration: 1M" not in first  # lists are not indented under their key
    assert (
        "  - duration: 1M\n    isRolling: false\n    calendar:\n"
        "      startTime: '2020-01-01 00:00:00'\n      timeZone: Europe/Paris\n"
    ) in first


def test_importing_again_is_a_no_op_and_a_change_updates_by_name(fleet) -> None:
    _variety()
    text = openslo_export_all()
    again = openslo_import(text, by="sam")
    assert (again.created, again.updated, len(again.unchanged)) == ([], [], 5)
    assert Slo.objects.get(slug="triage-ttp").revision == 1

    changed = text.replace("threshold: 120.5", "threshold: 90").replace(
        "target: 0.95", "target: 0.97"
    )
    result = openslo_import(changed, by="sam")
    assert (result.created, result.updated) == ([], ["triage-ttp"])
    slo = Slo.objects.get(slug="triage-ttp")
    assert (format(slo.threshold.normalize(), "f"), str(slo.objective), slo.revision) == (
        "90",
        "0.97000",
        2,
    )


def test_dry_run_reports_and_saves_nothing(fleet) -> None:
    result = openslo_import(TTP_YAML, by="sam", dry_run=True)
    assert (result.created, result.dry_run) == (["triage-ttp"], True)
    assert Slo.objects.count() == 0


def test_other_kinds_are_skipped_with_a_note(fleet) -> None:
    text = (
        "apiVersion: openslo/v1\nkind: Service\nmetadata: {name: web}\nspec: {}\n---\n"
        + TTP_YAML
        + "---\napiVersion: openslo/v1\nkind: AlertPolicy\nmetadata: {name: p}\nspec: {}\n"
    )
    result = openslo_import(text, by="sam")
    assert result.created == ["triage-ttp"]
    assert result.skipped == [
        "document 1 (kind Service): opsdash takes the service from the SLO's team",
        "document 3 (kind AlertPolicy): opsdash alerts by multi-window burn rates, set per SLO "
        "in annotations",
    ]


def _refusals(text: str) -> list[str]:
    with pytest.raises(OpensloInvalid) as caught:
        openslo_import(text, by="sam")
    assert Slo.objects.count() == 0
    return [str(e) for e in caught.value.errors]


R = "spec.indicator.spec.ratioMetric"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "budgetingMethod: Occurrences",
            "budgetingMethod: Timeslices",
            [
                "document 1, spec.budgetingMethod: “Timeslices” is not supported; opsdash "
                "budgets by Occurrences (good events over total events)"
            ],
        ),
        (
            "    target: 0.95\n",
            "    target: 0.95\n  - displayName: second\n    target: 0.9\n",
            ["document 1, spec.objectives: 2 objectives; opsdash supports exactly one per SLO"],
        ),
        (
            "      ratioMetric:",
            "      thresholdMetric: {metricSource: {type: opsdash, spec: {}}}\n      ratioMetric:",
            [
                "document 1, spec.indicator.spec.thresholdMetric: thresholdMetric is not "
                "supported; opsdash SLIs are ratios (ratioMetric with good and total)"
            ],
        ),
        (
            "            type: opsdash\n",
            "            type: Datadog\n",
            [
                f"document 1, {R}.good.metricSource.type: metric source type “Datadog” is not "
                "supported; use opsdash (built-in SLIs) or prometheus (a PromQL query)",
                f"document 1, {R}.total.metricSource.type: metric source type “Datadog” is not "
                "supported; use opsdash (built-in SLIs) or prometheus (a PromQL query)",
            ],
        ),
        (
            "duration: 28d",
            "duration: 14d",
            [
                "document 1, spec.timeWindow[0].duration: “14d” is not supported; rolling "
                "windows are 7d, 28d or 30d"
            ],
        ),
        (
            "apiVersion: openslo/v1",
            "apiVersion: openslo/v1alpha",
            [
                "document 1, apiVersion: “openslo/v1alpha” is not supported; opsdash reads "
                "openslo/v1"
            ],
        ),
        (
            "kind: SLO",
            "kind: Composite",
            [
                "document 1, kind: unknown kind “Composite”; OpenSLO v1 kinds are SLO, Service, "
                "SLI, DataSource, AlertPolicy, AlertCondition, AlertNotificationTarget"
            ],
        ),
        (
            "              agent: triage-bot\n",
            "              agent: ghost-bot\n",
            [f"document 1, {R}.good.metricSource.spec.agent: There is no agent “ghost-bot”."],
        ),
        (
            "    target: 0.95",
            "    target: 0.3",
            [
                "document 1, spec.objectives[0].target: The objective is a ratio between 0.5 "
                "and 0.99999 (e.g. 0.99 for 99 %)."
            ],
        ),
        (
            "    opsdash.dev/alerting: 'true'",
            "    opsdash.dev/alerting: maybe",
            ['document 1, metadata.annotations.opsdash.dev/alerting: must be "true" or "false"'],
        ),
        (
            "spec:\n  description",
            "spec:\n  alertPolicies: [fast-burn]\n  description",
            [
                "document 1, spec.alertPolicies: alert policies are not supported; opsdash "
                "alerts by multi-window burn rates and reads notifications from opsdash.dev/* "
                "annotations"
            ],
        ),
        (
            "  indicator:\n",
            "  indicatorRef: shared-sli\n  indicator:\n",
            [
                "document 1, spec.indicatorRef: references to a separate SLI are not "
                "supported; put the indicator inline (spec.indicator)"
            ],
        ),
    ],
)
def test_unsupported_documents_are_refused_naming_the_field(fleet, old, new, expected) -> None:
    assert old in TTP_YAML
    assert _refusals(TTP_YAML.replace(old, new)) == expected


def test_one_bad_document_refuses_the_whole_file(fleet) -> None:
    bad = TTP_YAML.replace("name: triage-ttp\n", "name: other-ttp\n").replace(
        "threshold: 120.5", "threshold: -1"
    )
    errors = _refusals(TTP_YAML + "---\n" + bad)
    assert errors == [
        f"document 2, {R}.good.metricSource.spec.threshold: The threshold must be more than 0 "
        "seconds."
    ]


def test_duplicate_names_in_one_file_are_refused(fleet) -> None:
    assert _refusals(TTP_YAML + "---\n" + TTP_YAML) == [
        "document 2, metadata.name: “triage-ttp” is also document 1's name"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["document 1: the file holds no OpenSLO document"]),
        (
            "- just\n- a list\n",
            ["document 1: each document must be a mapping (apiVersion, kind, …)"],
        ),
        (
            "a: [unclosed\n",
            ["document 1, line 2: not valid YAML: did not find expected ',' or ']'"],
        ),
        (
            "a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: &e [*d, *d]\n"
            "f: &f [*e, *e]\ng: &g [*f, *f]\nh: &h [*g, *g]\ni: &i [*h, *h]\nj: &j [*i, *i]\n"
            "k: &k [*j, *j]\nl: &l [*k, *k]\nm: &m [*l, *l]\nn: &n [*m, *m]\no: &o [*n, *n]\n"
            "p: &p [*o, *o]\nq: &q [*p, *p]\nr: [*q, *q]\n",
            ["document 1, line 18: more than 32 aliases (*name); write the values out"],
        ),
        ("[" * 40 + "]" * 40, ["document 1, line 1: nested more than 32 levels deep"]),
        ("x: " + "y" * (600 * 1024), ["document 1: the file is 600 KB; the limit is 512 KB"]),
        ("a: !!python/object:os.system echo\n", None),
    ],
)
def test_hostile_yaml_is_refused(fleet, text, expected) -> None:
    errors = _refusals(text)
    if expected is None:
        assert len(errors) == 1 and errors[0].startswith("document 1, line 1: not valid YAML")
    else:
        assert errors == expected


# ---------------------------------------------------------------------------------------------
# API


def test_api_export_and_import(lead, reader, fleet) -> None:
    imported = lead.post(URL, TTP_YAML, content_type="application/yaml")
    assert imported.status_code == 200, imported.content
    assert imported.json() == {
        "created": ["triage-ttp"],
        "updated": [],
        "unchanged": [],
        "skipped": [],
        "dry_run": False,
    }
    exported = reader.get(URL)
    assert exported.status_code == 200
    assert exported["Content-Type"] == "application/yaml; charset=utf-8"
    assert exported.content.decode() == TTP_YAML
    one = reader.get(f"{URL}?slo=triage-ttp")
    assert one.content.decode() == TTP_YAML
    assert reader.get(f"{URL}?slo=nope").status_code == 404


def test_api_import_errors_and_roles(lead, reader, fleet) -> None:
    assert reader.post(URL, TTP_YAML, content_type="application/yaml").status_code == 403
    bad = lead.post(
        URL, TTP_YAML.replace("Occurrences", "Timeslices"), content_type="application/yaml"
    )
    assert bad.status_code == 400
    assert bad.json() == {
        "error": "The OpenSLO file is not valid; nothing was saved.",
        "status": 400,
        "errors": [
            {
                "document": 1,
                "path": "spec.budgetingMethod",
                "message": "“Timeslices” is not supported; opsdash budgets by Occurrences "
                "(good events over total events)",
            }
        ],
    }
    dry = lead.post(f"{URL}?dry_run=1", TTP_YAML, content_type="application/yaml")
    assert (dry.status_code, dry.json()["created"], dry.json()["dry_run"]) == (
        200,
        ["triage-ttp"],
        True,
    )
    assert Slo.objects.count() == 0
    huge = lead.post(URL, "x: " + "y" * (600 * 1024), content_type="application/yaml")
    assert huge.status_code == 413
    assert huge.json()["error"] == (
        "The file is 600 KB; the limit is 512 KB. Split it into several imports."
    )
    binary = lead.post(URL, b"\xff\xfe\x00garbage", content_type="application/yaml")
    assert binary.status_code == 400
    assert binary.json()["errors"][0]["message"] == "the file is not UTF-8 text"


# ---------------------------------------------------------------------------------------------
# Commands


def test_commands_export_and_import(fleet, tmp_path: Path) -> None:
    _variety()
    out = io.StringIO()
    call_command("export_openslo", stdout=out)
    exported = out.getvalue()
    assert exported == openslo_export_all()
    one = io.StringIO()
    call_command("export_openslo", "--slo", "triage-ttp", stdout=one)
    assert one.getvalue() == TTP_YAML

    Slo.objects.all().delete()
    path = tmp_path / "slos.yaml"
    path.write_text(exported)
    dry = io.StringIO()
    call_command("import_openslo", str(path), "--dry-run", stdout=dry)
    assert dry.getvalue() == (
        "Would have created: api-availability, fleet-cost, healer-rollbacks, pay-acceptance, "
        "triage-ttp\n"
    )
    assert Slo.objects.count() == 0
    done = io.StringIO()
    call_command("import_openslo", str(path), stdout=done)
    assert done.getvalue().startswith("Created: api-availability, ")
    assert Slo.objects.count() == 5

    path.write_text(TTP_YAML.replace("Occurrences", "Timeslices"))
    err = io.StringIO()
    with pytest.raises(CommandError, match="is not valid OpenSLO for opsdash; nothing was saved"):
        call_command("import_openslo", str(path), stderr=err)
    assert "spec.budgetingMethod: “Timeslices” is not supported" in err.getvalue()
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_openslo", str(tmp_path / "missing.yaml"))
    with pytest.raises(CommandError, match="There is no SLO “nope”"):
        call_command("export_openslo", "--slo", "nope")


def test_nul_characters_and_wrong_types_are_refused_not_crashed(fleet) -> None:
    nul_name = TTP_YAML.replace("name: triage-ttp\n", 'name: "triage\\0ttp"\n')
    assert _refusals(nul_name) == [
        "document 1, metadata.name: use 1 to 63 lowercase letters, digits and hyphens, starting "
        "and ending with a letter or digit"
    ]
    nul_agent = TTP_YAML.replace("agent: triage-bot", 'agent: "triage\\0bot"')
    assert _refusals(nul_agent) == [
        f"document 1, {R}.good.metricSource.spec.agent: There is no agent “triage\x00bot”."
    ]
    wrong = (
        TTP_YAML.replace("agent: triage-bot", "agent: [1]")
        .replace("    target: 0.95", "    target: '0.95'")
        .replace("isRolling: true", "isRolling: 'yes'")
    )
    assert _refusals(wrong) == [
        f"document 1, {R}.good.metricSource.spec.agent: must be text",
        "document 1, spec.timeWindow[0].isRolling: must be true or false",
        "document 1, spec.objectives[0].target: must be a number between 0.5 and 0.99999",
    ]


def test_dry_run_of_an_update_reports_it_without_writing_or_rebuilding(fleet) -> None:
    _variety()
    slo = Slo.objects.get(slug="triage-ttp")
    # No fact backs this minute: rebuilding triage-ttp's rollups would delete it.
    minute = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
    SloRollup.objects.create(slo=slo, minute=minute, good=7, total=9)
    changed = openslo_export_all().replace("threshold: 120.5", "threshold: 60")

    result = openslo_import(changed, by="sam", dry_run=True)
    assert (result.updated, len(result.unchanged), result.created) == (["triage-ttp"], 4, [])
    stored = Slo.objects.get(slug="triage-ttp")
    assert (format(stored.threshold.normalize(), "f"), stored.revision) == ("120.5", 1)
    assert list(SloRollup.objects.values_list("slo__slug", "minute", "good", "total")) == [
        ("triage-ttp", minute, 7, 9)
    ]

    # The same import for real rewrites the threshold and rebuilds: the unbacked minute goes.
    result = openslo_import(changed, by="sam")
    assert result.updated == ["triage-ttp"]
    stored = Slo.objects.get(slug="triage-ttp")
    assert (format(stored.threshold.normalize(), "f"), stored.revision) == ("60", 2)
    assert SloRollup.objects.count() == 0


def test_export_of_every_slo_costs_a_fixed_number_of_queries(
    fleet, django_assert_num_queries
) -> None:
    _variety()
    with django_assert_num_queries(2):  # the SLOs with team and agent, then their owners
        text = openslo_export_all()
    assert text.count("kind: SLO") == 5
