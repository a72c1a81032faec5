"""Secret values already found, hidden wherever else they show up (pure).

``cronsync import`` collects every value it moves out (``ImportPlan.known``), and the
crontab inventory every value found in a file's lines, so that the same value is masked
in text no detector would flag (a word quoted in a message, a value that shows on
another line). One regex, shaped as a trie, finds any of them in one pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Optional

from cronsync.secretscan.kinds import MASK

MIN_HIDDEN = 3
"""Shorter values are masked where a detector found them, not searched for (false hits)."""

_Trie = dict[str, "_Trie"]
_END = ""  # the key marking that a value ends at this node


def _trie_regex(values: Iterable[str]) -> str:
    """Return one regex matching any of ``values``, shaped as a trie, so the C regex
    engine finds them all in one pass whatever their number."""
    root: _Trie = {}
    for value in values:
        node = root
        for char in value:
            node = node.setdefault(char, {})
        node[_END] = {}
    return _trie_node(root)


def _trie_node(node: _Trie) -> str:
    chain = []
    while len(node) == 1 and _END not in node:  # no branch: plain characters
        char, node = next(iter(node.items()))
        chain.append(re.escape(char))
    branches = [re.escape(char) + _trie_node(child) for char, child in sorted(node.items()) if char]
    if not branches:
        return "".join(chain)
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return "".join(chain) + (f"(?:{body})?" if _END in node else body)


class KnownValues:
    """Secret values found somewhere, to mask them wherever else they show up: the
    scanner sees ``--password=X`` after ``mysql`` but not as a line's first word, yet
    the same X must not show there either. Values shorter than :data:`MIN_HIDDEN`
    characters are masked only where the scanner found them."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pattern: Optional[re.Pattern[str]] = None

    def __bool__(self) -> bool:
        return bool(self._values)

    def add(self, value: str) -> None:
        """Remember one value."""
        if len(value) >= MIN_HIDDEN and value not in self._values:
            self._values.add(value)
            self._pattern = None

    def _compiled(self) -> re.Pattern[str]:
        if self._pattern is None:
            # longest first at each branch point is not needed: a trie regex tries the
            # longer continuation before the optional end
            try:
                self._pattern = re.compile(_trie_regex(self._values))
            except (RecursionError, re.error):  # thousands of nested prefixes
                alternatives = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, alternatives)))
        return self._pattern

    def contains(self, text: str) -> bool:
        """Return whether a known value is in ``text``."""
        return bool(self._values) and self._compiled().search(text) is not None

    def first(self, text: str) -> Optional[str]:
        """Return the first known value found in ``text``, or None."""
        match = self._compiled().search(text) if self._values else None
        return match[0] if match else None

    def hide(self, text: str) -> str:
        """Return ``text`` with every known value in it replaced by ``***``."""
        if not self._values:
            return text
        return self._compiled().sub(MASK, text)
