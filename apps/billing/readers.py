"""Billing files as a stream of rows, in bounded memory: CSV, gzip'd CSV, Parquet.

The kind is told by the file's first bytes, never by its name. CSV is read line by line with
a cap on a physical line's length, so a file of binary garbage with no newline cannot make
one line the size of the file; Parquet is read in record batches of the columns the format
needs. Floating-point Parquet columns (CUR 2.0 writes costs as doubles) are cast by Arrow
to their shortest decimal string, so no Python float is ever made of money.
"""

import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from apps.billing.errors import FileLevelError

# One physical CSV line (and one field) may be this long; longer ones are rejected rows.
MAX_LINE_CHARS = 1024 * 1024
PARQUET_BATCH_ROWS = 4096
_OVERLONG = "\x1eopsdash-overlong-line\x1e"

# (row number, CSV line number or None, the used columns' values or None, row error or None)
RawRow = tuple[int, int | None, list[Any] | None, str | None]


class Source:
    kind = ""
    unit = "B"
    header: list[str]

    def __enter__(self) -> "Source":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    @property
    def total(self) -> int:
        raise NotImplementedError

    def position(self) -> int:
        raise NotImplementedError

    def rows(self, used: Sequence[int]) -> Iterator[RawRow]:
        raise NotImplementedError


def open_source(path: Path) -> Source:
    try:
        with path.open("rb") as probe:
            magic = probe.read(4)
    except OSError as exc:
        raise FileLevelError(f"The file cannot be read: {exc.strerror or exc}.") from None
    if not magic:
        raise FileLevelError("The file is empty.")
    if magic == b"PAR1":
        return ParquetSource(path)
    if magic[:2] == b"\x1f\x8b":
        return CsvSource(path, compressed=True)
    if magic[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise FileLevelError(
            'The file is UTF-16 text (Excel\'s "Unicode Text"): save it as "CSV UTF-8" '
            "and import that."
        )
    if magic == b"PK\x03\x04":
        raise FileLevelError(
            "This is a ZIP archive: unzip it and import the CSV or Parquet file inside."
        )
    return CsvSource(path, compressed=False)


class CsvSource(Source):
    def __init__(self, path: Path, *, compressed: bool) -> None:
        self.kind = "gzip CSV" if compressed else "CSV"
        self.size = path.stat().st_size
        self.raw: IO[bytes] = path.open("rb")
        stream: Any = gzip.GzipFile(fileobj=self.raw) if compressed else self.raw
        # Bytes that are not UTF-8 become U+FFFD: such a row fails on its values, visibly,
        # instead of failing the file.
        self.text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
        csv.field_size_limit(MAX_LINE_CHARS)
        self.reader = csv.reader(self._lines())
        try:
            first = next(self.reader, None)
        except csv.Error as exc:
            raise FileLevelError(f"The header row is not valid CSV: {exc}.") from None
        except _STREAM_ERRORS as exc:
            raise _stream_error(exc, compressed) from None
        if not first or first == [_OVERLONG]:
            raise FileLevelError("The file has no header row.")
        self.header = [cell.strip() for cell in first]
        self.compressed = compressed

    def _lines(self) -> Iterator[str]:
        while True:
            line = self.text.readline(MAX_LINE_CHARS)
            if not line:
                return
            if len(line) >= MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
                while True:  # skip the rest of the overlong line
                    rest = self.text.readline(MAX_LINE_CHARS)
                    if not rest or rest.endswith(("\n", "\r")):
                        break
                yield _OVERLONG + "\n"
                continue
            if "\x00" in line:
                # PostgreSQL text cannot hold NUL; it is never meaningful in a bill.
                line = line.replace("\x00", "\ufffd")
            yield line

    @property
    def total(self) -> int:
        return self.size

    def position(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def close(self) -> None:
        self.text.close()
        self.raw.close()

    def rows(self, used: Sequence[int]) -> Iterator[RawRow]:
        width = len(self.header)
        reader = self.reader
        row = 0
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row += 1
                yield row, reader.line_num, None, f"malformed CSV record: {exc}"
                continue
            except _STREAM_ERRORS as exc:
                raise _stream_error(exc, self.compressed) from None
            if not record:
                continue  # a blank line
            row += 1
            if len(record) != width:
                if record == [_OVERLONG]:
                    message = f"line longer than {MAX_LINE_CHARS:,} characters"
                else:
                    message = f"has {len(record)} fields; the header has {width}"
                yield row, reader.line_num, None, message
                continue
            yield row, reader.line_num, [record[i] for i in used], None


_STREAM_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, OSError)


def _stream_error(exc: BaseException, compressed: bool) -> FileLevelError:
    if compressed:
        return FileLevelError(f"The gzip stream is corrupt or truncated: {exc}.")
    return FileLevelError(f"The file could not be read to the end: {exc}.")


class ParquetSource(Source):
    kind = "Parquet"
    unit = "rows"

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        try:
            self.file = pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)
        except (pa.ArrowException, OSError) as exc:
            raise FileLevelError(f"Not a readable Parquet file: {exc}.") from None
        self.header = []
        self.top_level: dict[str, str] = {}
        for field in self.file.schema_arrow:
            for name in _flat_names(pa, field, field.name):
                self.header.append(name)
                self.top_level[name] = field.name
        self.done = 0

    @property
    def total(self) -> int:
        return int(self.file.metadata.num_rows)

    def position(self) -> int:
        return self.done

    def close(self) -> None:
        self.file.close()

    def rows(self, used: Sequence[int]) -> Iterator[RawRow]:
        pa = self.pa
        names = [self.header[i] for i in used]
        top = sorted({self.top_level[name] for name in names})
        row = 0
        try:
            for batch in self.file.iter_batches(
                batch_size=PARQUET_BATCH_ROWS, columns=top, use_threads=False
            ):
                table = pa.Table.from_batches([batch])
                while any(pa.types.is_struct(f.type) for f in table.schema):
                    table = table.flatten()
                columns = [_python_values(pa, table.column(name)) for name in names]
                for values in zip(*columns, strict=True):
                    row += 1
                    yield row, None, list(values), None
                self.done = row
        except (pa.ArrowException, OSError) as exc:
            raise FileLevelError(f"The Parquet file could not be read to the end: {exc}.") from None


def _flat_names(pa: Any, field: Any, prefix: str) -> Iterator[str]:
    if pa.types.is_struct(field.type):
        for child in field.type:
            yield from _flat_names(pa, child, f"{prefix}.{child.name}")
    else:
        yield prefix


def _decimal_safe(pa: Any, kind: Any) -> Any:
    """The same Arrow type with every floating-point part turned into a string, and
    timestamps too (ISO text, which the normalisers parse once per distinct value)."""
    if pa.types.is_floating(kind) or pa.types.is_timestamp(kind):
        return pa.string()
    if pa.types.is_struct(kind):
        return pa.struct([f.with_type(_decimal_safe(pa, f.type)) for f in kind])
    if pa.types.is_map(kind):
        return pa.map_(_decimal_safe(pa, kind.key_type), _decimal_safe(pa, kind.item_type))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return pa.list_(kind.value_field.with_type(_decimal_safe(pa, kind.value_type)))
    return kind


def _python_values(pa: Any, column: Any) -> list[Any]:
    import pyarrow.compute as pc

    safe = _decimal_safe(pa, column.type)
    if safe != column.type:
        column = column.cast(safe)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        column = pc.replace_substring(column, "\x00", "\ufffd")
    values: list[Any] = column.to_pylist()
    return values
