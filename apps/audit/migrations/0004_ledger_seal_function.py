from django.db import migrations

# One call seals a batch on PostgreSQL: lock the head, hash, append the seal, move the head.
# The head lock is held from here to COMMIT; doing it server-side keeps one round trip (and one
# wait for the GIL in a threaded web worker) inside that window instead of two. The hash text is
# exactly seal_hash_compute()'s: seq|batch_id|event_count|merkle_root|prev_seal_hash|sealed_at|
# source, sealed_at as format_ts() spells it (UTC, microseconds, Z).
SEAL_FUNCTION_SQL = """
CREATE OR REPLACE FUNCTION opsdash_ledger_seal(
    p_batch_id uuid, p_event_count integer, p_merkle_root text, p_source text,
    p_genesis text
) RETURNS TABLE (seq bigint, prev_seal_hash text, seal_hash text, sealed_at timestamptz)
AS $$
DECLARE
    head_seq bigint;
    head_hash text;
BEGIN
    SELECT h.seq, h.seal_hash INTO head_seq, head_hash
        FROM audit_ledgerhead h WHERE h.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        -- Only after a table flush (tests); ON CONFLICT keeps two first writers apart.
        INSERT INTO audit_ledgerhead (id, seq, seal_hash) VALUES (1, 0, p_genesis)
            ON CONFLICT DO NOTHING;
        SELECT h.seq, h.seal_hash INTO head_seq, head_hash
            FROM audit_ledgerhead h WHERE h.id = 1 FOR UPDATE;
    END IF;
    seq := head_seq + 1;
    prev_seal_hash := head_hash;
    -- Microseconds, as the column stores them and format_ts() prints them.
    sealed_at := date_trunc('microseconds', clock_timestamp());
    seal_hash := encode(sha256(convert_to(concat_ws('|',
        seq::text, p_batch_id::text, p_event_count::text, p_merkle_root, head_hash,
        to_char(sealed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), p_source
    ), 'UTF8')), 'hex');
    INSERT INTO audit_ledgerseal (seq, batch_id, event_count, merkle_root, prev_seal_hash,
        seal_hash, sealed_at, source)
        VALUES (seq, p_batch_id, p_event_count, p_merkle_root, head_hash, seal_hash,
            sealed_at, p_source);
    UPDATE audit_ledgerhead h SET seq = opsdash_ledger_seal.seq,
        seal_hash = opsdash_ledger_seal.seal_hash WHERE h.id = 1;
    RETURN NEXT;
END;
$$ LANGUAGE plpgsql;
"""

DROP_SQL = "DROP FUNCTION IF EXISTS opsdash_ledger_seal(uuid, integer, text, text, text);"


def seal_function_on(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SEAL_FUNCTION_SQL, params=None)


def seal_function_off(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_list_indexes_with_id")]
    operations = [migrations.RunPython(seal_function_on, seal_function_off)]
