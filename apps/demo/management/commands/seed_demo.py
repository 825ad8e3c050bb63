from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.demo.generator import DEMO_PEOPLE
from apps.demo.services import demo_fleet_seed, demo_password


class Command(BaseCommand):
    help = "Load the demo fleet (teams, agents, people, six weeks of events). Safe to run twice."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--days", type=int, default=42)
        parser.add_argument("--incidents-per-day", type=float, default=7.0)
        parser.add_argument("--no-people", action="store_true", help="Skip the demo logins.")
        parser.add_argument(
            "--force", action="store_true", help="Re-send the events (they count as duplicates)."
        )
        parser.add_argument(
            "--allow-demo-people",
            action="store_true",
            help="Create the demo logins even with DEBUG off (never in production).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with_people = not options["no_people"]
        if with_people and not settings.DEBUG and not options["allow_demo_people"]:
            raise CommandError(
                "Demo logins have published passwords; they are created only with DEBUG=1 "
                "(or --allow-demo-people). Use --no-people to load the fleet without them."
            )
        bar = tqdm(
            total=options["days"], desc="demo days", unit="day", disable=options["verbosity"] < 1
        )

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        result = demo_fleet_seed(
            days=options["days"],
            incidents_per_day=options["incidents_per_day"],
            with_people=with_people,
            force=options["force"],
            progress=progress,
        )
        bar.close()
        if result.already_seeded:
            self.stdout.write("Demo fleet already loaded; nothing added.")
        else:
            self.stdout.write(
                f"Demo fleet: {result.events_accepted} events accepted, {result.events_duplicate} duplicates, "
                f"{result.events_rejected} rejected; {result.agents_created} agents and "
                f"{result.teams_created} teams created."
            )
        if result.bill_rows:
            self.stdout.write(
                f"Demo bill: {result.bill_rows} FOCUS rows of the last 30 days imported and "
                "allocated (Cost → Chargeback)."
            )
        if with_people:
            self.stdout.write("Demo logins (username / password):")
            for username, name, role in DEMO_PEOPLE:
                self.stdout.write(
                    f"  {role:<9} {username:<10} {demo_password(username)}   ({name})"
                )
