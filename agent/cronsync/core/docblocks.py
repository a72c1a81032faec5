"""Generated blocks in the docs: text between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``.

The pages under docs/reference/ hold blocks written by ``scripts/update-docs`` (the file
formats from the schema, the command line from the parser); the tests compare each
block with what the code generates now.
"""

from __future__ import annotations


def _span(page: str, name: str) -> tuple[int, int]:
    """Where block ``name``'s text starts and stops in ``page``.

    Raises:
        ValueError: a marker is missing, doubled, or the end comes before the begin.
    """
    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
    if page.count(begin) != 1 or page.count(end) != 1:
        raise ValueError(f"the page needs exactly one {begin.strip()} and one {end}")
    start, stop = page.index(begin) + len(begin), page.index(end)
    if stop < start:
        raise ValueError(f"{end} comes before {begin.strip()}")
    return start, stop


def block_text(page: str, name: str) -> str:
    """Return the text of block ``name`` in ``page`` (between its two markers).

    Raises:
        ValueError: as :func:`_span`.
    """
    start, stop = _span(page, name)
    return page[start:stop]


def replace_block(page: str, name: str, text: str) -> str:
    """Return ``page`` with block ``name``'s text replaced by ``text``.

    Raises:
        ValueError: as :func:`_span`.
    """
    start, stop = _span(page, name)
    return page[:start] + text + page[stop:]
