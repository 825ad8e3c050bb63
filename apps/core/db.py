from collections.abc import Sequence
from functools import cache
from typing import Any

import psycopg
from django.db import connection, models


def _column(field: Any) -> str:
    """The database column of a concrete field (always set once the model is loaded)."""
    column = field.column
    if not column:
        raise ValueError(f"{field} has no column")
    return str(column)


def rows_update(objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Saves `fields` of many rows with one parametrised UPDATE per row, sent as executemany.

    Django's bulk_update builds one CASE WHEN per field over all rows, which costs seconds of
    Python for a few hundred rows; psycopg 3 pipelines executemany into a single round trip.
    """
    if not objs:
        return 0
    model = type(objs[0])
    meta = model._meta
    by_name = {f.name: f for f in meta.concrete_fields}
    concrete = [by_name[name] for name in fields]
    quote = connection.ops.quote_name
    # Only model metadata (quoted) goes into the text; every value is a parameter.
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608
        quote(meta.db_table),
        ", ".join(f"{quote(_column(f))} = %s" for f in concrete),
        quote(_column(meta.pk)),
    )
    params = [
        [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in concrete] + [obj.pk]
        for obj in objs
    ]
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # Server-side binding: no Python-side quoting of every JSON value.
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.executemany(sql, params)
    else:
        with connection.cursor() as cursor:
            cursor.executemany(sql, params)
    return len(objs)


@cache
def _insert_missing_sql(model: type[models.Model], key: str) -> tuple[str, tuple[Any, ...]]:
    """The statement and the fields whose defaults it takes (evaluated per call: `now`)."""
    meta = model._meta
    quote = connection.ops.quote_name
    by_name = {f.name: f for f in meta.concrete_fields}
    key_field = by_name[key]
    owner_field = by_name["agent"]
    rest = [
        f
        for f in meta.concrete_fields
        if f not in (meta.pk, key_field, owner_field) and (f.has_default() or not f.null)
    ]
    columns = [_column(key_field), _column(owner_field)] + [_column(f) for f in rest]
    # Identifiers come from model metadata and are quoted; every value is a parameter.
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
        f"SELECT u.k, u.o, {', '.join(['%s'] * len(rest))} "
        f"FROM unnest(%b::text[], %b::bigint[]) AS u(k, o) ORDER BY u.k "
        f"ON CONFLICT ({quote(_column(key_field))}) DO NOTHING"
    )
    return sql, tuple(rest)


@cache
def _upsert_locked_sql(model: type[models.Model], key: str) -> tuple[str, tuple[Any, ...]]:
    insert, rest = _insert_missing_sql(model, key)
    quote = connection.ops.quote_name
    column = quote(_column(model._meta.get_field(key)))
    # The no-op update takes the row lock of existing rows, in key order, and RETURNING gives
    # new and existing rows alike: create-and-lock in one round trip.
    sql = insert.replace(
        f"ON CONFLICT ({column}) DO NOTHING",
        f"ON CONFLICT ({column}) DO UPDATE SET {column} = EXCLUDED.{column} RETURNING *",
    )
    return sql.replace("%b", "%s"), rest


def pg_upsert_locked(
    model: type[models.Model], *, key: str, keys: Sequence[str], owners: Sequence[int]
) -> list[Any]:
    """Creates missing rows and locks all of them until the transaction ends; returns them.

    Equivalent to INSERT … ON CONFLICT DO NOTHING followed by SELECT … ORDER BY key FOR UPDATE, in one
    statement. Rows come back through the ORM's raw() so field converters apply.
    """
    sql, fields = _upsert_locked_sql(model, key)
    defaults = [f.get_db_prep_save(f.get_default(), connection) for f in fields]
    return list(model._default_manager.raw(sql, [*defaults, list(keys), list(owners)]))
