from collections.abc import Iterable
from datetime import timedelta

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
    return agent
