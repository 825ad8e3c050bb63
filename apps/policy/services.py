import hashlib
import logging
from datetime import datetime

from django.db import DatabaseError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.policy.engine import Decision, Proposal
from apps.policy.models import PolicyShadow, PolicyVersion, ShadowDecision
from apps.policy.schema import PolicyInvalid, policy_parse
from apps.policy.selectors import compiled_version, shadow_config, shadow_config_forget

logger = logging.getLogger(__name__)


class PolicyRefused(ValueError):
    """A policy operation that the rules forbid (not a malformed document)."""


@transaction.atomic
def policy_version_create(
    *, source: str, created_by: str = "", note: str = "", activate: bool = True
) -> tuple[PolicyVersion, bool]:
    """Validates and stores a new version; returns (version, created).

    Loading the text that is already active is a no-op, so `load_policy` from git can run on
    every deploy. Raises PolicyInvalid (with line numbers) for a bad document.
    """
    policy_parse(source)
    digest = hashlib.sha256(source.encode()).hexdigest()
    active = PolicyVersion.objects.select_for_update().filter(active=True).first()
    if active is not None and active.sha256 == digest:
        return active, False
    number = (PolicyVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
    version = PolicyVersion.objects.create(
        number=number, source=source, sha256=digest, note=note, created_by=created_by
    )
    if activate:
        version = policy_version_activate(version=version, activated_by=created_by)
    return version, True


@transaction.atomic
def policy_version_activate(*, version: PolicyVersion, activated_by: str = "") -> PolicyVersion:
    """Makes `version` the active one (a rollback when it is older); a no-op if it already is.

    A running shadow of this very version is stopped: it would only compare the policy with
    itself from now on.
    """
    # Lock the active row so two activations at once run one after the other.
    current = PolicyVersion.objects.select_for_update().filter(active=True).first()
    if current is not None and current.pk == version.pk:
        version.refresh_from_db()
        return version
    # Deactivate first: the partial unique index allows one active row at any instant.
    PolicyVersion.objects.filter(active=True).exclude(pk=version.pk).update(active=False)
    PolicyVersion.objects.filter(pk=version.pk).update(
        active=True, activated_at=timezone.now(), activated_by=activated_by
    )
    PolicyShadow.objects.filter(running=True, version=version).update(
        running=False, stopped_at=timezone.now(), stopped_by=activated_by or "activation"
    )
    _forget_shadow_config()
    version.refresh_from_db()
    return version


@transaction.atomic
def policy_shadow_start(
    *, version: PolicyVersion, agents: list[str], started_by: str = ""
) -> PolicyShadow:
    """Evaluates `version` beside the active policy for `agents` (slugs) from now on.

    Raises PolicyRefused when a shadow already runs (stop it first) or the version is active.
    Other processes pick the change up within SHADOW_CACHE_SECONDS.
    """
    from apps.fleet.models import Agent

    slugs = sorted(set(agents))
    if not slugs:
        raise PolicyRefused("Choose at least one agent for the shadow.")
    known = set(Agent.objects.filter(slug__in=slugs).values_list("slug", flat=True))
    unknown = [s for s in slugs if s not in known]
    if unknown:
        raise PolicyRefused(f"No agent named {', '.join(unknown)}.")
    if PolicyVersion.objects.filter(pk=version.pk, active=True).exists():
        raise PolicyRefused(
            f"v{version.number} is the active policy; a shadow must be a different version."
        )
    running = PolicyShadow.objects.select_for_update().filter(running=True).first()
    if running is not None:
        raise PolicyRefused(
            f"A shadow of v{running.version.number} is already running; stop it first."
        )
    shadow = PolicyShadow.objects.create(version=version, agents=slugs, started_by=started_by)
    _forget_shadow_config()
    return shadow


@transaction.atomic
def policy_shadow_stop(*, stopped_by: str = "") -> PolicyShadow | None:
    """Stops the running shadow (its recorded decisions stay); None when none was running."""
    shadow = PolicyShadow.objects.select_for_update().filter(running=True).first()
    if shadow is None:
        return None
    shadow.running = False
    shadow.stopped_at = timezone.now()
    shadow.stopped_by = stopped_by
    shadow.save(update_fields=["running", "stopped_at", "stopped_by"])
    _forget_shadow_config()
    return shadow


def _forget_shadow_config() -> None:
    # Now, so this transaction sees its own change, and after commit, so a lookup made in
    # between by another thread does not keep the old configuration for a whole TTL.
    shadow_config_forget()
    transaction.on_commit(shadow_config_forget)


def policy_shadow_evaluate(
    *, proposal: Proposal, active: Decision, action_id: str, now: datetime
) -> None:
    """Evaluates the shadow version (if one covers proposal.agent) and records its decision.

    Call it inside the proposal transaction, after the active decision: the row then commits
    (or rolls back) with the proposal and shares its commit. With no shadow, or one that does
    not cover this agent, it costs no query (the configuration is cached per process for
    SHADOW_CACHE_SECONDS). A shadow never changes or blocks the real decision: a failure is
    logged and the proposal goes on.
    """
    config = shadow_config()
    if config is None or proposal.agent not in config.agents:
        return
    try:
        decision = compiled_version(config.version_id, config.number).evaluate(proposal, now=now)
        row = ShadowDecision(
            shadow_id=config.shadow_id,
            version_id=config.version_id,
            action_id=action_id[:128],
            agent=proposal.agent,
            action_type=proposal.action_type[:128],
            target=proposal.target[:1000],
            active_version=active.policy_version,
            active_status=active.status,
            active_reasons=active.reasons,
            shadow_status=decision.status,
            shadow_reasons=decision.reasons,
            differs=decision.status != active.status,
            evaluated_at=now,
        )
        # A savepoint (two cheap round trips), so a failed insert cannot poison the proposal's
        # transaction. A retried proposal evaluates again; the unique (version, action_id)
        # keeps one row.
        with transaction.atomic():
            ShadowDecision.objects.bulk_create([row], ignore_conflicts=True)
    except (DatabaseError, PolicyInvalid, ValueError, TypeError, LookupError):
        logger.exception("shadow evaluation of %s failed; the proposal is unaffected", action_id)
