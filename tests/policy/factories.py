"""Hand-built actions as the read model holds them after a proposal and its decision."""

import uuid
from datetime import datetime
from typing import Any

from apps.actions.models import Action
from apps.fleet.models import Agent


def proposed_action(
    agent: Agent,
    action_id: str,
    proposed_at: datetime,
    *,
    decision: str = "approved",
    decided_by: str = "policy",
    policy_version: str = "1",
    **fields: Any,
) -> Action:
    values: dict[str, Any] = {
        "action_type": "k8s.restart_deployment",
        "target": "k8s://prod/search/api",
        "env": "prod",
        "risk": "low",
        "confidence": 0.9,
        "rollback_plan": "re-apply the previous revision",
        "parameters": {"replicas": 3},
        "decision_reasons": [f"decided {decision}"],
    }
    values.update(fields)
    return Action.objects.create(
        agent=agent,
        action_id=action_id,
        proposal_event_id=uuid.uuid4(),
        proposed_at=proposed_at,
        decision=decision,
        decided_by=decided_by,
        decided_at=proposed_at if decision else None,
        policy_version=policy_version,
        status=decision or "pending_approval",
        **values,
    )
