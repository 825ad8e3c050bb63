import hashlib

from django.db import migrations

GENESIS_HASH = hashlib.sha256(b"opsdash ledger genesis").hexdigest()

# The audit tables are append-only. Removal past retention will be its own sealed operation,
# which sets opsdash.audit_retention for its transaction; nothing else may bypass this.
APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION opsdash_audit_append_only() RETURNS trigger AS $$
BEGIN
    IF current_setting('opsdash.audit_retention', true) = 'on' AND TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'opsdash audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION opsdash_audit_append_only();
CREATE TRIGGER audit_ledgerseal_append_only BEFORE UPDATE OR DELETE ON audit_ledgerseal
    FOR EACH ROW EXECUTE FUNCTION opsdash_audit_append_only();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event;
DROP TRIGGER IF EXISTS audit_ledgerseal_append_only ON audit_ledgerseal;
DROP FUNCTION IF EXISTS opsdash_audit_append_only();
"""


def create_head(apps, schema_editor):
    LedgerHead = apps.get_model("audit", "LedgerHead")
    LedgerHead.objects.get_or_create(pk=1, defaults={"seq": 0, "seal_hash": GENESIS_HASH})


def append_only_on(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def append_only_off(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [
        migrations.RunPython(create_head, migrations.RunPython.noop),
        migrations.RunPython(append_only_on, append_only_off),
    ]
