import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from apps.policy.models import PolicyVersion
from apps.policy.selectors import active_policy
from apps.policy.services import policy_version_activate, policy_version_create

pytestmark = pytest.mark.django_db

V1 = "rules:\n  - id: allow-k8s\n    effect: allow\n    match: {action_type: 'k8s.*'}\n"
V2 = V1 + "  - id: no-db\n    effect: deny\n    match: {action_type: 'db.*'}\n"


def _load(path, *args):
    out, err = io.StringIO(), io.StringIO()
    call_command("load_policy", str(path), *args, stdout=out, stderr=err)
    return out.getvalue()


def test_load_policy_versions_and_is_idempotent(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(V1)
    assert "as policy v1 (active)" in _load(path)
    assert "already the active policy v1" in _load(path)
    path.write_text(V2)
    assert "as policy v2 (active)" in _load(path)
    assert list(PolicyVersion.objects.values_list("number", "active")) == [(2, True), (1, False)]
    assert active_policy().version == 2
    assert [r.rule.id for r in active_policy().deny] == ["no-db"]


def test_a_bad_file_is_refused_with_its_line_and_nothing_changes(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(V1)
    _load(path)
    path.write_text(V1 + "  - id: broken\n    effect: sometimes\n")
    err = io.StringIO()
    with pytest.raises(CommandError, match="not a valid policy"):
        call_command("load_policy", str(path), stdout=io.StringIO(), stderr=err)
    assert f"{path}:6:" in err.getvalue()
    assert PolicyVersion.objects.get(active=True).number == 1


def test_check_only_validates(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(V2)
    assert "valid, 2 rules" in _load(path, "--check")
    assert not PolicyVersion.objects.exists()


def test_the_database_allows_one_active_version():
    first, _ = policy_version_create(source=V1)
    second, _ = policy_version_create(source=V2, activate=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        PolicyVersion.objects.filter(pk=second.pk).update(active=True)
    policy_version_activate(version=second)
    first.refresh_from_db()
    assert (first.active, PolicyVersion.objects.get(pk=second.pk).active) == (False, True)


def test_without_a_policy_everything_asks_a_person():
    from apps.policy.engine import Proposal

    decision = active_policy().evaluate(
        Proposal(
            action_type="k8s.restart_deployment",
            target="k8s://prod/a/b",
            env="prod",
            risk="low",
            confidence=0.99,
            agent="bot",
            team="t",
            autonomy_mode="auto_low_risk",
        )
    )
    assert decision.status == "pending_approval"
    assert decision.policy_version is None
