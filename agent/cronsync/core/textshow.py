"""Showing untrusted text safely: control characters as escapes, Markdown code spans.

Pure. Used wherever a crontab line, a command or a file name is shown in a comment,
a report or a message (``inventory``, ``import``'s files and MIGRATION.md, ``adopt``).
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")  # what :func:`visible` changes
_VISIBLE = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]}
_VISIBLE.update({9: "\\t", 10: "\\n", 13: "\\r"})


def visible(text: str) -> str:
    """Return ``text`` with control characters shown as escapes (for comments and
    reports: a ``\\r`` of a CRLF line must not end a line of ours)."""
    if not _CONTROL.search(text):
        return text
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return text.translate(_VISIBLE)


def code_span(text: str) -> str:
    """Return ``text`` as a Markdown code span, fenced with more backticks than any run
    inside it (``echo `date` `` -> ````` ``echo `date` `` `````), padded where needed."""
    if "`" not in text and text.strip() == text and text:
        return f"`{text}`"
    runs = [len(run) for run in re.findall("`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"
