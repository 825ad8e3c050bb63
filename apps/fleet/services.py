import re
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from apps.core.secrets import AGENT_TOKEN_PREFIX, token_digest, token_generate
from apps.fleet.models import Agent, AgentToken, AutonomyMode, Team, TokenScope


def team_create(*, slug: str, name: str = "", cost_centre: str = "", owner_email: str = "") -> Team:
    team = Team(
        slug=slug,
        name=name or slug.replace("-", " ").title(),
        cost_centre=cost_centre,
        owner_email=owner_email,
    )
    team.full_clean()
    team.save()
    return team


def agent_create(
    *,
    slug: str,
    team: Team,
    mode: str = AutonomyMode.SUGGEST,
    name: str = "",
    environment: str = "prod",
) -> Agent:
    if mode not in AutonomyMode.values:
        raise ValidationError(
            {
                "autonomy_mode": f"Unknown mode {mode!r}; choose one of {', '.join(AutonomyMode.values)}."
            }
        )
    agent = Agent(
        slug=slug, team=team, autonomy_mode=mode, name=name or slug, environment=environment
    )
    agent.full_clean()
    agent.save()
    return agent


def scopes_parse(scopes: Iterable[str]) -> list[str]:
    cleaned = sorted({s.strip() for s in scopes if s.strip()})
    unknown = [s for s in cleaned if s not in TokenScope.values]
    if unknown:
        raise ValidationError(
            {
                "scopes": f"Unknown scope(s) {', '.join(unknown)}; choose from {', '.join(TokenScope.values)}."
            }
        )
    if not cleaned:
        raise ValidationError({"scopes": "A token needs at least one scope."})
    return cleaned


@transaction.atomic
def agent_token_mint(
    *,
    agent: Agent,
    scopes: Iterable[str],
    ttl: timedelta | None,
    created_by: str = "",
    name: str = "",
) -> tuple[AgentToken, str]:
    """Creates a token and returns it with the raw secret, which is never stored or shown again."""
    raw = token_generate(AGENT_TOKEN_PREFIX)
    token = AgentToken.objects.create(
        agent=agent,
        name=name,
        digest=token_digest(raw),
        prefix=raw[: len(AGENT_TOKEN_PREFIX) + 6],
        scopes=scopes_parse(scopes),
        created_by=created_by,
        expires_at=timezone.now() + ttl if ttl else None,
    )
    _token_change_record(agent, "minted", token, created_by)
    return token, raw


@transaction.atomic
def agent_token_revoke(*, token: AgentToken, revoked_by: str = "") -> AgentToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        _token_change_record(token.agent, "revoked", token, revoked_by)
    return token


def _token_change_record(agent: Agent, change: str, token: AgentToken, by: str) -> None:
    from apps.audit.services.opsdash_events import opsdash_event_record

    opsdash_event_record(
        agent=agent,
        event_type="token_change",
        data={
            "change": change,
            "token_prefix": token.prefix,
            "scopes": token.scopes,
            "expires_at": token.expires_at.isoformat() if token.expires_at else None,
            "by": by,
        },
    )


# Anthropic's API key ids, as the Admin API and Console show them (apikey_01Rj2N8SVvo6BePZj99NhmiT).
ANTHROPIC_API_KEY_ID = re.compile(r"^apikey_[A-Za-z0-9]{8,100}$")


@transaction.atomic
def agent_anthropic_key_set(*, agent: Agent, api_key_id: str, by: str = "") -> Agent:
    """Maps the agent to the Anthropic API key it calls Claude with (its id, never the secret),
    so billed cost per key reconciles with the agent's estimated cost; "" clears it. A change
    is a token_change event in the audit log, as the key is one of the agent's credentials."""
    api_key_id = api_key_id.strip()
    if api_key_id.startswith("sk-ant-"):
        raise ValidationError(
            {
                "api_key_id": "That is a secret key, not a key id: paste the key's id "
                "(apikey_…), shown in the Claude Console and on the reconciliation page. "
                "Rotate the secret you pasted if it was shared anywhere."
            }
        )
    if api_key_id and not ANTHROPIC_API_KEY_ID.match(api_key_id):
        raise ValidationError(
            {"api_key_id": f"{api_key_id[:80]!r} is not an Anthropic API key id (apikey_…)."}
        )
    before = agent.anthropic_api_key_id
    if api_key_id == before:
        return agent
    agent.anthropic_api_key_id = api_key_id
    agent.save(update_fields=["anthropic_api_key_id"])
    _anthropic_key_change_record(
        agent,
        "anthropic key set" if api_key_id else "anthropic key cleared",
        api_key_id or before,
        by,
    )
    return agent


def _anthropic_key_change_record(agent: Agent, change: str, api_key_id: str, by: str) -> None:
    from apps.audit.services.opsdash_events import opsdash_event_record

    opsdash_event_record(
        agent=agent,
        event_type="token_change",
        data={"change": change, "token_prefix": api_key_id, "by": by},
    )


def anthropic_api_key_set_active(*, agent: Agent, active: bool, by: str = "") -> str:
    """Activates or deactivates the agent's Anthropic API key through the Admin API (a halted
    agent's key stops working at Anthropic, whatever the agent does); returns the key's status.

    Raises ValidationError when the agent has no key mapped, and
    apps.costs.billed.client.AdminApiError when the API refuses or is not configured."""
    from apps.costs.billed.client import api_key_status_set

    if not agent.anthropic_api_key_id:
        raise ValidationError(
            {"api_key_id": f"Agent {agent.slug} has no Anthropic API key id mapped."}
        )
    status = api_key_status_set(api_key_id=agent.anthropic_api_key_id, active=active)
    _anthropic_key_change_record(agent, f"anthropic key {status}", agent.anthropic_api_key_id, by)
    return status


def agent_halted_set(*, agent: Agent, halted: bool, reason: str = "") -> Agent:
    """Halts or resumes an agent, ordered with its proposals: the ledger head is locked first,
    as every proposal locks it to seal its events (and then reads the agent's state again), so
    a proposal being sealed now commits before this change and every later one sees it."""
    from apps.audit.services.ledger import ledger_head_lock

    with transaction.atomic():
        ledger_head_lock()
        agent.halted = halted
        agent.halted_reason = reason if halted else ""
        agent.halted_at = timezone.now() if halted else None
        agent.save(update_fields=["halted", "halted_reason", "halted_at"])
        if (
            settings.HALT_DEACTIVATES_ANTHROPIC_KEY
            and settings.ANTHROPIC_ADMIN_KEY
            and agent.anthropic_api_key_id
        ):
            from apps.fleet.tasks import anthropic_key_sync_task

            agent_id = agent.pk
            transaction.on_commit(lambda: anthropic_key_sync_task.delay(agent_id))
    return agent


def anthropic_key_sync(*, agent_id: int) -> str:
    """Makes the agent's Anthropic key active when it runs and inactive when it is halted."""
    agent = Agent.objects.get(pk=agent_id)
    if not agent.anthropic_api_key_id:
        return "no key"
    return anthropic_api_key_set_active(agent=agent, active=not agent.halted, by="opsdash")
