"""Claude's markdown-ish answer as safe HTML: everything escaped, paragraphs and lists kept."""

import re

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

_BULLET = re.compile(r"^\s*[-*•]\s+(.*)$")
_NUMBERED = re.compile(r"^\s*\d{1,3}[.)]\s+(.*)$")
_HEADING = re.compile(r"^\s*#{1,6}\s+(.*)$")
# Applied to already-escaped text, so the tags below are the only markup in the result.
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_CODE = re.compile(r"`([^`\n]{1,200})`")


def _inline(text: str) -> str:
    html = str(escape(text.strip()))
    html = _CODE.sub(r"<code>\1</code>", html)
    return _BOLD.sub(r"<strong>\1</strong>", html)


def explanation_html(text: str) -> SafeString:
    """Paragraphs (blank-line separated), '-'/'*' and numbered lists, **bold**, `code`,
    headings as bold paragraphs; any other markup shows as the literal characters."""
    out: list[str] = []
    paragraph: list[str] = []
    list_tag: str | None = None
    items: list[str] = []

    def flush_paragraph() -> None:
        if paragraph:
            out.append("<p>" + "<br>".join(_inline(line) for line in paragraph) + "</p>")
            paragraph.clear()

    def flush_list() -> None:
        nonlocal list_tag
        if list_tag:
            out.append(f"<{list_tag}>" + "".join(f"<li>{i}</li>" for i in items) + f"</{list_tag}>")
            items.clear()
            list_tag = None

    for line in (text or "").splitlines():
        bullet = _BULLET.match(line)
        numbered = None if bullet else _NUMBERED.match(line)
        if bullet or numbered:
            flush_paragraph()
            tag = "ul" if bullet else "ol"
            if list_tag != tag:
                flush_list()
                list_tag = tag
            items.append(_inline((bullet or numbered).group(1)))  # type: ignore[union-attr]
        elif not line.strip():
            flush_paragraph()
            flush_list()
        else:
            flush_list()
            heading = _HEADING.match(line)
            if heading:
                flush_paragraph()
                out.append(f"<p><strong>{_inline(heading.group(1))}</strong></p>")
            else:
                paragraph.append(line)
    flush_paragraph()
    flush_list()
    return mark_safe("".join(out))  # noqa: S308 - every piece of text went through escape()
