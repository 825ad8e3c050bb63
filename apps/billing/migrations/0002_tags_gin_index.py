"""A GIN index on CostLineItem.tags (key existence `?` and containment `@>`), PostgreSQL only:
the embedded SQLite mode has no such index type."""

from typing import Any

from django.db import migrations


def create(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS billing_cli_tags_gin "
            "ON billing_costlineitem USING gin (tags)"
        )


def drop(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS billing_cli_tags_gin")


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
