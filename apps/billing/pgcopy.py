"""Lines as PostgreSQL COPY text, built in bulk.

psycopg's `write_row` picks a dumper for each of a row's 21 values; a bill's rows share most
of theirs (provider, account, periods, service, SKU, region, unit), so that part is encoded
once per distinct combination and only the costs, charge period, resource and tags per row.
"""

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

from apps.billing.normalise import LINE_FIELDS, Line

# COPY text format: backslash escapes, tab between columns, newline between rows.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SHARED = (
    "provider",
    "publisher",
    "billing_account_id",
    "sub_account_id",
    "billing_period_start",
    "billing_period_end",
    "charge_category",
    "billing_currency",
    "service_name",
    "region_id",
    "sku_id",
    "consumed_unit",
)
_PER_ROW = (
    "charge_period_start",
    "charge_period_end",
    "billed_cost",
    "effective_cost",
    "list_cost",
    "resource_id",
    "consumed_quantity",
    "tags",
)
assert sorted(_SHARED + _PER_ROW) == sorted(LINE_FIELDS)
# The owner (team, agent) the allocation rules give the line whole to, or \N twice.
COLUMNS = ("billing_import_id", *_SHARED, *_PER_ROW, "team_id", "agent_id")
NO_OWNER = "\\N\t\\N"
MEMO_SIZE = 10_000
ROWS_PER_WRITE = 2000


def _text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot COPY {type(value).__name__}")


class CopyEncoder:
    def __init__(self, import_id: int, owner: Callable[[Line], str] | None = None) -> None:
        self.import_id = str(import_id)
        self.owner = owner
        self.shared = itemgetter(*(LINE_FIELDS.index(name) for name in _SHARED))
        self.prefixes: dict[tuple[Any, ...], str] = {}
        self.times: dict[datetime, str] = {}
        # Keyed by id(): the dict is kept in the value, so its id cannot be reused while cached.
        self.tags: dict[int, tuple[dict[str, str], str]] = {}

    def chunks(self, lines: Iterable[Line]) -> Iterator[str]:
        buffer: list[str] = []
        for line in lines:
            buffer.append(self.encode(line))
            if len(buffer) >= ROWS_PER_WRITE:
                yield "".join(buffer)
                buffer = []
        if buffer:
            yield "".join(buffer)

    def encode(self, line: Line) -> str:
        key = self.shared(line)
        prefix = self.prefixes.get(key)
        if prefix is None:
            prefix = "\t".join((self.import_id, *map(_text, key), ""))
            self._remember(self.prefixes, key, prefix)
        list_cost, quantity = line.list_cost, line.consumed_quantity
        return (
            "\t".join(
                (
                    prefix + self._time(line.charge_period_start),
                    self._time(line.charge_period_end),
                    str(line.billed_cost),
                    str(line.effective_cost),
                    "\\N" if list_cost is None else str(list_cost),
                    line.resource_id.translate(_ESCAPES),
                    "\\N" if quantity is None else str(quantity),
                    self._tags(line.tags),
                    NO_OWNER if self.owner is None else self.owner(line),
                )
            )
            + "\n"
        )

    def _time(self, moment: datetime) -> str:
        text = self.times.get(moment)
        if text is None:
            text = moment.isoformat()
            self._remember(self.times, moment, text)
        return text

    def _tags(self, tags: dict[str, str]) -> str:
        cached = self.tags.get(id(tags))
        if cached is not None and cached[0] is tags:
            return cached[1]
        text = json.dumps(tags, ensure_ascii=False).translate(_ESCAPES)
        self._remember(self.tags, id(tags), (tags, text))
        return text

    @staticmethod
    def _remember(memo: dict[Any, Any], key: Any, value: Any) -> None:
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[key] = value
