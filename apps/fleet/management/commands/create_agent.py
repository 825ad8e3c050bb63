from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.fleet.management.commands.create_team import _messages
from apps.fleet.models import AutonomyMode, Team
from apps.fleet.services import agent_create


class Command(BaseCommand):
    help = "Create an agent in a team."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug")
        parser.add_argument("--team", required=True, help="Team slug.")
        parser.add_argument("--mode", default=AutonomyMode.SUGGEST, choices=AutonomyMode.values)
        parser.add_argument("--env", default="prod")

    def handle(self, *args: Any, **options: Any) -> None:
        team = Team.objects.filter(slug=options["team"]).first()
        if team is None:
            raise CommandError(f"No team {options['team']!r}; create it with create_team first.")
        try:
            agent = agent_create(
                slug=options["slug"], team=team, mode=options["mode"], environment=options["env"]
            )
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        self.stdout.write(f"Created agent {agent.slug} in {team.slug} ({agent.autonomy_mode})")
