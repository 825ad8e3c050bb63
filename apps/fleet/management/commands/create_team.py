from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.fleet.services import team_create


class Command(BaseCommand):
    help = "Create a team (the cost centre that owns agents)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--cost-centre", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            team = team_create(
                slug=options["slug"], name=options["name"], cost_centre=options["cost_centre"]
            )
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        self.stdout.write(f"Created team {team.slug}")


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)
