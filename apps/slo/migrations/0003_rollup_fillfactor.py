from django.db import migrations

# A rollup row is updated in place many times (each new fact in its minute). With free room on
# its page PostgreSQL rewrites it there without touching the (slo, minute) index (a HOT
# update); a packed page forces a new index entry per update, and the index and the work per
# update grow with the history.
FILLFACTOR_SQL = "ALTER TABLE slo_slorollup SET (fillfactor = 80)"
RESET_SQL = "ALTER TABLE slo_slorollup RESET (fillfactor)"


def fillfactor_on(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FILLFACTOR_SQL)


def fillfactor_off(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(RESET_SQL)


class Migration(migrations.Migration):
    dependencies = [("slo", "0002_fact_and_rollup_fk_indexes_dropped")]
    operations = [migrations.RunPython(fillfactor_on, fillfactor_off)]
