import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any, Generic, TypeVar

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.query import QuerySet, get_related_populators

M = TypeVar("M", bound=models.Model)


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


def rows_insert_new(objs: Sequence[M], *, unique: str) -> list[M]:
    """Inserts unsaved rows, each unless a row with the same `unique` value exists; sets the
    primary key of those inserted and returns the others (for the caller to merge into the row
    that won). One prepared INSERT … ON CONFLICT DO NOTHING per row on PostgreSQL; SQLite's
    IMMEDIATE transactions serialise writers, so a check then an insert is safe there.
    """
    if not objs:
        return []
    model = type(objs[0])
    meta = model._meta
    fields = [f for f in meta.concrete_fields if f is not meta.pk]
    lost: list[M] = []
    if connection.vendor != "postgresql":
        for obj in objs:
            if model._default_manager.filter(**{unique: getattr(obj, unique)}).exists():
                lost.append(obj)
            else:
                obj.save(force_insert=True)
        return lost
    quote = connection.ops.quote_name
    # Only model metadata (quoted) goes into the text; every value is a parameter.
    sql = "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT ({}) DO NOTHING RETURNING {}".format(  # noqa: S608
        quote(meta.db_table),
        ", ".join(quote(_column(f)) for f in fields),
        ", ".join(["%s"] * len(fields)),
        quote(_column(meta.get_field(unique))),
        quote(_column(meta.pk)),
    )
    with pg_cursor() as cursor:
        for obj in objs:
            params = [f.get_db_prep_save(getattr(obj, f.attname), connection) for f in fields]
            cursor.execute(sql, params, prepare=True)
            row = cursor.fetchone()
            if row is None:
                lost.append(obj)
            else:
                obj.pk = row[0]
                obj._state.adding = False
                obj._state.db = connection.alias
    return lost


class _LoggedCursor(psycopg.Cursor[Any]):
    """Records statements in Django's query log while it is on (tests, debug tooling), so a
    query that bypasses Django's cursor is still counted."""

    queries_log: Any = None

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        start = time.monotonic()
        try:
            return super().execute(query, params, **kwargs)
        finally:
            self.queries_log.append({"sql": str(query), "time": f"{time.monotonic() - start:.3f}"})


@contextmanager
def pg_cursor(using: str = DEFAULT_DB_ALIAS) -> Iterator[psycopg.Cursor[Any]]:
    """A psycopg cursor with server-side binding on Django's PostgreSQL connection.

    For the hot paths: `execute(sql, params, prepare=True)` plans a statement once per
    connection instead of on every call (Django keeps psycopg's automatic preparation off, for
    the sake of transaction-pooling proxies; opsdash connects to PostgreSQL directly).
    """
    wrapper = connections[using]
    wrapper.ensure_connection()
    if wrapper.queries_logged:
        logged = _LoggedCursor(wrapper.connection)
        logged.queries_log = wrapper.queries_log
        with logged as cursor:
            yield cursor
        return
    with psycopg.Cursor(wrapper.connection) as cursor:
        yield cursor


def rows_fetch(sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The rows of one raw query on a hot path: prepared on PostgreSQL (pg_cursor), through
    Django's cursor elsewhere."""
    if connections[DEFAULT_DB_ALIAS].vendor == "postgresql":
        with pg_cursor() as pg:
            pg.execute(sql, params, prepare=True)
            return pg.fetchall()
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


class CompiledLookup(Generic[M]):
    """A one-row ORM query (select_related included) compiled once per thread, then run by value.

    For the hot paths that run the same lookup on every request (token authentication): the
    ORM's compiler costs ~0.7 ms of CPU a call, far more than the query. Rows are still
    converted and built (related objects cached) by the ORM's own machinery, so the result is
    what `queryset.first()` would give.
    """

    _PLACEHOLDER = "\x00compiled-lookup-placeholder\x00"

    def __init__(self, queryset: Callable[[Any], "QuerySet[M]"]) -> None:
        # `queryset(value)` must mention `value` exactly once, as a parameter.
        self._queryset = queryset
        self._local = threading.local()

    def _compiled(self) -> tuple[Any, ...]:
        state = getattr(self._local, "state", None)
        if state is None:
            qs = self._queryset(self._PLACEHOLDER)[:1]
            compiler = qs.query.get_compiler(qs.db)
            sql, params = compiler.as_sql()
            if params.count(self._PLACEHOLDER) != 1:
                raise ValueError("The lookup's query must use its value exactly once.")
            slot = params.index(self._PLACEHOLDER)
            klass_info = compiler.klass_info
            select_fields = klass_info["select_fields"]
            start, end = select_fields[0], select_fields[-1] + 1
            init_list = [col[0].target.attname for col in compiler.select[start:end]]
            # django-stubs describe Django 6's signature (fetch_mode); 5.2 takes three.
            populators = get_related_populators(klass_info, compiler.select, qs.db)  # type: ignore[call-arg]
            state = (qs.db, sql, list(params), slot, compiler, klass_info["model"], start, end)
            state += (init_list, populators)
            self._local.state = state
        return state

    def first(self, value: Any) -> M | None:
        db, sql, params, slot, compiler, model, start, end, init_list, populators = self._compiled()
        params = [*params]
        params[slot] = value
        if connections[db].vendor == "postgresql":
            with pg_cursor(db) as pg:
                pg.execute(sql, params, prepare=True)
                row = pg.fetchone()
        else:
            with connections[db].cursor() as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone()
        if row is None:
            return None
        row = next(iter(compiler.results_iter(results=[[row]])))
        obj = model.from_db(db, init_list, row[start:end])
        for populator in populators:
            populator.populate(row, obj)
        return obj


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
    returned = ", ".join(quote(_column(f)) for f in model._meta.concrete_fields)
    # The no-op update takes the row lock of existing rows, in key order, and RETURNING gives
    # new and existing rows alike: create-and-lock in one round trip.
    sql = insert.replace(
        f"ON CONFLICT ({column}) DO NOTHING",
        f"ON CONFLICT ({column}) DO UPDATE SET {column} = EXCLUDED.{column} RETURNING {returned}",
    )
    return sql, rest


def _row_builder(model: type[M]) -> Callable[[Sequence[Any]], M]:
    """Turns a row of all concrete columns (in field order) into a model instance, with the
    same field converters the ORM applies (JSON decoding and the like), computed once."""
    fields = model._meta.concrete_fields
    attnames = [f.attname for f in fields]
    converters = []
    for index, field in enumerate(fields):
        col = field.get_col(model._meta.db_table)
        functions = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if functions:
            converters.append((index, functions, col))
    db = connection.alias

    def build(row: Sequence[Any]) -> M:
        values = list(row)
        for index, functions, col in converters:
            value = values[index]
            for convert in functions:
                value = convert(value, col, connection)
            values[index] = value
        return model.from_db(db, attnames, values)

    return build


_row_builders: dict[type[models.Model], Callable[[Sequence[Any]], Any]] = {}


def pg_upsert_locked(
    model: type[M], *, key: str, keys: Sequence[str], owners: Sequence[int]
) -> list[M]:
    """Creates missing rows and locks all of them until the transaction ends; returns them.

    Equivalent to INSERT … ON CONFLICT DO NOTHING followed by SELECT … ORDER BY key FOR UPDATE,
    in one statement. Rows are built with the ORM's converters (as raw() would, at a third of
    its cost: this runs on every proposal).
    """
    sql, fields = _upsert_locked_sql(model, key)
    defaults = [f.get_db_prep_save(f.get_default(), connection) for f in fields]
    build = _row_builders.get(model)
    if build is None:
        build = _row_builders[model] = _row_builder(model)
    with pg_cursor() as cursor:
        cursor.execute(sql, [*defaults, list(keys), list(owners)], prepare=True)
        rows = cursor.fetchall()
    return [build(row) for row in rows]
