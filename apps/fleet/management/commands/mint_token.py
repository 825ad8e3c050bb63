from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.services import personal_token_mint
from apps.core.durations import parse_ttl
from apps.fleet.management.commands.create_team import _messages
from apps.fleet.models import Agent
from apps.fleet.services import agent_token_mint


class Command(BaseCommand):
    help = (
        "Mint a token for an agent (mint_token AGENT --scopes events:write,actions:propose "
        "--ttl 30d) or for a person (mint_token --user NAME). The token is printed alone on the "
        "last line and is never shown again."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("agent", nargs="?")
        parser.add_argument("--user", help="Mint a personal token for this username instead.")
        parser.add_argument(
            "--scopes", default="events:write", help="Comma-separated agent scopes."
        )
        parser.add_argument("--ttl", default="30d", help="Lifetime such as 30d, 12h, or 'never'.")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            ttl = parse_ttl(options["ttl"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["user"]:
            user = get_user_model().objects.filter(username=options["user"]).first()
            if user is None:
                raise CommandError(f"No user {options['user']!r}.")
            token, raw = personal_token_mint(user=user, name=options["name"] or "cli", ttl=ttl)
            self.stderr.write(
                f"Personal token for {user.username}, expires {token.expires_at or 'never'}:"
            )
        else:
            if not options["agent"]:
                raise CommandError("Name an agent, or use --user USERNAME for a personal token.")
            agent = Agent.objects.filter(slug=options["agent"]).first()
            if agent is None:
                raise CommandError(f"No agent {options['agent']!r}.")
            try:
                agent_token, raw = agent_token_mint(
                    agent=agent,
                    scopes=options["scopes"].split(","),
                    ttl=ttl,
                    created_by="cli",
                    name=options["name"],
                )
            except ValidationError as exc:
                raise CommandError(_messages(exc)) from exc
            self.stderr.write(
                f"Token for {agent.slug} with {', '.join(agent_token.scopes)}, "
                f"expires {agent_token.expires_at or 'never'}:"
            )
        self.stdout.write(raw)
