from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.policy.schema import PolicyInvalid, policy_parse
from apps.policy.services import policy_version_create


class Command(BaseCommand):
    help = "Load the policy from a YAML file (kept in git) as a new active version; a no-op if unchanged."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file")
        parser.add_argument("--note", default="", help="Why this version (shown in the history).")
        parser.add_argument("--check", action="store_true", help="Validate only; store nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        try:
            source = path.read_text()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
        try:
            if options["check"]:
                document = policy_parse(source)
                self.stdout.write(f"{path}: valid, {len(document.rules)} rules.")
                return
            version, created = policy_version_create(
                source=source, created_by="load_policy", note=options["note"] or str(path)
            )
        except PolicyInvalid as exc:
            for error in exc.errors:
                self.stderr.write(
                    f"{path}:{error.line or '?'}: {error.path + ': ' if error.path else ''}{error.message}"
                )
            raise CommandError(f"{path} is not a valid policy; nothing was loaded.") from exc
        if created:
            self.stdout.write(f"Loaded {path} as policy v{version.number} (active).")
        else:
            self.stdout.write(
                f"{path} is already the active policy v{version.number}; nothing changed."
            )
