"""What every format's normaliser shares: matching a file's header to the columns it reads,
and the normalised line (FOCUS columns) it turns each row into."""

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from apps.billing.errors import FileLevelError


class Line(NamedTuple):
    """One normalised row, in CostLineItem's column order (after billing_import)."""

    provider: str
    publisher: str
    billing_account_id: str
    sub_account_id: str
    billing_period_start: datetime
    billing_period_end: datetime
    charge_period_start: datetime
    charge_period_end: datetime
    charge_category: str
    billed_cost: Decimal
    effective_cost: Decimal
    list_cost: Decimal | None
    billing_currency: str
    service_name: str
    resource_id: str
    region_id: str
    sku_id: str
    consumed_quantity: Decimal | None
    consumed_unit: str
    tags: dict[str, str]


LINE_FIELDS: tuple[str, ...] = Line._fields


class Normaliser:
    """Subclasses name the columns they read (`columns`: logical name → accepted spellings,
    matched without regard to case) and which of them a file must have (`required`)."""

    format: str = ""
    columns: dict[str, tuple[str, ...]] = {}
    required: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.pos: dict[str, int] = {}
        self.tag_columns: list[tuple[int, str]] = []
        self.header_names: dict[str, str] = {}
        # Filled by bind(): every logical column's position in the values `normalise` gets
        # (columns the file lacks point at the trailing None the caller appends), and its
        # name as the file spells it. Plain dicts: the per-row path is a lookup, not a call.
        self.ix: dict[str, int] = {}
        self.names: dict[str, str] = {}

    # -- header

    def canonical(self, name: str) -> str:
        """The spelling a header cell is matched under (lower case; formats may do more)."""
        return name.strip().lower()

    def tag_key(self, name: str) -> str | None:
        """The tag key a per-key tag column carries (legacy CUR `resourceTags/user:team`)."""
        return None

    def missing(self, header: Sequence[str]) -> list[str]:
        found = {self.canonical(name) for name in header}
        return [
            self.columns[logical][0]
            for logical in self.required
            if not any(spelling.lower() in found for spelling in self.columns[logical])
        ]

    def bind(self, header: Sequence[str]) -> list[int]:
        """Matches the header; returns the header positions this format reads, in the order
        `normalise` expects its values. Raises FileLevelError naming missing columns."""
        missing = self.missing(header)
        if missing:
            raise FileLevelError(
                f"Missing required column{'s' if len(missing) > 1 else ''} for format "
                f"'{self.format}': {', '.join(missing)}.",
                missing=missing,
            )
        index: dict[str, int] = {}
        for i, name in enumerate(header):
            index.setdefault(self.canonical(name), i)
        used: list[int] = []
        for logical, spellings in self.columns.items():
            for spelling in spellings:
                found = index.get(spelling.lower())
                if found is not None:
                    self.pos[logical] = len(used)
                    self.header_names[logical] = header[found].strip()
                    used.append(found)
                    break
        for i, name in enumerate(header):
            key = self.tag_key(name.strip())
            if key:
                self.tag_columns.append((len(used), key))
                used.append(i)
        absent = len(used)
        self.ix = {logical: self.pos.get(logical, absent) for logical in self.columns}
        self.names = {logical: self.column_name(logical) for logical in self.columns}
        return used

    def column_name(self, logical: str) -> str:
        """The header cell as the file spells it, for error messages."""
        return self.header_names.get(logical) or self.columns[logical][0]

    def extra_tags(self, values: Sequence[Any]) -> dict[str, str]:
        result: dict[str, str] = {}
        for i, key in self.tag_columns:
            value = values[i]
            if value is not None and value != "":
                result[key] = value if isinstance(value, str) else str(value)
        return result

    # -- rows

    def normalise(self, values: Sequence[Any]) -> Line:
        """`values`: the bound columns' cells in `bind`'s order, then one trailing None."""
        raise NotImplementedError
