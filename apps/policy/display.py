"""Policy text as people read it: numbered lines with their errors, and diffs between versions."""

import difflib
from collections import defaultdict
from dataclasses import dataclass, field

from apps.policy.schema import PolicyError

# Lines shown around each error, and around each change in a diff.
CONTEXT = 2
DIFF_CONTEXT = 3


@dataclass
class Line:
    number: int
    text: str
    errors: list[str] = field(default_factory=list)


@dataclass
class Gap:
    """Lines left out between two excerpts."""

    count: int


def source_lines(source: str, errors: list[PolicyError] | None = None) -> list[Line]:
    """Every line of the source, numbered from 1, each with the messages of its errors."""
    by_line: dict[int, list[str]] = defaultdict(list)
    for error in errors or []:
        if error.line is not None:
            by_line[error.line].append(_message(error))
    lines = source.split("\n")
    if lines and lines[-1] == "" and len(lines) > 1:
        lines.pop()
    return [Line(i, text, by_line.get(i, [])) for i, text in enumerate(lines, start=1)]


def error_excerpt(source: str, errors: list[PolicyError]) -> list[Line | Gap]:
    """The lines with errors and CONTEXT lines around each; the rest folded into gaps."""
    lines = source_lines(source, errors)
    wanted: set[int] = set()
    for line in lines:
        if line.errors:
            wanted.update(range(line.number - CONTEXT, line.number + CONTEXT + 1))
    out: list[Line | Gap] = []
    skipped = 0
    for line in lines:
        if line.number in wanted:
            if skipped:
                out.append(Gap(skipped))
                skipped = 0
            out.append(line)
        else:
            skipped += 1
    if skipped and out:
        out.append(Gap(skipped))
    return out


def unplaced_errors(errors: list[PolicyError]) -> list[str]:
    """Messages of errors that have no line (the whole document is at fault)."""
    return [_message(e) for e in errors if e.line is None]


def _message(error: PolicyError) -> str:
    return f"{error.path}: {error.message}" if error.path else error.message


@dataclass(frozen=True)
class DiffRow:
    kind: str  # "same" | "removed" | "added" | "hunk"
    old: int | None
    new: int | None
    text: str


def diff_rows(old: str, new: str) -> list[DiffRow]:
    """A unified diff as rows with both line numbers; unchanged stretches are folded."""
    a, b = old.splitlines(), new.splitlines()
    rows: list[DiffRow] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for group in matcher.get_grouped_opcodes(DIFF_CONTEXT):
        first, last = group[0], group[-1]
        rows.append(
            DiffRow(
                "hunk",
                None,
                None,
                f"lines {first[1] + 1}-{last[2]} → {first[3] + 1}-{last[4]}",
            )
        )
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                rows.extend(
                    DiffRow("same", i1 + k + 1, j1 + k + 1, a[i1 + k]) for k in range(i2 - i1)
                )
                continue
            if tag in ("replace", "delete"):
                rows.extend(DiffRow("removed", i + 1, None, a[i]) for i in range(i1, i2))
            if tag in ("replace", "insert"):
                rows.extend(DiffRow("added", None, j + 1, b[j]) for j in range(j1, j2))
    return rows
