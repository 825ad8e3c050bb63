import gzip
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.actions.models import Action
from apps.audit.models import Event
from tests.conftest import event

pytestmark = pytest.mark.django_db


def _write(path, lines, *, gz=False):
    data = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(data)
    else:
        path.write_text(data)


def _import(path, *extra):
    out = io.StringIO()
    call_command("import_events", str(path), *extra, stdout=out, verbosity=0)
    return out.getvalue()


def test_imports_good_lines_reports_bad_ones_and_reimport_is_a_no_op(tmp_path, agent):
    good = [
        event(),
        event(
            type="proposal",
            action_id="act-9",
            data={
                "action_type": "k8s.restart_deployment",
                "target": "k8s://prod/a/b",
                "risk": "low",
                "confidence": 0.9,
            },
        ),
    ]
    lines = [
        good[0],
        "{broken json",
        "",
        good[1],
        event(agent="nobody"),
        event(type="alert", data={}),
    ]
    path = tmp_path / "events.jsonl"
    _write(path, lines)
    summary = _import(path)
    assert "6 lines: 2 accepted, 0 duplicates, 3 rejected" in summary
    report = [
        json.loads(x) for x in (tmp_path / "events.jsonl.rejected.jsonl").read_text().splitlines()
    ]
    assert [r["line"] for r in report] == [2, 5, 6]
    assert "Not valid JSON" in report[0]["errors"]["non_field_errors"][0]
    assert "No agent 'nobody'" in report[1]["errors"]["agent"][0]
    assert "data.name" in report[2]["errors"]
    assert set(Event.objects.filter(source="import").values_list("id", flat=True)) == {
        __import__("uuid").UUID(g["id"]) for g in good
    }
    assert Action.objects.get(action_id="act-9").status == "pending_approval"
    again = _import(path)
    assert "0 accepted, 2 duplicates, 3 rejected" in again
    assert Event.objects.filter(source="import").count() == 2


def test_reads_gzip_and_removes_a_stale_report(tmp_path, agent):
    path = tmp_path / "events.jsonl.gz"
    _write(path, [event() for _ in range(5)], gz=True)
    (tmp_path / "events.jsonl.gz.rejected.jsonl").write_text("stale\n")
    assert "5 accepted" in _import(path)
    assert not (tmp_path / "events.jsonl.gz.rejected.jsonl").exists()


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        _import(tmp_path / "nope.jsonl")
